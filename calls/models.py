"""Calls and everything recorded about their way through the pipeline."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from clinics.models import Administrator, Clinic


class Stage(models.TextChoices):
    INGESTED = "ingested", _("Ingested")
    AUDIO_FETCHED = "audio_fetched", _("Audio fetched")
    TRANSCRIBED = "transcribed", _("Transcribed")
    ANALYSED = "analysed", _("Analysed")
    SYNCED = "synced", _("Synced")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class SkipReason(models.TextChoices):
    MISSED = "missed", _("Not answered")
    BUSY = "busy", _("Busy")
    TOO_SHORT = "too_short", _("Shorter than the clinic's minimum")
    NO_RECORDING = "no_recording", _("No recording or transcript")
    NO_TRANSCRIBER = "no_transcriber", _("No transcription provider configured")
    QUOTA = "quota", _("Minute quota exhausted")


class Call(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")

    class Source(models.TextChoices):
        AMOCRM = "amocrm", _("amoCRM")
        UPLOAD = "upload", _("Upload")
        OUTBOUND = "outbound", _("Outbound AI call")

    class Status(models.TextChoices):
        ANSWERED = "answered", _("Answered")
        MISSED = "missed", _("Not answered")
        BUSY = "busy", _("Busy")
        UNKNOWN = "unknown", _("Unknown")

    class BookedSource(models.TextChoices):
        NONE = "", _("—")
        CRM = "crm", _("CRM")
        TRANSCRIPT = "transcript", _("Transcript")
        MANUAL = "manual", _("Manual")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="calls", verbose_name=_("clinic"))
    external_id = models.CharField(_("external id"), max_length=128)
    source = models.CharField(_("source"), max_length=16, choices=Source, default=Source.UPLOAD)
    direction = models.CharField(_("direction"), max_length=16, choices=Direction, default=Direction.INBOUND)
    status = models.CharField(_("call status"), max_length=16, choices=Status, default=Status.ANSWERED)
    phone = models.CharField(_("phone (E.164)"), max_length=20, blank=True, db_index=True)
    started_at = models.DateTimeField(_("started"))
    # The calendar day in the clinic's time zone: reports and filters work in clinic days.
    local_date = models.DateField(_("date (clinic time)"), db_index=True)
    duration_seconds = models.PositiveIntegerField(_("duration, s"), default=0)
    recording_url = models.URLField(_("recording URL"), max_length=2000, blank=True)

    crm_lead_id = models.BigIntegerField(_("CRM lead"), null=True, blank=True, db_index=True)
    crm_contact_id = models.BigIntegerField(_("CRM contact"), null=True, blank=True)
    crm_responsible_user_id = models.BigIntegerField(_("CRM responsible user"), null=True, blank=True)
    administrator = models.ForeignKey(
        Administrator,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("administrator"),
    )
    traffic_source = models.CharField(_("traffic source"), max_length=100, blank=True)
    lead_processing_minutes = models.PositiveIntegerField(_("lead processing speed, min"), null=True, blank=True)
    booked = models.BooleanField(_("booked"), null=True, blank=True)
    booked_source = models.CharField(_("booking source"), max_length=16, choices=BookedSource, blank=True, default="")

    # --- pipeline state -----------------------------------------------------------------------
    stage = models.CharField(_("stage"), max_length=16, choices=Stage, default=Stage.INGESTED)
    stage_changed_at = models.DateTimeField(_("stage changed"), auto_now_add=True)
    skip_reason = models.CharField(_("skip reason"), max_length=20, choices=SkipReason, blank=True)
    failed_stage = models.CharField(_("failed at stage"), max_length=16, choices=Stage, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts at this stage"), default=0)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    retry_at = models.DateTimeField(_("next retry"), null=True, blank=True)

    ingested_at = models.DateTimeField(_("ingested"), auto_now_add=True)
    audio_fetched_at = models.DateTimeField(_("audio fetched"), null=True, blank=True)
    transcribed_at = models.DateTimeField(_("transcribed"), null=True, blank=True)
    analysed_at = models.DateTimeField(_("analysed"), null=True, blank=True)
    synced_at = models.DateTimeField(_("synced"), null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "external_id"], name="call_unique_external_id"),
            models.CheckConstraint(
                condition=~models.Q(stage="skipped") | ~models.Q(skip_reason=""), name="call_skipped_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "local_date"], name="call_clinic_day_idx"),
            models.Index(fields=["clinic", "-started_at"], name="call_clinic_started_idx"),
            models.Index(fields=["stage", "retry_at"], name="call_stage_retry_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_direction_display()} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_terminal(self) -> bool:
        return self.stage in {Stage.DONE, Stage.SKIPPED, Stage.FAILED}


def recording_upload_to(instance: "Recording", filename: str) -> str:
    # Random names: a path never reveals a phone number or a patient's name.
    ext = filename.rsplit(".", 1)[-1].lower()[:5] if "." in filename else "bin"
    return f"recordings/{instance.call.clinic_id}/{uuid.uuid4().hex}.{ext}"


class Recording(models.Model):
    """The audio of a call, stored privately (served only to authorised callers or by signed link)."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="recording", verbose_name=_("call"))
    file = models.FileField(_("file"), upload_to=recording_upload_to, max_length=300)
    mime = models.CharField(_("type"), max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size, bytes"), default=0)
    duration_seconds = models.FloatField(_("duration, s"), null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)

    class Meta:
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")

    def __str__(self) -> str:
        return f"{self.call_id}: {self.mime} {self.size_bytes} B"


class Transcript(models.Model):
    class Role(models.TextChoices):
        ADMINISTRATOR = "administrator", _("Administrator")
        PATIENT = "patient", _("Patient")
        OTHER = "other", _("Other")

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="transcript", verbose_name=_("call"))
    # [{text, start, end, speaker, kind}] as returned by the provider (or imported).
    words = models.JSONField(_("words"), default=list, blank=True)
    # [{speaker, role, start, end, text}] built from words (or imported).
    utterances = models.JSONField(_("utterances"), default=list, blank=True)
    # speaker id -> role
    roles = models.JSONField(_("speaker roles"), default=dict, blank=True)
    role_confidence = models.FloatField(_("role confidence"), null=True, blank=True)
    roles_overridden = models.BooleanField(_("roles set by hand"), default=False)
    text = models.TextField(_("plain text"), blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    provider = models.CharField(_("provider"), max_length=32, blank=True)
    model = models.CharField(_("model"), max_length=64, blank=True)
    billed_seconds = models.FloatField(_("billed, s"), default=0)
    cost = models.DecimalField(_("cost, USD"), max_digits=10, decimal_places=4, default=0)
    request_id = models.CharField(_("provider request id"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("transcript")
        verbose_name_plural = _("transcripts")

    def __str__(self) -> str:
        return f"{self.call_id}: {len(self.utterances)} utterances"


class CallEvent(models.Model):
    """One row per stage attempt: the audit trail of a call."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", _("Succeeded")
        RETRY = "retry", _("Will retry")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        REPROCESS = "reprocess", _("Reprocess requested")
        LOST_CLAIM = "lost_claim", _("Result discarded (claim lost)")

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events", verbose_name=_("call"))
    stage = models.CharField(_("step"), max_length=32)
    status = models.CharField(_("status"), max_length=16, choices=Status)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    error = models.TextField(_("error"), blank=True)
    provider_request_id = models.CharField(_("provider request id"), max_length=128, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("call event")
        verbose_name_plural = _("call events")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["call", "created_at"], name="callevent_call_idx")]

    def __str__(self) -> str:
        return f"{self.stage}: {self.status}"


# Module-level names for the OpenAPI enum overrides (settings.SPECTACULAR_SETTINGS).
CallStatus = Call.Status
CallEventStatus = CallEvent.Status

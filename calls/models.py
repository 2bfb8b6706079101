"""Calls and everything recorded about their way through the pipeline."""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinics.models import Administrator, Clinic
from medai.crypto import EncryptedTextField


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


# --- outbound AI calls (Voximplant) ------------------------------------------------------------
# Appended: a clinic's Voximplant account, single AI calls, campaigns, do-not-call list, and the
# replay guard of the scenario's signed requests. Services: calls/outbound/.
E164_RE = r"^\+[1-9]\d{6,14}$"


def validate_e164(value: str) -> None:
    from django.core.validators import RegexValidator

    RegexValidator(E164_RE, _("An E.164 number, e.g. +79990001122."))(value)


class VoximplantConnection(models.Model):
    """A clinic's own Voximplant credentials and numbers. Empty fields fall back to VOXIMPLANT_*."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="voximplant", verbose_name=_("clinic"))
    account_id = models.CharField(
        _("account id"), max_length=20, blank=True, help_text=_("Empty: the deployment's VOXIMPLANT_ACCOUNT_ID.")
    )
    api_key = EncryptedTextField(_("API key"), blank=True, default="", help_text=_("Legacy account API key. Stored encrypted."))
    service_account = EncryptedTextField(
        _("service account JSON"),
        blank=True,
        default="",
        help_text=_("The credentials file from Settings → Service accounts (preferred over the API key). Stored encrypted."),
    )
    rule_id = models.PositiveBigIntegerField(_("routing rule id"), null=True, blank=True)
    caller_id = models.CharField(
        _("caller ID"), max_length=20, blank=True, validators=[validate_e164], help_text=_("Empty: VOXIMPLANT_CALLER_ID.")
    )
    webhook_secret = EncryptedTextField(
        _("webhook secret"),
        blank=True,
        default="",
        help_text=_("The application's MEDAI_WEBHOOK_SECRET when it differs from VOXIMPLANT_WEBHOOK_SECRET. Stored encrypted."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Voximplant account")
        verbose_name_plural = _("Voximplant accounts")

    def __str__(self) -> str:
        return f"{self.clinic}: {self.account_id or _('deployment account')}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.account_id and not self.account_id.isdigit():
            errors["account_id"] = _("The account id is numeric.")
        if self.account_id and bool(self.api_key) == bool(self.service_account):
            errors["api_key"] = _("Give exactly one of the API key or the service account JSON.")
        if not self.account_id and (self.api_key or self.service_account):
            errors["account_id"] = _("Credentials need the account id they belong to.")
        if self.service_account:
            import json

            try:
                data = json.loads(self.service_account)
                if not isinstance(data, dict) or not data.get("key_id") or not data.get("private_key"):
                    raise ValueError
            except ValueError:
                errors["service_account"] = _("Paste the whole credentials JSON (with key_id and private_key).")
        if self.webhook_secret and (len(self.webhook_secret) < 16 or not self.webhook_secret.isascii()):
            errors["webhook_secret"] = _("At least 16 ASCII characters.")
        if errors:
            raise ValidationError(errors)


def default_calling_windows() -> dict:
    """Monday–Friday 09:00–20:00, weekends 10:00–19:00, in the clinic's time zone."""
    weekdays = {str(day): [["09:00", "20:00"]] for day in range(5)}
    return {**weekdays, "5": [["10:00", "19:00"]], "6": [["10:00", "19:00"]]}


class Campaign(models.Model):
    """Many AI calls with the same script: contacts, calling windows, concurrency, retries."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="campaigns", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.DRAFT)
    language = models.CharField(_("language"), max_length=8, default="ru")
    voice = models.CharField(_("voice"), max_length=100, default="female")
    greeting = models.TextField(_("greeting"))
    prompt = models.TextField(_("prompt"), blank=True, help_text=_("Instructions for the AI (the LLM's system prompt)."))
    script = models.TextField(
        _("script"), blank=True, help_text=_("Replies in order, one per line: used when no LLM is configured.")
    )
    purpose = models.CharField(
        _("goal of the call"), max_length=300, blank=True, help_text=_("What the call should achieve; the analysis checks it.")
    )
    max_concurrency = models.PositiveSmallIntegerField(
        _("maximum concurrent calls"), default=5, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    calling_windows = models.JSONField(
        _("calling windows"),
        default=default_calling_windows,
        help_text=_('Per weekday (0 = Monday), clinic time: {"0": [["09:00", "20:00"]], "5": [["10:00", "16:00"]]}'),
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("attempts per contact"), default=3, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    retry_no_answer_minutes = models.PositiveIntegerField(_("retry after no answer, min"), default=120, help_text=_("0: no retry."))
    retry_busy_minutes = models.PositiveIntegerField(_("retry after busy, min"), default=20, help_text=_("0: no retry."))
    retry_voicemail_minutes = models.PositiveIntegerField(_("retry after voicemail, min"), default=240, help_text=_("0: no retry."))
    next_wake_at = models.DateTimeField(_("next dispatch"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    import_report = models.JSONField(_("last import"), default=dict, blank=True, editable=False)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_wake_at"], name="campaign_status_wake_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignContact(models.Model):
    """One number of a campaign. ``state`` follows medai.integrations.campaign_planner.ContactState."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        IN_PROGRESS = "in_progress", _("Calling now")
        RETRY = "retry", _("Retry later")
        DONE = "done", _("Done")
        DO_NOT_CALL = "do_not_call", _("Do not call")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("campaign"))
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic"))
    position = models.PositiveIntegerField(_("position"), default=0)
    row_number = models.PositiveIntegerField(_("row in the file"), null=True, blank=True)
    phone = models.CharField(_("phone (E.164)"), max_length=20)
    name = models.CharField(_("name"), max_length=200, blank=True)
    crm_lead_id = models.BigIntegerField(_("CRM lead"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    retry_at = models.DateTimeField(_("retry at"), null=True, blank=True)
    last_outcome = models.CharField(_("last outcome"), max_length=16, blank=True)
    finished_reason = models.CharField(_("why finished"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("campaign contact")
        verbose_name_plural = _("campaign contacts")
        ordering = ["campaign", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "phone"], name="campaign_contact_unique_phone")]
        indexes = [
            models.Index(fields=["campaign", "state", "position"], name="contact_campaign_state_idx"),
            models.Index(fields=["clinic", "phone"], name="contact_clinic_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} ({self.get_state_display()})"


class OutboundCall(models.Model):
    """One AI call placed through Voximplant (a single call or one attempt of a campaign contact).

    ``queued → dialing → ringing → in_progress → completed | no_answer | busy | voicemail | failed``:
    dialing once StartScenarios is sent, ringing when the scenario fetched its settings and dials the
    number, in progress from the first customer turn. Every transition is a conditional UPDATE.
    The ``token`` authenticates nothing by itself (every scenario request is signed); it names the
    call in the scenario's custom data, and in its settings, turn and result requests.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        DIALING = "dialing", _("Dialling")
        RINGING = "ringing", _("Ringing")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        NO_ANSWER = "no_answer", _("No answer")
        BUSY = "busy", _("Busy")
        VOICEMAIL = "voicemail", _("Voicemail")
        FAILED = "failed", _("Failed")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="outbound_calls", verbose_name=_("clinic"))
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="calls", verbose_name=_("campaign")
    )
    contact = models.ForeignKey(
        CampaignContact, on_delete=models.CASCADE, null=True, blank=True, related_name="calls", verbose_name=_("contact")
    )
    token = models.CharField(max_length=64, unique=True, editable=False)
    # Exactly what StartScenarios got: GetCallHistory finds the session by it after an unclear start.
    custom_data = models.CharField(max_length=200, blank=True, editable=False)
    phone = models.CharField(_("phone (E.164)"), max_length=20, validators=[validate_e164])
    language = models.CharField(_("language"), max_length=8, default="ru")
    voice = models.CharField(_("voice"), max_length=100, default="female")
    greeting = models.TextField(_("greeting"))
    prompt = models.TextField(_("prompt"), blank=True)
    script = models.TextField(_("script"), blank=True)
    purpose = models.CharField(_("goal of the call"), max_length=300, blank=True)
    crm_lead_id = models.BigIntegerField(_("CRM lead"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.QUEUED)
    status_changed_at = models.DateTimeField(_("status changed"), auto_now_add=True)
    start_attempts = models.PositiveSmallIntegerField(_("start attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("start not before"), null=True, blank=True)
    dial_started_at = models.DateTimeField(_("dialling started"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    session_id = models.BigIntegerField(_("Voximplant session"), null=True, blank=True, db_index=True)
    duration_seconds = models.FloatField(_("duration, s"), default=0)
    record_url = models.URLField(_("recording URL"), max_length=2000, blank=True)
    error = models.TextField(_("error"), blank=True)
    sip_code = models.PositiveSmallIntegerField(_("SIP code"), null=True, blank=True)
    result_source = models.CharField(_("result from"), max_length=10, blank=True)
    call = models.OneToOneField(
        Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="outbound", verbose_name=_("call")
    )
    created_by = models.CharField(_("started by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("outbound AI call")
        verbose_name_plural = _("outbound AI calls")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbound_status_next_idx"),
            models.Index(fields=["clinic", "-created_at"], name="outbound_clinic_created_idx"),
            models.Index(fields=["campaign", "status"], name="outbound_campaign_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"

    ACTIVE = (Status.QUEUED, Status.DIALING, Status.RINGING, Status.IN_PROGRESS)
    TERMINAL = (Status.COMPLETED, Status.NO_ANSWER, Status.BUSY, Status.VOICEMAIL, Status.FAILED)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class DoNotCall(models.Model):
    """A number the clinic must never call (campaigns skip it; single calls are refused)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="do_not_call", verbose_name=_("clinic"))
    phone = models.CharField(_("phone (E.164)"), max_length=20, validators=[validate_e164])
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.CharField(_("added by"), max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("do-not-call number")
        verbose_name_plural = _("do-not-call list")
        ordering = ["clinic", "phone"]
        constraints = [models.UniqueConstraint(fields=["clinic", "phone"], name="donotcall_unique_phone")]

    def __str__(self) -> str:
        return self.phone


class ScenarioNonce(models.Model):
    """Nonces of the scenario's signed requests, kept past the timestamp tolerance: replays are refused."""

    nonce = models.CharField(max_length=128, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("scenario request nonce")
        verbose_name_plural = _("scenario request nonces")

    def __str__(self) -> str:
        return self.nonce

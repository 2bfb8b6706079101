"""Tenants and the people and keys that belong to them.

Every other row in MedAI belongs to a :class:`Clinic`. Staff users see the clinics they are
members of; API keys see exactly one clinic.
"""

import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medai.crypto import EncryptedTextField


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value}) from exc


def validate_proxy_url(value: str) -> None:
    if value and value.split("://", 1)[0] not in {"http", "https", "socks5", "socks5h"}:
        raise ValidationError(_("Proxy must start with http://, https://, socks5:// or socks5h://"))


class Clinic(models.Model):
    class TranscriptionProvider(models.TextChoices):
        AUTO = "auto", _("Deployment default")
        ELEVENLABS = "elevenlabs", _("ElevenLabs Scribe")
        OPENAI = "openai", _("OpenAI-compatible")
        NONE = "none", _("None (transcripts are imported)")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=settings.DEFAULT_CLINIC_TIME_ZONE, validators=[validate_time_zone]
    )
    min_billable_seconds = models.PositiveIntegerField(
        _("minimum billable call length, s"),
        default=6,
        help_text=_("Answered calls shorter than this are stored but never sent to paid transcription."),
    )
    language = models.CharField(_("language hint"), max_length=8, default="ru", blank=True)
    num_speakers = models.PositiveSmallIntegerField(_("expected speakers"), null=True, blank=True)
    transcription_provider = models.CharField(
        _("transcription provider"), max_length=20, choices=TranscriptionProvider, default=TranscriptionProvider.AUTO
    )
    proxy_url = EncryptedTextField(
        _("download proxy"),
        blank=True,
        default="",
        validators=[validate_proxy_url],
        help_text=_("Optional HTTP or SOCKS5 proxy for downloading recordings, e.g. socks5://user:pass@host:1080."),
    )
    monthly_limit_minutes = models.PositiveIntegerField(_("monthly limit, min"), default=3000)
    weekly_limit_minutes = models.PositiveIntegerField(_("weekly limit, min"), default=750)
    is_active = models.BooleanField(_("active"), default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("staff members"), related_name="clinics", blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Administrator(models.Model):
    """A person answering the clinic's phone; scored and coached."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="administrators", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=200)
    crm_user_id = models.BigIntegerField(_("amoCRM user id"), null=True, blank=True)
    email = models.EmailField(_("email"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("administrator")
        verbose_name_plural = _("administrators")
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "crm_user_id"], name="administrator_unique_crm_user"),
            models.UniqueConstraint(fields=["clinic", "name"], name="administrator_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class WorkSchedule(models.Model):
    """Who is on shift on a given day (optionally between given hours, clinic-local time)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="schedules", verbose_name=_("clinic"))
    administrator = models.ForeignKey(
        Administrator, on_delete=models.CASCADE, related_name="shifts", verbose_name=_("administrator")
    )
    date = models.DateField(_("date"))
    start_time = models.TimeField(_("shift start"), null=True, blank=True)
    end_time = models.TimeField(_("shift end"), null=True, blank=True)

    class Meta:
        verbose_name = _("work schedule")
        verbose_name_plural = _("work schedules")
        ordering = ["-date", "start_time"]
        constraints = [
            models.UniqueConstraint(fields=["administrator", "date", "start_time"], name="schedule_unique_shift"),
            models.CheckConstraint(
                condition=models.Q(start_time__isnull=True, end_time__isnull=True)
                | models.Q(start_time__isnull=False, end_time__isnull=False),
                name="schedule_hours_both_or_none",
            ),
        ]

    def __str__(self) -> str:
        hours = f" {self.start_time:%H:%M}–{self.end_time:%H:%M}" if self.start_time and self.end_time else ""
        return f"{self.administrator} {self.date}{hours}"

    def clean(self) -> None:
        if self.administrator_id and self.clinic_id and self.administrator.clinic_id != self.clinic_id:
            raise ValidationError(_("The administrator belongs to another clinic."))
        if bool(self.start_time) != bool(self.end_time):
            raise ValidationError(_("Give both shift start and end, or neither."))


KEY_PREFIX = "mk_"


def hash_api_key(raw: str) -> str:
    # Keys are 256-bit random strings: a fast hash is sufficient (no brute-force surface).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, clinic__is_active=True)


class ApiKey(models.Model):
    """A clinic-scoped integration key. Only its hash is stored; the prefix identifies it."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("clinic"))
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (raw key, prefix, hash). The raw key is shown once and never stored."""
        prefix = KEY_PREFIX + secrets.token_hex(4)
        raw = f"{prefix}.{secrets.token_urlsafe(32)}"
        return raw, prefix, hash_api_key(raw)

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class OutboxEvent(models.Model):
    """Something worth telling people about (quota thresholds, failures, broken connections).

    Written by any app; read and delivered by ``telegrambot`` — so nothing imports the bot.
    """

    class Kind(models.TextChoices):
        PIPELINE_FAILED = "pipeline_failed", _("Pipeline failure")
        QUOTA_THRESHOLD = "quota_threshold", _("Quota threshold")
        CRM_BROKEN = "crm_broken", _("CRM connection broken")
        REPORT_READY = "report_ready", _("Report ready")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="outbox", verbose_name=_("clinic"))
    kind = models.CharField(_("kind"), max_length=32, choices=Kind)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification event")
        verbose_name_plural = _("notification events")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "kind", "dedup_key"],
                condition=~models.Q(dedup_key=""),
                name="outbox_unique_dedup",
            )
        ]
        indexes = [models.Index(fields=["delivered_at", "created_at"], name="outbox_pending_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.clinic}"


class QuotaPeriod(models.Model):
    """Audio-minute usage of one clinic in one month or week (keyed by its first day, clinic time).

    A new period is a new row, so a new week starts at zero without a reset job racing writers.
    ``used + reserved <= limit + topped_up`` is kept by one conditional UPDATE (see clinics.quotas).
    """

    class Kind(models.TextChoices):
        MONTH = "month", _("Month")
        WEEK = "week", _("Week")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="quota_periods", verbose_name=_("clinic"))
    kind = models.CharField(_("period"), max_length=8, choices=Kind)
    start = models.DateField(_("starts"))
    limit_seconds = models.PositiveBigIntegerField(_("limit, s"))
    topped_up_seconds = models.PositiveBigIntegerField(_("top-ups, s"), default=0)
    used_seconds = models.PositiveBigIntegerField(_("used, s"), default=0)
    reserved_seconds = models.PositiveBigIntegerField(_("reserved, s"), default=0)
    alerted_80 = models.BooleanField(default=False)
    alerted_100 = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("quota period")
        verbose_name_plural = _("quota periods")
        ordering = ["clinic", "-start", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "kind", "start"], name="quota_unique_period"),
        ]

    def __str__(self) -> str:
        return f"{self.clinic} {self.get_kind_display()} {self.start}"

    @property
    def available_seconds(self) -> int:
        return max(0, self.limit_seconds + self.topped_up_seconds - self.used_seconds - self.reserved_seconds)

    @property
    def usage_share(self) -> float:
        total = self.limit_seconds + self.topped_up_seconds
        return (self.used_seconds + self.reserved_seconds) / total if total else 1.0


class QuotaLedger(models.Model):
    """Every change to a quota, with who/what caused it. Append-only."""

    class Entry(models.TextChoices):
        RESERVE = "reserve", _("Reserved")
        SETTLE = "settle", _("Settled")
        RELEASE = "release", _("Released")
        TOP_UP = "top_up", _("Top-up")
        RESET = "reset", _("Reset")
        LIMIT = "limit", _("Limit changed")

    period = models.ForeignKey(QuotaPeriod, on_delete=models.CASCADE, related_name="ledger", verbose_name=_("period"))
    entry = models.CharField(_("entry"), max_length=10, choices=Entry)
    seconds = models.BigIntegerField(_("seconds"), help_text=_("Signed change of the affected amount."))
    call_id = models.BigIntegerField(_("call"), null=True, blank=True, db_index=True)
    actor = models.CharField(_("by"), max_length=150, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("quota ledger entry")
        verbose_name_plural = _("quota ledger")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_entry_display()} {self.seconds:+d}s"


class CrmConnection(models.Model):
    """A clinic's amoCRM account: OAuth credentials (encrypted), sync cursor and conversion config."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for authorisation")
        ACTIVE = "active", _("Connected")
        BROKEN = "broken", _("Broken — reconnect")
        DISABLED = "disabled", _("Disabled")

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="crm", verbose_name=_("clinic"))
    base_url = models.URLField(_("amoCRM address"), help_text=_("e.g. https://yourclinic.amocrm.ru"))
    client_id = models.CharField(_("integration id"), max_length=100)
    client_secret = EncryptedTextField(_("secret key"))
    redirect_uri = models.URLField(_("redirect URL"), max_length=500)
    access_token = EncryptedTextField(_("access token"), blank=True, default="")
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    expires_at = models.DateTimeField(_("token expires"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PENDING)
    last_error = models.TextField(_("last error"), blank=True)
    sync_cursor = models.DateTimeField(_("synced up to"), null=True, blank=True)
    last_synced_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    conversion = models.JSONField(
        _("conversion settings"),
        default=dict,
        blank=True,
        help_text=_("Pipelines and their 'booked' statuses; detected automatically, editable here."),
    )
    source_field = models.CharField(_("traffic source field"), max_length=100, blank=True, default="Источник")
    speed_field = models.CharField(
        _("lead processing speed field"), max_length=100, blank=True, default="Скорость обработки"
    )
    write_back = models.BooleanField(_("post analysis notes to leads"), default=True)
    # The last manual range sync (admin, API, command): status, range, progress, result or error.
    sync_run = models.JSONField(_("manual sync"), default=dict, blank=True, editable=False)
    # One sync per connection at a time, across processes: claimed with a conditional UPDATE.
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("amoCRM connection")
        verbose_name_plural = _("amoCRM connections")

    def __str__(self) -> str:
        return f"{self.clinic}: {self.base_url}"

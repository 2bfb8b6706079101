"""Report files, and the metric roll-ups that reports, dashboards, the API and BI tools read.

The ``bi_*`` tables are plain tables with stable names for a BI tool (DataLens, Metabase,
Superset). They are derived data: :mod:`reports.rollups` replaces a whole (clinic, day) at a time,
so recomputing is idempotent by construction. Their foreign keys have no database constraint
(a million-row rebuild would run two integrity checks per row); Django still cascades deletes. Counts and sums are additive across rows; the
``*_pct`` / ``*_avg`` columns are per-row conveniences — over several rows, divide the sums.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from calls.models import Call
from clinics.models import Administrator, Clinic


# --- roll-ups (BI tables) ------------------------------------------------------------------------
class DailyMetric(models.Model):
    """Calls of one clinic-local day per administrator × direction × traffic source × call type × call source × campaign."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    day = models.DateField(_("day (clinic time)"))
    # No constraint: a deleted administrator's rows are regrouped by the next recompute.
    administrator = models.ForeignKey(
        Administrator, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    administrator_name = models.CharField(max_length=200, blank=True, default="")
    direction = models.CharField(max_length=16)
    traffic_source = models.CharField(max_length=100, blank=True, default="")
    call_type = models.CharField(max_length=20, blank=True, default="", help_text="Empty: not analysed")
    # Where the call came from (amocrm / upload / outbound AI call) and, for AI calls, their campaign.
    call_source = models.CharField(max_length=16, blank=True, default="")
    campaign = models.ForeignKey(
        "calls.Campaign", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    analysed = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    good_calls = models.PositiveIntegerField(default=0)
    interested = models.PositiveIntegerField(default=0)
    booked = models.PositiveIntegerField(default=0)
    duration_total_s = models.BigIntegerField(default=0)
    score_sum = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    conversion_pct = models.FloatField(null=True, blank=True)
    duration_avg_s = models.FloatField(null=True, blank=True)
    score_avg = models.FloatField(null=True, blank=True)
    quality_pct = models.FloatField(null=True, blank=True)
    good_calls_pct = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "bi_daily_metrics"
        verbose_name = _("daily metrics row")
        verbose_name_plural = _("daily metrics")
        indexes = [models.Index(fields=["clinic", "day"], name="bi_metrics_clinic_day_idx")]

    def __str__(self) -> str:
        return f"{self.clinic_id} {self.day} {self.administrator_name or '—'} {self.direction} {self.call_type or '—'}"


class DailyCriterion(models.Model):
    """Per-criterion score sums of one clinic-local day per administrator × call type."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    day = models.DateField()
    administrator = models.ForeignKey(
        Administrator, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    administrator_name = models.CharField(max_length=200, blank=True, default="")
    call_type = models.CharField(max_length=20)
    criterion_key = models.CharField(max_length=40)
    criterion_title = models.CharField(max_length=200, blank=True, default="")
    scored = models.PositiveIntegerField(default=0)
    score_sum = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    score_avg = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "bi_daily_criteria"
        verbose_name = _("daily criterion row")
        verbose_name_plural = _("daily criteria")
        indexes = [models.Index(fields=["clinic", "day"], name="bi_criteria_clinic_day_idx")]

    def __str__(self) -> str:
        return f"{self.clinic_id} {self.day} {self.call_type} {self.criterion_key}"


class CallDetail(models.Model):
    """One row per call: the flat drill-down table, with signed links to the call page and audio."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    day = models.DateField()
    started_at = models.DateTimeField()
    weekday = models.PositiveSmallIntegerField(help_text="ISO weekday in clinic time: 1 = Monday")
    hour = models.PositiveSmallIntegerField(help_text="Hour in clinic time, 0-23")
    direction = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    stage = models.CharField(max_length=16)
    duration_s = models.PositiveIntegerField(default=0)
    administrator = models.ForeignKey(
        Administrator, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    administrator_name = models.CharField(max_length=200, blank=True, default="")
    traffic_source = models.CharField(max_length=100, blank=True, default="")
    lead_processing_minutes = models.PositiveIntegerField(null=True, blank=True)
    call_type = models.CharField(max_length=20, blank=True, default="")
    overall_score = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    good_call = models.BooleanField(null=True, blank=True)
    interest = models.CharField(max_length=10, blank=True, default="")
    interested = models.BooleanField(default=False)
    booked = models.BooleanField(null=True, blank=True)
    booked_source = models.CharField(max_length=16, blank=True, default="")
    disposition = models.CharField(max_length=100, blank=True, default="")
    summary = models.TextField(blank=True, default="")
    recommendations = models.TextField(blank=True, default="", help_text="One per line")
    call_url = models.CharField(max_length=500, blank=True, default="")
    recording_url = models.CharField(max_length=500, blank=True, default="")
    links_expire_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "bi_call_details"
        verbose_name = _("call details row")
        verbose_name_plural = _("call details")
        indexes = [models.Index(fields=["clinic", "day"], name="bi_details_clinic_day_idx")]

    def __str__(self) -> str:
        return f"{self.call_id} {self.day}"


class PeriodRecommendation(models.Model):
    """One line of a weekly/monthly coaching summary (copied from ``analysis.PeriodSummary``)."""

    summary_id = models.BigIntegerField(db_index=True)
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    administrator = models.ForeignKey(
        Administrator, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    administrator_name = models.CharField(max_length=200, blank=True, default="")
    period_kind = models.CharField(max_length=8)
    period_start = models.DateField()
    period_end = models.DateField()
    position = models.PositiveSmallIntegerField()
    text = models.TextField()
    source = models.CharField(max_length=10, blank=True, default="")
    calls_scored = models.PositiveIntegerField(default=0)
    average_score = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    generated_at = models.DateTimeField()

    class Meta:
        db_table = "bi_period_recommendations"
        verbose_name = _("period recommendation")
        verbose_name_plural = _("period recommendations")
        ordering = ["-period_start", "clinic", "administrator", "position"]
        indexes = [models.Index(fields=["clinic", "period_start"], name="bi_recs_clinic_start_idx")]

    def __str__(self) -> str:
        return f"{self.clinic_id} {self.period_kind} {self.period_start} #{self.position}"


class RollupDirtyDay(models.Model):
    """A (clinic, day) whose roll-ups must be recomputed. ``token`` changes on every mark, so the
    recompute deletes the marker only if nobody marked the day again meanwhile."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    token = models.UUIDField(default=uuid.uuid4)
    marked_at = models.DateTimeField()

    class Meta:
        verbose_name = _("day to recompute")
        verbose_name_plural = _("days to recompute")
        constraints = [models.UniqueConstraint(fields=["clinic", "day"], name="rollup_dirty_unique_day")]

    def __str__(self) -> str:
        return f"{self.clinic_id} {self.day}"


# --- report files --------------------------------------------------------------------------------
def report_upload_to(instance: Report, filename: str) -> str:
    # Random names: the path reveals nothing about the clinic's people or patients.
    return f"reports/{instance.clinic_id}/{uuid.uuid4().hex}.{instance.kind}"


class Report(models.Model):
    class Kind(models.TextChoices):
        PDF = "pdf", _("PDF")
        XLSX = "xlsx", _("Excel (XLSX)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Via(models.TextChoices):
        API = "api", _("API")
        ADMIN = "admin", _("Admin")
        COMMAND = "command", _("Command")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="reports", verbose_name=_("clinic"))
    administrator = models.ForeignKey(
        Administrator,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="reports",
        verbose_name=_("administrator"),
        help_text=_("Empty: the whole clinic."),
    )
    kind = models.CharField(_("format"), max_length=8, choices=Kind)
    date_from = models.DateField(_("first day"))
    date_to = models.DateField(_("last day"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.QUEUED)
    error = models.TextField(_("error"), blank=True)
    file = models.FileField(_("file"), upload_to=report_upload_to, max_length=300, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size, bytes"), default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_via = models.CharField(_("requested via"), max_length=10, choices=Via, default=Via.API)
    requested_label = models.CharField(_("requested by (label)"), max_length=150, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(date_to__gte=models.F("date_from")), name="report_period_ordered"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="report_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date_from:%d.%m.%Y}–{self.date_to:%d.%m.%Y}"

    @property
    def filename(self) -> str:
        """The download name: ASCII, no personal data."""
        who = f"-admin{self.administrator_id}" if self.administrator_id else ""
        return f"medai-{self.clinic.slug}{who}-{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}.{self.kind}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


CONTENT_TYPES = {
    Report.Kind.PDF: "application/pdf",
    Report.Kind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class Dashboard(Report):
    """Not data: gives the admin dashboard its place (and link) on the admin index page."""

    class Meta:
        proxy = True
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")

"""Scorecards (what is scored), analyses (how one call scored) and period summaries (coaching).

Every engine (LLM, rules) produces the same :class:`Analysis` shape; the overall score is always
computed by us from the criteria (see :mod:`analysis.scoring`), never taken from a model.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from calls.models import Call
from clinics.models import Administrator, Clinic
from medai.crypto import EncryptedTextField


class CallType(models.TextChoices):
    FIRST_CONTACT = "first_contact", _("First contact")
    REPEAT = "repeat", _("Repeat patient")
    CALLBACK = "callback", _("Call-back")
    CONFIRMATION = "confirmation", _("Visit confirmation")
    OTHER = "other", _("Other")
    # An outbound AI call (Voximplant): never chosen by a classifier, set from the call's source.
    OUTBOUND = "outbound", _("Outbound AI call")


# Types that have a scorecard; "other" calls are not scored (only the reason is recorded).
SCORED_CALL_TYPES = (CallType.FIRST_CONTACT, CallType.REPEAT, CallType.CALLBACK, CallType.CONFIRMATION)
# Scored too, but seeded only for clinics that place AI calls (see scorecard_ensure_default).
AI_CALL_TYPES = (CallType.OUTBOUND,)
# Types a classifier may choose (an AI call's type comes from its source, not from a model).
CLASSIFIABLE_CALL_TYPES = (*SCORED_CALL_TYPES, CallType.OTHER)


class Disposition(models.TextChoices):
    BOOKED = "booked", _("Booked")
    CONFIRMED = "confirmed", _("Visit confirmed")
    CALLBACK_AGREED = "callback_agreed", _("Call-back agreed")
    THINKING = "thinking", _("Thinking it over")
    INFO = "info", _("Information only")
    CANCELLED = "cancelled", _("Visit cancelled")
    LOST = "lost", _("Lost")
    NOT_TARGET = "not_target", _("Not a patient")


class AppliesIf(models.TextChoices):
    ALWAYS = "", _("Always")
    BOOKED = "booked", _("Only if the patient booked")
    OBJECTION = "objection", _("Only if an objection was raised")


# --- scorecards -----------------------------------------------------------------------------
class Scorecard(models.Model):
    """A clinic's criteria for one call type. Every edit bumps ``version`` and stores a snapshot."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="scorecards", verbose_name=_("clinic"))
    call_type = models.CharField(
        _("call type"), max_length=20, choices=[(t.value, t.label) for t in (*SCORED_CALL_TYPES, *AI_CALL_TYPES)]
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.CharField(_("updated by"), max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = _("scorecard")
        verbose_name_plural = _("scorecards")
        ordering = ["clinic", "call_type"]
        constraints = [models.UniqueConstraint(fields=["clinic", "call_type"], name="scorecard_unique_type")]

    def __str__(self) -> str:
        return f"{self.clinic} · {self.get_call_type_display()} · v{self.version}"


criterion_key_validator = RegexValidator(r"^[a-z][a-z0-9_]{0,39}$", _("Lower-case latin letters, digits and '_'."))


class Criterion(models.Model):
    """One scored item. Binary criteria score only 0 or 10; conditional ones are excluded when the
    condition does not hold (not scored 0). ``weight`` counts in the overall weighted mean."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="criteria", verbose_name=_("scorecard"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    key = models.CharField(_("key"), max_length=40, validators=[criterion_key_validator])
    title_ru = models.CharField(_("title (Russian)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    rubric = models.TextField(
        _("rubric"), blank=True, help_text=_("What 0, 5 and 10 look like. The LLM engine scores against this text.")
    )
    binary = models.BooleanField(_("binary (0 or 10)"), default=False)
    applies_if = models.CharField(_("applies only if"), max_length=16, choices=AppliesIf, blank=True, default="")
    weight = models.DecimalField(
        _("weight"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("10"))],
        help_text=_("The overall score is the weighted mean of the applicable criteria."),
    )
    rule_phrases = models.TextField(
        _("rule phrases"),
        blank=True,
        help_text=_(
            "For the offline rule engine: one phrase per line said by the administrator; '*' ends a stem "
            "(\"запис*\" matches запишу, записала). Criteria without phrases use the built-in rules for their key."
        ),
    )

    class Meta:
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")
        ordering = ["scorecard", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["scorecard", "key"], name="criterion_unique_key")]

    def __str__(self) -> str:
        return self.title_ru

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "title_ru": self.title_ru,
            "title_en": self.title_en,
            "rubric": self.rubric,
            "binary": self.binary,
            "applies_if": self.applies_if,
            "weight": str(self.weight),
            "rule_phrases": self.rule_phrases,
        }


class ScorecardVersion(models.Model):
    """An immutable snapshot of a scorecard's criteria: what ``Analysis.scorecard_version`` refers to."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="versions", verbose_name=_("scorecard"))
    version = models.PositiveIntegerField(_("version"))
    criteria = models.JSONField(_("criteria"), default=list)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.CharField(_("by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("scorecard version")
        verbose_name_plural = _("scorecard versions")
        ordering = ["scorecard", "-version"]
        constraints = [models.UniqueConstraint(fields=["scorecard", "version"], name="scorecard_version_unique")]

    def __str__(self) -> str:
        return f"{self.scorecard_id} v{self.version}"


# --- per-clinic engine settings --------------------------------------------------------------
class ClinicAnalysisSettings(models.Model):
    """How one clinic's calls are analysed. Empty fields fall back to the deployment's settings."""

    class Engine(models.TextChoices):
        AUTO = "auto", _("Deployment default")
        RULES = "rules", _("Offline rules")
        LLM = "llm", _("LLM (OpenAI-compatible)")

    clinic = models.OneToOneField(
        Clinic, on_delete=models.CASCADE, related_name="analysis_settings", verbose_name=_("clinic")
    )
    engine = models.CharField(_("analysis engine"), max_length=8, choices=Engine, default=Engine.AUTO)
    llm_model = models.CharField(_("LLM model"), max_length=100, blank=True, help_text=_("Empty: OPENAI_MODEL."))
    llm_base_url = models.URLField(
        _("LLM base URL"), max_length=300, blank=True, help_text=_("Empty: OPENAI_BASE_URL. E.g. http://vllm:8000/v1")
    )
    llm_api_key = EncryptedTextField(
        _("LLM API key"), blank=True, default="", help_text=_("Empty: OPENAI_API_KEY. Stored encrypted.")
    )
    context = models.TextField(
        _("clinic context for the LLM"),
        blank=True,
        help_text=_("Address, doctors, services and prices, hours: helps the model judge the administrator."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("clinic analysis settings")
        verbose_name_plural = _("clinic analysis settings")

    def __str__(self) -> str:
        return f"{self.clinic}: {self.get_engine_display()}"


# --- the result of one call ------------------------------------------------------------------
class Analysis(models.Model):
    class Interest(models.TextChoices):
        HIGH = "high", _("High")
        MEDIUM = "medium", _("Medium")
        LOW = "low", _("Low")
        NONE = "none", _("None")
        UNKNOWN = "unknown", _("Unknown")

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="analysis", verbose_name=_("call"))
    engine = models.CharField(_("engine"), max_length=32)
    engine_model = models.CharField(_("model"), max_length=64, blank=True)
    scorecard_version = models.CharField(_("scorecard version"), max_length=32, blank=True)
    call_type = models.CharField(_("call type"), max_length=20, choices=CallType)
    call_type_reason = models.TextField(_("reason for the call"), blank=True)
    # [{key, title, score (0-10 | null), applicable, comment}]
    criteria = models.JSONField(_("criteria"), default=list, blank=True)
    # Weighted mean of the applicable criteria, computed by us; null when nothing is scored ("other").
    overall_score = models.DecimalField(_("overall score"), max_digits=4, decimal_places=2, null=True, blank=True)
    booked = models.BooleanField(_("booked (from the transcript)"), null=True, blank=True)
    # [{key, label, quote, handled, comment}]
    objections = models.JSONField(_("objections"), default=list, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    disposition = models.CharField(_("disposition"), max_length=100, blank=True)
    follow_up = models.TextField(_("follow-up message"), blank=True)
    interest = models.CharField(_("customer interest"), max_length=10, choices=Interest, default=Interest.UNKNOWN)
    crm_status = models.CharField(_("CRM status suggestion"), max_length=100, blank=True)
    recommendations = models.JSONField(_("recommendations"), default=list, blank=True)
    metrics = models.JSONField(_("conversation metrics"), default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    cost = models.DecimalField(_("cost, USD"), max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("analysis")
        verbose_name_plural = _("analyses")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(overall_score__isnull=True)
                | models.Q(overall_score__gte=0, overall_score__lte=10),
                name="analysis_score_0_10",
            )
        ]

    def __str__(self) -> str:
        return f"{self.call_id}: {self.get_call_type_display()} {self.overall_score}"


# --- weekly and monthly coaching summaries ---------------------------------------------------
class PeriodSummary(models.Model):
    """Criterion averages per call type, zones, recurring problems and recommendations for a period.

    ``administrator`` empty means the whole clinic. Periods are clinic-local: a week is Monday to
    Sunday, a month the 1st to its last day. ``data`` holds the figures (see analysis.summaries).
    """

    class Kind(models.TextChoices):
        WEEK = "week", _("Weekly")
        MONTH = "month", _("Monthly")

    class Source(models.TextChoices):
        LLM = "llm", _("LLM")
        TEMPLATE = "template", _("Template")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="period_summaries", verbose_name=_("clinic"))
    administrator = models.ForeignKey(
        Administrator,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="period_summaries",
        verbose_name=_("administrator"),
    )
    kind = models.CharField(_("period"), max_length=8, choices=Kind)
    start = models.DateField(_("first day"))
    end = models.DateField(_("last day"))
    complete = models.BooleanField(_("period closed when generated"), default=False)
    calls_total = models.PositiveIntegerField(_("calls"), default=0)
    calls_scored = models.PositiveIntegerField(_("scored calls"), default=0)
    average_score = models.DecimalField(_("average score"), max_digits=4, decimal_places=2, null=True, blank=True)
    data = models.JSONField(_("figures"), default=dict, blank=True)
    recommendations = models.JSONField(_("recommendations"), default=list, blank=True)
    recommendations_source = models.CharField(_("recommendations by"), max_length=10, choices=Source, default=Source.TEMPLATE)
    engine_model = models.CharField(_("model"), max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    cost = models.DecimalField(_("cost, USD"), max_digits=12, decimal_places=6, default=0)
    generated_at = models.DateTimeField(_("generated"), auto_now=True)

    class Meta:
        verbose_name = _("period summary")
        verbose_name_plural = _("period summaries")
        ordering = ["-start", "clinic", "kind", "administrator"]
        constraints = [
            # Two partial constraints: NULL administrators are distinct in a plain unique constraint.
            models.UniqueConstraint(
                fields=["clinic", "kind", "start"],
                condition=models.Q(administrator__isnull=True),
                name="summary_unique_clinic_period",
            ),
            models.UniqueConstraint(
                fields=["clinic", "administrator", "kind", "start"],
                condition=models.Q(administrator__isnull=False),
                name="summary_unique_admin_period",
            ),
            models.CheckConstraint(condition=models.Q(end__gte=models.F("start")), name="summary_end_after_start"),
        ]
        indexes = [models.Index(fields=["clinic", "kind", "-start"], name="summary_clinic_kind_idx")]

    def __str__(self) -> str:
        who = self.administrator or self.clinic
        return f"{who} · {self.get_kind_display()} {self.start:%d.%m.%Y}–{self.end:%d.%m.%Y}"

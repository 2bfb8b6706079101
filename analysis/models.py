"""The result of analysing one call. Every engine (LLM, rules) produces this same shape."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from calls.models import Call


class CallType(models.TextChoices):
    FIRST_CONTACT = "first_contact", _("First contact")
    REPEAT = "repeat", _("Repeat patient")
    CALLBACK = "callback", _("Call-back")
    CONFIRMATION = "confirmation", _("Visit confirmation")
    OTHER = "other", _("Other")


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
    # Mean of the applicable criteria, computed by us; null when nothing is scored ("other").
    overall_score = models.DecimalField(_("overall score"), max_digits=4, decimal_places=2, null=True, blank=True)
    booked = models.BooleanField(_("booked (from the transcript)"), null=True, blank=True)
    objections = models.JSONField(_("objections"), default=list, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    disposition = models.CharField(_("disposition"), max_length=100, blank=True)
    follow_up = models.TextField(_("follow-up message"), blank=True)
    interest = models.CharField(_("customer interest"), max_length=10, choices=Interest, default=Interest.UNKNOWN)
    crm_status = models.CharField(_("CRM status suggestion"), max_length=100, blank=True)
    recommendations = models.JSONField(_("recommendations"), default=list, blank=True)
    metrics = models.JSONField(_("conversation metrics"), default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(_("cost, USD"), max_digits=10, decimal_places=4, default=0)
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

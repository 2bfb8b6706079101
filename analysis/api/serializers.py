from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analysis.models import AppliesIf, Criterion, PeriodSummary, Scorecard, ScorecardVersion
from calls.api.serializers import AdministratorRefSerializer


# --- scorecards ----------------------------------------------------------------------------------
class CriterionSerializer(serializers.ModelSerializer):
    weight = serializers.DecimalField(max_digits=4, decimal_places=2, coerce_to_string=False)

    class Meta:
        model = Criterion
        fields = ["key", "title_ru", "title_en", "rubric", "binary", "applies_if", "weight", "rule_phrases"]


class ScorecardSerializer(serializers.ModelSerializer):
    criteria = CriterionSerializer(many=True)

    class Meta:
        model = Scorecard
        fields = ["id", "clinic", "call_type", "version", "updated_at", "updated_by", "criteria"]


class CriterionInputSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}$", help_text=_("Stable id: lower-case latin, digits, '_'."))
    title_ru = serializers.CharField(max_length=200)
    title_en = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    rubric = serializers.CharField(required=False, allow_blank=True, default="", help_text=_("What 0, 5 and 10 look like."))
    binary = serializers.BooleanField(required=False, default=False)
    applies_if = serializers.ChoiceField(choices=AppliesIf.choices, required=False, allow_blank=True, default="")
    weight = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal("0.1"), max_value=Decimal("10"), required=False, default=Decimal("1")
    )
    rule_phrases = serializers.CharField(required=False, allow_blank=True, default="")


class ScorecardUpdateSerializer(serializers.Serializer):
    criteria = CriterionInputSerializer(many=True, allow_empty=False)

    def validate_criteria(self, value):
        keys = [row["key"] for row in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise serializers.ValidationError(_("Duplicate keys: %(keys)s") % {"keys": ", ".join(duplicates)})
        return value


class ScorecardVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScorecardVersion
        fields = ["version", "criteria", "created_at", "created_by"]


class ScorecardFilterSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False)
    call_type = serializers.ChoiceField(choices=Scorecard._meta.get_field("call_type").choices, required=False)


# --- period summaries ----------------------------------------------------------------------------
# "week" | "month" as a patterned string, not an enum component: the name "kind" is taken by other
# enums in the schema (reports), and a collision would need a settings-level ENUM_NAME_OVERRIDES entry.
PERIOD_KIND_PATTERN = r"^(week|month)$"


class PeriodSummarySerializer(serializers.ModelSerializer):
    administrator = AdministratorRefSerializer(allow_null=True)
    kind = serializers.CharField(help_text=_("week | month"))
    average_score = serializers.SerializerMethodField()

    class Meta:
        model = PeriodSummary
        fields = [
            "id",
            "clinic",
            "administrator",
            "kind",
            "start",
            "end",
            "complete",
            "calls_total",
            "calls_scored",
            "average_score",
            "recommendations",
            "recommendations_source",
            "data",
            "engine_model",
            "generated_at",
        ]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_average_score(self, summary):
        return float(summary.average_score) if summary.average_score is not None else None


class PeriodSummaryFilterSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False)
    kind = serializers.ChoiceField(choices=PeriodSummary.Kind.choices, required=False)
    administrator = serializers.IntegerField(required=False)
    scope = serializers.ChoiceField(
        choices=[("all", "all"), ("clinic", "clinic")],
        required=False,
        default="all",
        help_text=_("'clinic': only whole-clinic summaries (no per-administrator ones)."),
    )
    date_from = serializers.DateField(required=False, help_text=_("Periods ending on or after this day"))
    date_to = serializers.DateField(required=False, help_text=_("Periods starting on or before this day"))


class PeriodSummaryGenerateSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, help_text=_("Needed only when you can access several clinics."))
    kind = serializers.RegexField(PERIOD_KIND_PATTERN, help_text=_("week | month"))
    date = serializers.DateField(help_text=_("Any day of the period (clinic time)."))
    administrator = serializers.IntegerField(required=False, help_text=_("Omit for the whole clinic."))

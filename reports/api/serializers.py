from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analysis.models import CallType
from calls.models import Call
from medai.signing import signed_url
from reports.models import Report
from reports.selectors import GROUPINGS

MAX_METRIC_DAYS = 3 * 366


class MetricsQuerySerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, min_value=1)
    date_from = serializers.DateField(required=False, help_text=_("First day (clinic time). Default: 29 days before date_to."))
    date_to = serializers.DateField(required=False, help_text=_("Last day, inclusive (clinic time). Default: today."))
    administrator = serializers.IntegerField(required=False, min_value=1)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text=_("Traffic source; empty string: unknown source."))
    call_type = serializers.ChoiceField(choices=CallType.choices, required=False)
    direction = serializers.ChoiceField(
        choices=[*Call.Direction.choices, ("both", _("Both"))], required=False, default="both"
    )
    call_source = serializers.ChoiceField(
        choices=Call.Source.choices, required=False, help_text=_("Where calls came from; outbound: AI calls.")
    )
    campaign = serializers.IntegerField(required=False, min_value=1, help_text=_("Outbound AI calls of one campaign."))
    group_by = serializers.ChoiceField(choices=[(g, g) for g in GROUPINGS], required=False)

    def validate(self, attrs):
        first, last = attrs.get("date_from"), attrs.get("date_to")
        if first and last:
            if last < first:
                raise serializers.ValidationError({"date_to": [_("The last day is before the first day.")]})
            if (last - first).days + 1 > MAX_METRIC_DAYS:
                raise serializers.ValidationError({"date_to": [_("At most %(days)d days at a time.") % {"days": MAX_METRIC_DAYS}]})
        return attrs


class FunnelFiguresSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text=_("Called: every call"))
    answered = serializers.IntegerField(help_text=_("Talked: answered calls"))
    interested = serializers.IntegerField(help_text=_("Answered calls where the patient booked or showed interest"))
    booked = serializers.IntegerField()
    talk_rate = serializers.FloatField(allow_null=True, help_text=_("answered / calls, %"))
    interest_rate = serializers.FloatField(allow_null=True, help_text=_("interested / answered, %"))
    booking_rate = serializers.FloatField(allow_null=True, help_text=_("booked / answered, % (= conversion)"))
    duration_avg_s = serializers.FloatField(allow_null=True, help_text=_("Average talk time of answered calls, s"))


class FunnelGroupSerializer(FunnelFiguresSerializer):
    key = serializers.JSONField()
    label = serializers.CharField(required=False)


class FunnelStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text=_("Share of the previous step, %"))


class PeriodSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(allow_null=True)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    direction = serializers.CharField()


class FunnelSerializer(PeriodSerializer, FunnelFiguresSerializer):
    steps = FunnelStepSerializer(many=True)
    groups = FunnelGroupSerializer(many=True, required=False)


class KpiSerializer(FunnelFiguresSerializer):
    analysed = serializers.IntegerField()
    scored = serializers.IntegerField(help_text=_("Analysed calls with an overall score (type other than “other”)"))
    good_calls = serializers.IntegerField()
    duration_total_s = serializers.IntegerField()
    score_avg = serializers.FloatField(allow_null=True)
    quality_pct = serializers.FloatField(allow_null=True, help_text=_("Mean overall score of scored calls × 10"))
    good_calls_pct = serializers.FloatField(allow_null=True, help_text=_("Scored calls with overall ≥ 7, %"))
    conversion_pct = serializers.FloatField(allow_null=True, help_text=_("booked / answered, %"))


class KpiGroupSerializer(KpiSerializer):
    key = serializers.JSONField()
    label = serializers.CharField(required=False)


class SummarySerializer(PeriodSerializer):
    totals = KpiSerializer()
    groups = KpiGroupSerializer(many=True, required=False)


class ReportCreateSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, min_value=1)
    kind = serializers.ChoiceField(choices=Report.Kind.choices)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    administrator = serializers.IntegerField(required=False, allow_null=True, min_value=1, help_text=_("Per-administrator report"))

    def validate(self, attrs):
        if attrs["date_to"] < attrs["date_from"]:
            raise serializers.ValidationError({"date_to": [_("The last day is before the first day.")]})
        return attrs


class ReportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    signed_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "clinic",
            "administrator",
            "kind",
            "date_from",
            "date_to",
            "status",
            "error",
            "size_bytes",
            "requested_via",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
            "signed_url",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, report):
        if report.status != Report.Status.DONE:
            return None
        path = reverse("report-download", kwargs={"pk": report.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(serializers.URLField(allow_null=True, help_text=_("Opens without a login; expires (SIGNED_URL_MAX_AGE).")))
    def get_signed_url(self, report):
        return signed_url("report", report.pk) if report.status == Report.Status.DONE else None

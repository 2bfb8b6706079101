from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clinics import quotas
from clinics.models import Clinic, QuotaLedger, QuotaPeriod
from medai.auth import IsClinicMember, IsStaffMember, clinic_ids_for

PERIOD = serializers.ChoiceField(choices=QuotaPeriod.Kind.choices)

class PeriodUsage(serializers.Serializer):
    start = serializers.DateField()
    limit_minutes = serializers.FloatField()
    topped_up_minutes = serializers.FloatField()
    used_minutes = serializers.FloatField()
    reserved_minutes = serializers.FloatField()
    available_minutes = serializers.FloatField()
    usage_pct = serializers.FloatField()


class QuotaUsage(serializers.Serializer):
    clinic = serializers.IntegerField()
    clinic_name = serializers.CharField()
    time_zone = serializers.CharField()
    month = PeriodUsage()
    week = PeriodUsage()
    as_of = serializers.DateTimeField()


class LimitsInput(serializers.Serializer):
    monthly_minutes = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000)
    weekly_minutes = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(_("Give monthly_minutes and/or weekly_minutes."))
        return attrs


class TopUpInput(serializers.Serializer):
    period = PERIOD
    minutes = serializers.IntegerField(min_value=1, max_value=1_000_000)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class ResetInput(serializers.Serializer):
    period = PERIOD
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class LedgerRow(serializers.ModelSerializer):
    period = serializers.CharField(source="period.kind")
    period_start = serializers.DateField(source="period.start")

    class Meta:
        model = QuotaLedger
        fields = ["created_at", "period", "period_start", "entry", "seconds", "call_id", "actor", "note"]


def _scoped_clinics(request):
    ids = clinic_ids_for(request.user)
    queryset = Clinic.objects.filter(is_active=True)
    return queryset if ids is None else queryset.filter(pk__in=ids)


def _clinic(request, clinic_id: int) -> Clinic:
    """A clinic the caller may see, else 404 (never 403: do not reveal that it exists)."""
    return get_object_or_404(_scoped_clinics(request), pk=clinic_id)


class QuotaListView(APIView):
    """Minute usage of the caller's clinic(s) in the current month and week (clinic time)."""

    permission_classes = [IsClinicMember]

    @extend_schema(responses={200: QuotaUsage(many=True)})
    def get(self, request):
        return Response([quotas.quota_usage(clinic) for clinic in _scoped_clinics(request).order_by("name")])


class QuotaLimitsView(APIView):
    permission_classes = [IsStaffMember]

    @extend_schema(request=LimitsInput, responses={200: QuotaUsage})
    def post(self, request, clinic_id: int):
        """Set the clinic's monthly and/or weekly limits (minutes). Applies to the current periods at once."""
        clinic = _clinic(request, clinic_id)
        data = LimitsInput(data=request.data)
        data.is_valid(raise_exception=True)
        quotas.quota_set_limits(clinic=clinic, actor=request.user.get_username(), **data.validated_data)
        return Response(quotas.quota_usage(clinic))


class QuotaTopUpView(APIView):
    permission_classes = [IsStaffMember]

    @extend_schema(request=TopUpInput, responses={200: QuotaUsage})
    def post(self, request, clinic_id: int):
        """Add minutes to the current month or week. Calls waiting for quota resume within a minute."""
        clinic = _clinic(request, clinic_id)
        data = TopUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        quotas.quota_top_up(
            clinic=clinic, kind=values["period"], minutes=values["minutes"], actor=request.user.get_username(), note=values.get("note", "")
        )
        return Response(quotas.quota_usage(clinic))


class QuotaResetView(APIView):
    permission_classes = [IsStaffMember]

    @extend_schema(request=ResetInput, responses={200: QuotaUsage})
    def post(self, request, clinic_id: int):
        """Zero the usage of the current month or week (recorded in the ledger)."""
        clinic = _clinic(request, clinic_id)
        data = ResetInput(data=request.data)
        data.is_valid(raise_exception=True)
        quotas.quota_reset(
            clinic=clinic, kind=data.validated_data["period"], actor=request.user.get_username(), note=data.validated_data.get("note", "")
        )
        return Response(quotas.quota_usage(clinic), status=status.HTTP_200_OK)


class QuotaLedgerView(APIView):
    permission_classes = [IsClinicMember]

    @extend_schema(responses={200: LedgerRow(many=True)})
    def get(self, request, clinic_id: int):
        """The latest 200 quota changes of a clinic, newest first."""
        clinic = _clinic(request, clinic_id)
        rows = QuotaLedger.objects.filter(period__clinic=clinic).select_related("period")[:200]
        return Response(LedgerRow(rows, many=True).data)

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from analysis import selectors, services
from analysis.api.serializers import (
    PeriodSummaryFilterSerializer,
    PeriodSummaryGenerateSerializer,
    PeriodSummarySerializer,
    ScorecardFilterSerializer,
    ScorecardSerializer,
    ScorecardUpdateSerializer,
    ScorecardVersionSerializer,
)
from analysis.models import PeriodSummary, Scorecard
from medai.api import ClinicScopedMixin, resolve_administrator, resolve_clinic
from medai.auth import StaffWritesOnly, clinic_ids_for


class ScorecardViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The clinic's scorecards (one per call type). Anyone in the clinic reads; staff replace criteria."""

    queryset = Scorecard.objects.all()
    serializer_class = ScorecardSerializer
    permission_classes = [StaffWritesOnly]
    pagination_class = None

    def get_queryset(self):
        queryset = selectors.scorecard_queryset(super().get_queryset())
        if self.action == "list":
            params = ScorecardFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            if params.validated_data.get("clinic"):
                queryset = queryset.filter(clinic_id=params.validated_data["clinic"])
            if params.validated_data.get("call_type"):
                queryset = queryset.filter(call_type=params.validated_data["call_type"])
        return queryset.order_by("clinic_id", "call_type")

    @extend_schema(parameters=[ScorecardFilterSerializer])
    def list(self, request, *args, **kwargs):
        ids = clinic_ids_for(request.user)
        if ids is not None:
            # A clinic's scorecard is the default until someone edits it: make it visible (and editable).
            services.scorecards_ensure_for_clinics(ids)
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=ScorecardUpdateSerializer,
        responses={200: ScorecardSerializer},
        description=_("Replace all criteria of the scorecard. Creates a new version; analyses record the version used."),
    )
    def update(self, request, *args, **kwargs):
        scorecard = self.get_object()
        data = ScorecardUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scorecard = services.scorecard_replace_criteria(
            scorecard=scorecard, criteria=data.validated_data["criteria"], actor=request.user.get_username()
        )
        scorecard = selectors.scorecard_queryset(Scorecard.objects.filter(pk=scorecard.pk)).get()
        return Response(ScorecardSerializer(scorecard).data)

    @extend_schema(responses={200: ScorecardVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        """Every version of this scorecard, newest first: the criteria each version scored with."""
        scorecard = self.get_object()
        return Response(ScorecardVersionSerializer(scorecard.versions.order_by("-version"), many=True).data)


class PeriodSummaryViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Weekly and monthly coaching summaries per clinic and per administrator."""

    queryset = PeriodSummary.objects.all()
    serializer_class = PeriodSummarySerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset.select_related("clinic", "administrator")
        params = PeriodSummaryFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        return selectors.period_summary_list(
            queryset=queryset,
            clinic_id=values.get("clinic"),
            kind=values.get("kind"),
            administrator_id=values.get("administrator"),
            clinic_only=values.get("scope") == "clinic",
            date_from=values.get("date_from"),
            date_to=values.get("date_to"),
        )

    @extend_schema(parameters=[PeriodSummaryFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=PeriodSummaryGenerateSerializer, responses={201: PeriodSummarySerializer})
    @action(detail=False, methods=["post"])
    def generate(self, request):
        """Generate (or regenerate) the summary of the week or month containing ``date``."""
        data = PeriodSummaryGenerateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        clinic = resolve_clinic(request.user, values.get("clinic"))
        administrator = resolve_administrator(clinic, values.get("administrator"))
        summary = services.period_summary_generate(
            clinic=clinic, kind=values["kind"], day=values["date"], administrator=administrator
        )
        return Response(PeriodSummarySerializer(summary).data, status=status.HTTP_201_CREATED)

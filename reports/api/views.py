from __future__ import annotations

from datetime import date

from django.http import FileResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.models import Campaign
from clinics.models import Administrator, Clinic
from medai.api import ClinicScopedMixin, resolve_administrator, resolve_clinic
from medai.auth import clinic_ids_for
from reports import selectors, services
from reports.api.serializers import (
    FunnelSerializer,
    MetricsQuerySerializer,
    ReportCreateSerializer,
    ReportSerializer,
    SummarySerializer,
)
from reports.models import Report


class _MetricsView(APIView):
    """Shared parsing: query parameters → tenant-scoped :class:`selectors.MetricFilters`."""

    def filters(self, request) -> tuple[selectors.MetricFilters, dict]:
        params = MetricsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        clinic = resolve_clinic(request.user, values["clinic"]) if values.get("clinic") else None
        clinic_ids = [clinic.pk] if clinic else clinic_ids_for(request.user)
        if values.get("administrator"):
            admins = Administrator.objects.filter(pk=values["administrator"])
            if clinic_ids is not None:
                admins = admins.filter(clinic_id__in=clinic_ids)
            if not admins.exists():
                raise serializers.ValidationError({"administrator": [_("No such administrator in your clinics.")]})
        if values.get("campaign"):
            campaigns = Campaign.objects.filter(pk=values["campaign"])
            if clinic_ids is not None:
                campaigns = campaigns.filter(clinic_id__in=clinic_ids)
            if not campaigns.exists():
                raise serializers.ValidationError({"campaign": [_("No such campaign in your clinics.")]})
        date_to = values.get("date_to") or self._today(clinic, clinic_ids)
        date_from = values.get("date_from") or selectors.default_period(date_to)[0]
        if date_from > date_to:
            raise serializers.ValidationError({"date_from": [_("The first day is after the last day.")]})
        direction = values.get("direction", "both")
        filters = selectors.MetricFilters(
            clinic_ids=clinic_ids,
            date_from=date_from,
            date_to=date_to,
            administrator_id=values.get("administrator"),
            traffic_source=values.get("source"),
            call_type=values.get("call_type"),
            direction=None if direction == "both" else direction,
            call_source=values.get("call_source"),
            campaign_id=values.get("campaign"),
        )
        period = {"clinic": clinic.pk if clinic else None, "date_from": date_from, "date_to": date_to, "direction": direction}
        return filters, {**period, "group_by": values.get("group_by")}

    @staticmethod
    def _today(clinic: Clinic | None, clinic_ids: list[int] | None) -> date:
        if clinic is None and clinic_ids and len(clinic_ids) == 1:
            clinic = Clinic.objects.filter(pk=clinic_ids[0]).only("time_zone").first()
        return timezone.now().astimezone(clinic.tz).date() if clinic else timezone.now().date()


class FunnelView(_MetricsView):
    """Called → talked (answered) → interested → booked, with talk, interest and booking rates.

    Read from the daily roll-ups (``bi_daily_metrics``): fast over any number of calls.
    """

    @extend_schema(parameters=[MetricsQuerySerializer], responses={200: FunnelSerializer})
    def get(self, request):
        filters, period = self.filters(request)
        group_by = period.pop("group_by")
        rows = selectors.metric_rows(filters)
        groups = None
        if group_by:
            groups, figures = selectors.metrics_grouped_with_totals(rows, group_by)
        else:
            figures = selectors.metrics_totals(rows)
        funnel = selectors.funnel_of(figures)
        labels = {"calls": _("Called"), "answered": _("Talked"), "interested": _("Interested"), "booked": _("Booked")}
        steps, previous = [], None
        for key in selectors.FUNNEL_STEPS:
            count = funnel[key]
            rate = None if previous is None else (round(count * 100 / previous, 2) if previous else None)
            steps.append({"key": key, "label": labels[key], "count": count, "rate": rate})
            previous = count
        body = {**period, **funnel, "steps": steps}
        if groups is not None:
            body["groups"] = [
                {"key": g["key"], **({"label": g["label"]} if "label" in g else {}), **selectors.funnel_of(g)} for g in groups
            ]
        return Response(body)


class SummaryView(_MetricsView):
    """Headline KPIs: calls, answered, booked, conversion %, quality %, good-calls %, talk time."""

    @extend_schema(parameters=[MetricsQuerySerializer], responses={200: SummarySerializer})
    def get(self, request):
        filters, period = self.filters(request)
        group_by = period.pop("group_by")
        rows = selectors.metric_rows(filters)
        if group_by:
            groups, totals = selectors.metrics_grouped_with_totals(rows, group_by)
            return Response({**period, "totals": totals, "groups": groups})
        return Response({**period, "totals": selectors.metrics_totals(rows)})


class ReportViewSet(
    ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """PDF/XLSX reports: request one (built in the background), poll its status, download it."""

    queryset = Report.objects.select_related("clinic")
    serializer_class = ReportSerializer

    @extend_schema(
        request=ReportCreateSerializer,
        responses={202: ReportSerializer},
        description=_("Queue a report for a period (clinic days); poll GET /api/reports/{id}/ until status is done."),
    )
    def create(self, request, *args, **kwargs):
        data = ReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        clinic = resolve_clinic(request.user, values.get("clinic"))
        administrator = resolve_administrator(clinic, values.get("administrator"))
        report = services.report_request(
            clinic=clinic,
            kind=values["kind"],
            date_from=values["date_from"],
            date_to=values["date_to"],
            administrator=administrator,
            via=Report.Via.API,
            user=request.user,
            label=str(request.user),
        )
        return Response(ReportSerializer(report, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={(200, "application/octet-stream"): bytes},
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The report's file, for an authorised caller (404 for anyone else)."""
        report = self.get_object()
        if report.status != Report.Status.DONE or not report.file:
            return Response(
                {"error": {"code": "not_ready", "message": _("The report is not ready (status: %(status)s).") % {"status": report.status}}},
                status=status.HTTP_409_CONFLICT,
            )
        response = FileResponse(report.file.open("rb"), content_type=report.content_type, as_attachment=True, filename=report.filename)
        response["Cache-Control"] = "private, no-store"
        return response

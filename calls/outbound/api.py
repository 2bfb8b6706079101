"""``/api/outbound/…``: AI calls, campaigns and the do-not-call list, scoped to the caller's clinics."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall
from calls.outbound import campaigns, selectors, services
from calls.outbound.serializers import (
    CampaignContactSerializer,
    CampaignCreateSerializer,
    CampaignSerializer,
    DoNotCallCreateSerializer,
    DoNotCallSerializer,
    ImportReportSerializer,
    ImportSerializer,
    OutboundCallCreateSerializer,
    OutboundCallFilterSerializer,
    OutboundCallSerializer,
)
from medai.api import ClinicScopedMixin, resolve_clinic


def _actor(request) -> str:
    return str(request.user)[:150]


class OutboundCallViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Outbound AI calls: start one, follow its status, read the analysis when it is done."""

    queryset = OutboundCall.objects.all()
    serializer_class = OutboundCallSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            params = OutboundCallFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            values = dict(params.validated_data)
            return selectors.outbound_call_list(
                queryset=queryset,
                status=values.get("status"),
                campaign_id=values.get("campaign"),
                clinic_id=values.get("clinic"),
                date_from=values.get("date_from"),
                date_to=values.get("date_to"),
            )
        return selectors.outbound_call_list(queryset=queryset)

    @extend_schema(parameters=[OutboundCallFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=OutboundCallCreateSerializer,
        responses={202: OutboundCallSerializer},
        description=_(
            "Queue an AI call; it is dialled within seconds. Poll the call for its status: queued → dialing → "
            "ringing → in_progress → completed | no_answer | busy | voicemail | failed, then the analysis."
        ),
    )
    def create(self, request, *args, **kwargs):
        data = OutboundCallCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        clinic = resolve_clinic(request.user, values.pop("clinic", None))
        call = services.outbound_call_create(clinic=clinic, actor=_actor(request), **values)
        return Response(OutboundCallSerializer(call).data, status=status.HTTP_202_ACCEPTED)


class CampaignViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Campaigns: create (optionally with the contact file), import more contacts, start, pause,
    resume, cancel; progress on every campaign."""

    queryset = Campaign.objects.select_related("clinic").order_by("-created_at", "-id")
    serializer_class = CampaignSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": CampaignCreateSerializer, "application/json": CampaignCreateSerializer},
        responses={201: CampaignSerializer},
    )
    def create(self, request, *args, **kwargs):
        data = CampaignCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        clinic = resolve_clinic(request.user, values.pop("clinic", None))
        upload, start = values.pop("file", None), values.pop("start", False)
        with transaction.atomic():  # an unreadable file or a failed start leaves no half-made campaign
            campaign = campaigns.campaign_create(clinic=clinic, actor=_actor(request), **values)
            if upload is not None:
                campaigns.campaign_import(campaign=campaign, filename=upload.name, data=upload.read(), actor=_actor(request))
            if start:
                campaigns.campaign_start(campaign=campaign)
        campaign.refresh_from_db()
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={200: ImportReportSerializer})
    @action(detail=True, methods=["post"], url_path="import", parser_classes=[MultiPartParser, FormParser])
    def import_contacts(self, request, pk=None):
        """Add contacts from a CSV or XLSX file: valid rows are imported, the others reported by row."""
        campaign = self.get_object()
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        report = campaigns.campaign_import(campaign=campaign, filename=upload.name, data=upload.read(), actor=_actor(request))
        return Response(report.as_dict())

    @extend_schema(responses={200: CampaignContactSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def contacts(self, request, pk=None):
        campaign = self.get_object()
        queryset = CampaignContact.objects.filter(campaign=campaign).order_by("position", "id")
        state = request.query_params.get("state")
        if state in CampaignContact.State.values:
            queryset = queryset.filter(state=state)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(CampaignContactSerializer(page, many=True).data)

    def _control(self, request, operation):
        campaign = operation(campaign=self.get_object())
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._control(request, campaigns.campaign_start)

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._control(request, campaigns.campaign_pause)

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(request, campaigns.campaign_resume)

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(request, campaigns.campaign_cancel)


class DoNotCallViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The clinic's do-not-call list: campaigns never dial these numbers, single calls are refused."""

    queryset = DoNotCall.objects.order_by("phone")
    serializer_class = DoNotCallSerializer

    @extend_schema(request=DoNotCallCreateSerializer, responses={201: DoNotCallSerializer})
    def create(self, request, *args, **kwargs):
        data = DoNotCallCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        clinic = resolve_clinic(request.user, values.get("clinic"))
        entry = campaigns.do_not_call_add(clinic=clinic, phone=values["phone"], reason=values["reason"], actor=_actor(request))
        return Response(DoNotCallSerializer(entry).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        campaigns.do_not_call_remove(entry=get_object_or_404(self.get_queryset(), pk=instance.pk))

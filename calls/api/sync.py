"""``/api/sync/``: start a background sync of a date range from amoCRM, and watch it.

``POST /api/sync/`` ``{"clinic"?, "date_from", "date_to"}`` (clinic-local days) answers 202 with the
run's state and ``status_url``; ``GET /api/sync/<clinic id>/`` shows its progress and result.
Staff users and API keys may start a sync (a key for its own clinic only); anyone in the clinic may watch.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from calls.amocrm import runs
from calls.amocrm.connection import CrmUnavailable
from calls.amocrm.selectors import connection_sync_status
from clinics.models import CrmConnection
from medai.api import ClinicScopedMixin, resolve_clinic
from medai.auth import ApiKeyPrincipal, is_staff_caller
from medai.errors import error_body


class SyncStartSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, help_text="Needed only when the caller sees several clinics")
    date_from = serializers.DateField(help_text="First day, in the clinic's time zone")
    date_to = serializers.DateField(help_text="Last day (inclusive), in the clinic's time zone")

    def validate(self, attrs):
        try:
            runs.validate_range(attrs["date_from"], attrs["date_to"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return attrs


class SyncRunSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    requested_by = serializers.CharField()
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.DictField(help_text="phase, done, total")
    result = serializers.DictField(help_text="Counts: events, created, existing, booked, ...")
    error = serializers.CharField(allow_blank=True)


class SyncStatusSerializer(serializers.Serializer):
    clinic = serializers.IntegerField()
    connection_status = serializers.ChoiceField(choices=CrmConnection.Status.choices)
    last_synced_at = serializers.DateTimeField(allow_null=True)
    synced_up_to = serializers.DateTimeField(allow_null=True, help_text="The scheduled sync's cursor")
    last_error = serializers.CharField(allow_blank=True)
    run = SyncRunSerializer(allow_null=True, help_text="The last manual range sync")
    status_url = serializers.CharField()


class SyncViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """amoCRM sync state per clinic; POST starts a range sync in the background."""

    queryset = CrmConnection.objects.select_related("clinic").order_by("clinic_id")
    serializer_class = SyncStatusSerializer
    lookup_field = "clinic_id"
    lookup_value_regex = r"\d+"

    def _status(self, connection: CrmConnection) -> dict:
        url = reverse("amocrm-sync-detail", kwargs={"clinic_id": connection.clinic_id})
        return {**connection_sync_status(connection), "status_url": self.request.build_absolute_uri(url)}

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        data = SyncStatusSerializer([self._status(c) for c in page], many=True).data
        return self.get_paginated_response(data)

    @extend_schema(parameters=[OpenApiParameter("clinic_id", int, OpenApiParameter.PATH)])
    def retrieve(self, request, *args, **kwargs):
        return Response(SyncStatusSerializer(self._status(self.get_object())).data)

    @extend_schema(request=SyncStartSerializer, responses={202: SyncStatusSerializer, 409: None})
    def create(self, request, *args, **kwargs):
        user = request.user
        if not (is_staff_caller(user) or isinstance(user, ApiKeyPrincipal)):
            raise exceptions.PermissionDenied(_("Only staff users and API keys may start a sync."))
        data = SyncStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        clinic = resolve_clinic(user, values.get("clinic"))
        connection = CrmConnection.objects.select_related("clinic").filter(clinic=clinic).first()
        if connection is None:
            return Response(
                error_body("not_connected", _("This clinic has no amoCRM connection.")), status=status.HTTP_409_CONFLICT
            )
        try:
            runs.sync_run_request(
                connection=connection, date_from=values["date_from"], date_to=values["date_to"], requested_by=str(user)
            )
        except CrmUnavailable as exc:
            return Response(error_body("not_connected", str(exc)), status=status.HTTP_409_CONFLICT)
        except runs.SyncBusy as exc:
            return Response(error_body("busy", str(exc)), status=status.HTTP_409_CONFLICT)
        body = SyncStatusSerializer(self._status(connection)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})

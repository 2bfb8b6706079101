from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from calls import selectors, services
from calls.api.serializers import (
    CallDetailSerializer,
    CallListSerializer,
    CallUploadSerializer,
    ReprocessRangeSerializer,
    ReprocessSerializer,
)
from calls.models import Call, Stage
from medai.api import ClinicScopedMixin, resolve_administrator, resolve_clinic
from medai.auth import clinic_ids_for


class CallFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="First day, in the clinic's time zone")
    date_to = serializers.DateField(required=False, help_text="Last day (inclusive), in the clinic's time zone")
    direction = serializers.ChoiceField(choices=Call.Direction.choices, required=False)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    administrator = serializers.IntegerField(required=False)
    booked = serializers.BooleanField(required=False, allow_null=True, default=None)
    source = serializers.ChoiceField(choices=Call.Source.choices, required=False)
    clinic = serializers.IntegerField(required=False)
    phone = serializers.CharField(required=False)
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text=(
            "Search: words or a \"quoted phrase\" in the transcript (Russian word forms on PostgreSQL), "
            "a phone number in any format, an administrator's name or an external id"
        ),
    )

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_to"] < attrs["date_from"]:
            raise serializers.ValidationError(_("date_to is before date_from."))
        return attrs


class CallViewSet(ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Calls of the caller's clinic(s): list with filters, detail, upload, reprocess."""

    queryset = Call.objects.all()
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_serializer_class(self):
        return CallDetailSerializer if self.action == "retrieve" else CallListSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            params = CallFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            filters = dict(params.validated_data)
            filters["administrator_id"] = filters.pop("administrator", None)
            filters["clinic_id"] = filters.pop("clinic", None)
            return selectors.call_list(queryset=queryset, **filters)
        if self.action == "retrieve":
            return selectors.call_detail_queryset(queryset)
        return queryset

    @extend_schema(parameters=[CallFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": CallUploadSerializer, "application/json": CallUploadSerializer},
        responses={201: CallDetailSerializer, 200: CallDetailSerializer},
        description=_(
            "Ingest a call from an audio file, a recording URL, or a ready transcript. Idempotent by "
            "(clinic, external_id): sending the same call again returns the existing call with 200."
        ),
    )
    def create(self, request, *args, **kwargs):
        data = CallUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        clinic = resolve_clinic(request.user, values.get("clinic"))
        administrator = resolve_administrator(clinic, values.get("administrator"))
        audio = values.get("audio")
        if audio is not None and audio.size > settings.MAX_AUDIO_BYTES:
            raise serializers.ValidationError(
                {"audio": [_("File too large: the limit is %(mb)d MB.") % {"mb": settings.MAX_AUDIO_BYTES // 2**20}]}
            )
        result = services.call_ingest(
            clinic=clinic,
            started_at=values["started_at"],
            direction=values["direction"],
            status=values["status"],
            external_id=values.get("external_id", ""),
            duration_seconds=values.get("duration_seconds"),
            phone=values.get("phone", ""),
            recording_url=values.get("recording_url", ""),
            audio=audio.read() if audio is not None else None,
            audio_filename=audio.name if audio is not None else "",
            transcript=values.get("transcript"),
            administrator=administrator,
            traffic_source=values.get("traffic_source", ""),
            source=Call.Source.UPLOAD,
        )
        call = selectors.call_detail_queryset(Call.objects.filter(pk=result.call.pk)).get()
        return Response(
            CallDetailSerializer(call, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(request=ReprocessSerializer, responses={202: CallListSerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Restart this call's pipeline from the chosen step."""
        call = self.get_object()
        data = ReprocessSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not services.call_reprocess(call=call, from_step=data.validated_data["stage"], user_label=str(request.user)):
            return Response(
                {"error": {"code": "conflict", "message": _("The call is being processed right now; try again shortly.")}},
                status=status.HTTP_409_CONFLICT,
            )
        call.refresh_from_db()
        return Response(CallListSerializer(call).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReprocessRangeSerializer, responses={202: None}, operation_id="calls_reprocess_range")
    @action(detail=False, methods=["post"], url_path="reprocess")
    def reprocess_range(self, request):
        """Restart every call in a date range (clinic days) from the chosen step."""
        data = ReprocessRangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("clinic"):
            clinic_ids = [resolve_clinic(request.user, values["clinic"]).pk]
        else:
            clinic_ids = clinic_ids_for(request.user)
            if clinic_ids is None:
                raise serializers.ValidationError({"clinic": [_("Say which clinic.")]})
        count = services.calls_reprocess_range(
            clinic_ids=clinic_ids,
            date_from=values["date_from"],
            date_to=values["date_to"],
            from_step=values["stage"],
            stages=values.get("only_stages"),
            user_label=str(request.user),
        )
        return Response({"restarted": count}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "audio/*"): bytes}, parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)])
    @action(detail=True, methods=["get"])
    def recording(self, request, pk=None):
        """The call's audio, for an authorised caller."""
        call = self.get_object()
        recording = getattr(call, "recording", None) if hasattr(call, "recording") else None
        if recording is None or not recording.file:
            return Response(
                {"error": {"code": "not_found", "message": _("This call has no stored recording.")}},
                status=status.HTTP_404_NOT_FOUND,
            )
        return FileResponse(recording.file.open("rb"), content_type=recording.mime or "application/octet-stream")

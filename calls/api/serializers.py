from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import Call, CallEvent, Stage, Transcript
from calls.pipeline import REPROCESS_STEPS
from medai.signing import signed_url


class AdministratorRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CallListSerializer(serializers.ModelSerializer):
    administrator = AdministratorRefSerializer(allow_null=True)
    call_type = serializers.SerializerMethodField()
    overall_score = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "clinic",
            "external_id",
            "source",
            "direction",
            "status",
            "phone",
            "started_at",
            "local_date",
            "duration_seconds",
            "administrator",
            "traffic_source",
            "booked",
            "booked_source",
            "stage",
            "skip_reason",
            "failed_stage",
            "last_error",
            "call_type",
            "overall_score",
        ]

    def _analysis(self, call):
        return getattr(call, "analysis", None) if hasattr(call, "analysis") else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_call_type(self, call):
        analysis = self._analysis(call)
        return analysis.call_type if analysis else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_overall_score(self, call):
        analysis = self._analysis(call)
        return float(analysis.overall_score) if analysis and analysis.overall_score is not None else None


class TranscriptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Transcript
        fields = ["language", "provider", "model", "billed_seconds", "roles", "role_confidence", "roles_overridden", "utterances"]


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["stage", "status", "attempt", "duration_ms", "error", "provider_request_id", "detail", "created_at"]


class AnalysisCriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=10)
    applicable = serializers.BooleanField(help_text=_("False: excluded from the overall score (condition not met or not assessed)."))
    comment = serializers.CharField()


class AnalysisObjectionSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=["no_time", "expensive", "think", "not_relevant", "comparing", "consult"])
    label = serializers.CharField()
    quote = serializers.CharField()
    handled = serializers.BooleanField()
    comment = serializers.CharField()


class AnalysisSerializer(serializers.Serializer):
    engine = serializers.CharField()
    scorecard_version = serializers.CharField()
    call_type = serializers.CharField()
    call_type_reason = serializers.CharField()
    overall_score = serializers.FloatField(
        allow_null=True, help_text=_("Weighted mean of the applicable criteria, computed by MedAI; null for 'other' calls.")
    )
    booked = serializers.BooleanField(allow_null=True)
    booked_source = serializers.CharField()
    criteria = AnalysisCriterionSerializer(many=True)
    objections = AnalysisObjectionSerializer(many=True)
    summary = serializers.CharField()
    disposition = serializers.CharField()
    follow_up = serializers.CharField()
    interest = serializers.CharField()
    crm_status = serializers.CharField()
    recommendations = serializers.ListField(child=serializers.CharField())
    metrics = serializers.DictField()

    def to_representation(self, analysis):
        call = analysis.call
        return {
            "engine": analysis.engine,
            "scorecard_version": analysis.scorecard_version,
            "call_type": analysis.call_type,
            "call_type_reason": analysis.call_type_reason,
            "overall_score": float(analysis.overall_score) if analysis.overall_score is not None else None,
            # The call's booking is the authoritative one (CRM wins over the transcript).
            "booked": call.booked,
            "booked_source": call.booked_source,
            "criteria": analysis.criteria,
            "objections": analysis.objections,
            "summary": analysis.summary,
            "disposition": analysis.disposition,
            "follow_up": analysis.follow_up,
            "interest": analysis.interest,
            "crm_status": analysis.crm_status,
            "recommendations": analysis.recommendations,
            "metrics": analysis.metrics,
        }


class CallDetailSerializer(CallListSerializer):
    transcript = serializers.SerializerMethodField()
    analysis = serializers.SerializerMethodField()
    recording = serializers.SerializerMethodField()
    events = CallEventSerializer(many=True)

    class Meta(CallListSerializer.Meta):
        fields = [
            *CallListSerializer.Meta.fields,
            "crm_lead_id",
            "crm_contact_id",
            "lead_processing_minutes",
            "attempts",
            "retry_at",
            "ingested_at",
            "audio_fetched_at",
            "transcribed_at",
            "analysed_at",
            "synced_at",
            "done_at",
            "transcript",
            "analysis",
            "recording",
            "events",
        ]

    @extend_schema_field(TranscriptSerializer(allow_null=True))
    def get_transcript(self, call):
        transcript = getattr(call, "transcript", None) if hasattr(call, "transcript") else None
        return TranscriptSerializer(transcript).data if transcript else None

    @extend_schema_field(AnalysisSerializer(allow_null=True))
    def get_analysis(self, call):
        analysis = self._analysis(call)
        return AnalysisSerializer(analysis).data if analysis else None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_recording(self, call):
        recording = getattr(call, "recording", None) if hasattr(call, "recording") else None
        if not recording or not recording.file:
            return None
        return {
            "mime": recording.mime,
            "size_bytes": recording.size_bytes,
            "duration_seconds": recording.duration_seconds,
            "url": signed_url("recording", recording.pk),
        }


class JSONOrStringField(serializers.JSONField):
    """A JSON value, also accepted as a JSON-encoded string (multipart form fields are strings)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise serializers.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from exc
        return super().to_internal_value(data)


class CallUploadSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, help_text=_("Needed only when you can access several clinics."))
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=128)
    direction = serializers.ChoiceField(choices=Call.Direction.choices, default=Call.Direction.INBOUND)
    status = serializers.ChoiceField(choices=Call.Status.choices, default=Call.Status.ANSWERED)
    started_at = serializers.DateTimeField()
    duration_seconds = serializers.IntegerField(required=False, min_value=0, max_value=24 * 3600)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    administrator = serializers.IntegerField(required=False)
    traffic_source = serializers.CharField(required=False, allow_blank=True, max_length=100)
    recording_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    audio = serializers.FileField(required=False)
    transcript = JSONOrStringField(required=False)

    def validate_recording_url(self, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError(_("Only http(s) recording URLs are accepted."))
        return value

    def validate(self, attrs):
        given = [k for k in ("audio", "recording_url", "transcript") if attrs.get(k) not in (None, "")]
        if len(given) > 1:
            raise serializers.ValidationError(_("Give only one of: audio, recording_url, transcript."))
        if not given and attrs.get("status", Call.Status.ANSWERED) == Call.Status.ANSWERED:
            raise serializers.ValidationError(_("An answered call needs audio, a recording_url or a transcript."))
        return attrs


class ReprocessSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=REPROCESS_STEPS, help_text=_("The step to restart from."))


class ReprocessRangeSerializer(ReprocessSerializer):
    clinic = serializers.IntegerField(required=False)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    only_stages = serializers.ListField(
        child=serializers.ChoiceField(choices=Stage.choices),
        required=False,
        help_text=_("Restart only calls currently in these stages (e.g. failed, skipped)."),
    )

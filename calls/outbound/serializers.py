"""Input and output serializers of ``/api/outbound/…`` (separate per operation)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall, default_calling_windows
from calls.outbound import selectors
from calls.outbound.conversation import LANGUAGE_CHOICES


class CallContentSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, help_text=_("Needed only when you have access to several clinics."))
    language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, default="ru")
    voice = serializers.CharField(
        max_length=100, default="female", help_text=_("female, male, or a VoxEngine VoiceList path (Google.ru_RU_Wavenet_A).")
    )
    greeting = serializers.CharField(max_length=1000, help_text=_("The first thing the AI says."))
    prompt = serializers.CharField(max_length=8000, required=False, allow_blank=True, default="", help_text=_("Instructions for the LLM."))
    script = serializers.CharField(
        max_length=8000, required=False, allow_blank=True, default="",
        help_text=_("Replies in order, one per line: used when no LLM is configured (or it fails)."),
    )
    purpose = serializers.CharField(max_length=300, required=False, allow_blank=True, default="", help_text=_("The goal; the analysis checks whether it was reached."))


class OutboundCallCreateSerializer(CallContentSerializer):
    phone = serializers.CharField(max_length=32, help_text=_("E.164, e.g. +79990001122."))
    crm_lead_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class OutboundAnalysisSerializer(serializers.Serializer):
    call_type = serializers.CharField()
    summary = serializers.CharField()
    disposition = serializers.CharField()
    follow_up = serializers.CharField(help_text=_("A message to send to the customer."))
    interest = serializers.CharField(help_text=_("high, medium, low, none or unknown"))
    crm_status = serializers.CharField()
    booked = serializers.BooleanField(allow_null=True)
    overall_score = serializers.FloatField(allow_null=True)
    criteria = serializers.ListField(child=serializers.DictField())


class OutboundCallSerializer(serializers.ModelSerializer):
    call = serializers.PrimaryKeyRelatedField(read_only=True, help_text=_("The call in the pipeline (transcript, analysis)."))
    analysis = serializers.SerializerMethodField()

    class Meta:
        model = OutboundCall
        fields = [
            "id", "clinic", "campaign", "contact", "status", "phone", "language", "voice", "greeting", "prompt", "script",
            "purpose", "crm_lead_id", "created_at", "dial_started_at", "answered_at", "finished_at", "duration_seconds",
            "session_id", "record_url", "error", "sip_code", "result_source", "start_attempts", "call", "analysis",
        ]

    @extend_schema_field(OutboundAnalysisSerializer(allow_null=True))
    def get_analysis(self, call):
        return selectors.analysis_of(call)


class OutboundCallFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OutboundCall.Status.choices, required=False)
    campaign = serializers.IntegerField(required=False)
    clinic = serializers.IntegerField(required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class CampaignCreateSerializer(CallContentSerializer):
    name = serializers.CharField(max_length=200)
    max_concurrency = serializers.IntegerField(min_value=1, max_value=100, default=5)
    calling_windows = serializers.JSONField(
        binary=True, default=default_calling_windows,
        help_text=_('Per weekday (0 = Monday), clinic time: {"0": [["09:00", "20:00"]], "5": [["10:00", "16:00"]]}'),
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=10, default=3)
    retry_no_answer_minutes = serializers.IntegerField(min_value=0, max_value=10080, default=120)
    retry_busy_minutes = serializers.IntegerField(min_value=0, max_value=10080, default=20)
    retry_voicemail_minutes = serializers.IntegerField(min_value=0, max_value=10080, default=240)
    file = serializers.FileField(required=False, help_text=_("Contacts: CSV or XLSX with a phone column (and optional name, lead id)."))
    start = serializers.BooleanField(default=False, help_text=_("Start right after the import."))


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=_("CSV or XLSX with a phone column (and optional name, lead id)."))


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text=_("Row number in the file (1 = first line)."))
    value = serializers.CharField()
    error = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    file = serializers.CharField()
    rows = serializers.IntegerField()
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    do_not_call = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = RowErrorSerializer(many=True, help_text=_("The first 200 row errors."))


class CampaignProgressSerializer(serializers.Serializer):
    contacts = serializers.IntegerField()
    states = serializers.DictField(child=serializers.IntegerField())
    calls = serializers.DictField(child=serializers.IntegerField())
    calls_total = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    percent_done = serializers.FloatField()
    funnel = serializers.DictField(child=serializers.IntegerField(), help_text=_("contacts, dialled, reached, interested, leads"))


class CampaignSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id", "clinic", "name", "status", "language", "voice", "greeting", "prompt", "script", "purpose",
            "max_concurrency", "calling_windows", "max_attempts", "retry_no_answer_minutes", "retry_busy_minutes",
            "retry_voicemail_minutes", "next_wake_at", "last_error", "import_report", "created_by", "created_at",
            "started_at", "finished_at", "progress",
        ]

    @extend_schema_field(CampaignProgressSerializer)
    def get_progress(self, campaign):
        return selectors.campaign_progress(campaign)


class CampaignContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignContact
        fields = ["id", "row_number", "phone", "name", "crm_lead_id", "state", "attempts", "retry_at", "last_outcome", "finished_reason"]


class DoNotCallSerializer(serializers.ModelSerializer):
    class Meta:
        model = DoNotCall
        fields = ["id", "clinic", "phone", "reason", "created_by", "created_at"]
        read_only_fields = fields


class DoNotCallCreateSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False)
    phone = serializers.CharField(max_length=32)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

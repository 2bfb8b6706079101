from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from calls import pipeline, selectors, services
from calls.models import Call, CallEvent, Recording, Transcript
from medai.admin import ClinicScopedAdmin, ClinicScopedInline
from medai.signing import signed_url


def _clock(seconds: float) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def render_dialogue(transcript: Transcript | None) -> str:
    if transcript is None:
        return render_to_string("calls/transcript_dialogue.html", {"utterances": []})
    labels = dict(Transcript.Role.choices)
    utterances = [
        {**u, "clock": _clock(u.get("start", 0)), "role_label": labels.get(u.get("role"), u.get("speaker", "?"))}
        for u in transcript.utterances
    ]
    confidence = None if transcript.role_confidence is None else f"{transcript.role_confidence:.0%}"
    return render_to_string(
        "calls/transcript_dialogue.html",
        {"utterances": utterances, "roles_confidence": confidence, "overridden": transcript.roles_overridden},
    )


class CallEventInline(ClinicScopedInline, admin.TabularInline):
    model = CallEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "stage", "status", "attempt", "duration_ms", "error", "provider_request_id"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    verbose_name_plural = _("stage history")

    def has_add_permission(self, request, obj=None):
        return False


def _reprocess_action(step: str, label):
    def action(modeladmin, request, queryset):
        count = pipeline.reprocess_queryset(queryset, from_step=step, user_label=str(request.user))
        skipped = queryset.count() - count
        message = _("%(n)d call(s) restarted from “%(step)s”.") % {"n": count, "step": step}
        if skipped:
            message += " " + _("%(n)d left alone because a worker is processing them.") % {"n": skipped}
        modeladmin.message_user(request, message, level=messages.SUCCESS if count else messages.WARNING)

    action.__name__ = f"reprocess_from_{step}"
    return admin.action(description=label)(action)


@admin.register(Call)
class CallAdmin(ClinicScopedAdmin):
    list_display = [
        "id",
        "started_at",
        "clinic",
        "direction",
        "status",
        "duration_seconds",
        "administrator",
        "stage_badge",
        "call_type",
        "score",
        "booked",
    ]
    list_filter = ["clinic", "stage", "direction", "status", "source", "booked", "administrator", "skip_reason"]
    search_fields = ["external_id", "phone", "transcript__text"]
    date_hierarchy = "local_date"
    list_select_related = ["clinic", "administrator", "analysis"]
    inlines = [CallEventInline]
    actions = [
        _reprocess_action("fetch_audio", _("Reprocess from audio fetch")),
        _reprocess_action("transcribe", _("Reprocess from transcription")),
        _reprocess_action("analyse", _("Reprocess from analysis")),
        _reprocess_action("write_back", _("Reprocess from CRM write-back")),
    ]
    readonly_fields = [
        "stage",
        "skip_reason",
        "failed_stage",
        "last_error",
        "attempts",
        "retry_at",
        "ingested_at",
        "audio_fetched_at",
        "transcribed_at",
        "analysed_at",
        "synced_at",
        "done_at",
        "local_date",
        "dialogue",
        "analysis_summary",
        "recording_link",
    ]
    fieldsets = [
        (None, {"fields": ["clinic", "external_id", "source", "direction", "status", "phone", "started_at", "local_date", "duration_seconds", "administrator"]}),
        (_("CRM"), {"fields": ["crm_lead_id", "crm_contact_id", "crm_responsible_user_id", "traffic_source", "lead_processing_minutes", "booked", "booked_source"], "classes": ["collapse"]}),
        (_("Transcript"), {"fields": ["recording_link", "dialogue"]}),
        (_("Analysis"), {"fields": ["analysis_summary"]}),
        (_("Pipeline"), {"fields": ["stage", "skip_reason", "failed_stage", "last_error", "attempts", "retry_at", "ingested_at", "audio_fetched_at", "transcribed_at", "analysed_at", "synced_at", "done_at"]}),
    ]

    def get_search_results(self, request, queryset, search_term):
        # Transcript full-text (Russian word forms on PostgreSQL), phone in any format, administrator.
        if not search_term.strip():
            return queryset, False
        return selectors.call_search(queryset, search_term), False

    @admin.display(description=_("stage"), ordering="stage")
    def stage_badge(self, call):
        colours = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#777"}
        label = call.get_stage_display()
        if call.skip_reason:
            label += f" ({call.get_skip_reason_display()})"
        return format_html('<span style="color:{}">{}</span>', colours.get(call.stage, "#1565c0"), label)

    @admin.display(description=_("call type"))
    def call_type(self, call):
        analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
        return analysis.get_call_type_display() if analysis else "—"

    @admin.display(description=_("score"))
    def score(self, call):
        analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
        return analysis.overall_score if analysis and analysis.overall_score is not None else "—"

    @admin.display(description=_("dialogue"))
    def dialogue(self, call):
        return render_dialogue(getattr(call, "transcript", None) if hasattr(call, "transcript") else None)

    @admin.display(description=_("recording"))
    def recording_link(self, call):
        recording = getattr(call, "recording", None) if hasattr(call, "recording") else None
        if not recording or not recording.file:
            return "—"
        url = signed_url("recording", recording.pk, absolute=False)
        return format_html('<audio controls preload="none" src="{}"></audio>', url)

    @admin.display(description=_("analysis"))
    def analysis_summary(self, call):
        analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
        if analysis is None:
            return "—"
        # render_to_string returns a SafeString: the template escapes every value itself.
        return render_to_string("calls/analysis_block.html", {"analysis": analysis, "call": call})


@admin.register(Transcript)
class TranscriptAdmin(ClinicScopedAdmin):
    clinic_field = "call__clinic"
    list_display = ["call", "provider", "language", "billed_seconds", "role_confidence", "roles_overridden"]
    list_filter = ["provider", "roles_overridden"]
    readonly_fields = ["call", "dialogue", "provider", "model", "language", "billed_seconds", "cost", "request_id", "role_confidence"]
    fields = ["call", "roles", "roles_overridden", "role_confidence", "dialogue", "provider", "model", "language", "billed_seconds", "cost", "request_id"]

    @admin.display(description=_("dialogue"))
    def dialogue(self, transcript):
        return render_dialogue(transcript)

    def save_model(self, request, obj, form, change):
        if "roles" in form.changed_data:
            services.transcript_set_roles(transcript=obj, roles=obj.roles)
        else:
            super().save_model(request, obj, form, change)


@admin.register(Recording)
class RecordingAdmin(ClinicScopedAdmin):
    clinic_field = "call__clinic"
    list_display = ["call", "mime", "size_bytes", "duration_seconds", "created_at"]
    readonly_fields = ["call", "file", "mime", "size_bytes", "duration_seconds", "sha256", "created_at"]


@admin.register(CallEvent)
class CallEventAdmin(ClinicScopedAdmin):
    clinic_field = "call__clinic"
    list_display = ["created_at", "call", "stage", "status", "attempt", "duration_ms", "error"]
    list_filter = ["stage", "status"]
    readonly_fields = ["call", "stage", "status", "attempt", "duration_ms", "error", "provider_request_id", "detail", "created_at"]

    def has_add_permission(self, request):
        return False

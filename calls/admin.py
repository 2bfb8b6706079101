from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from calls import pipeline, selectors, services
from calls.models import (
    Call,
    CallEvent,
    Campaign,
    CampaignContact,
    DoNotCall,
    OutboundCall,
    Recording,
    Transcript,
    VoximplantConnection,
)
from calls.outbound import campaigns as outbound_campaigns
from calls.outbound import selectors as outbound_selectors
from calls.outbound import services as outbound_services
from calls.outbound.conversation import LANGUAGE_CHOICES
from clinics.models import Clinic
from medai.admin import ClinicScopedAdmin, ClinicScopedInline
from medai.auth import clinic_ids_for
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


# --- outbound AI calls (Voximplant) -------------------------------------------------------------
# Appended: the clinic's Voximplant account, AI calls with a "Start call" page and a live status
# view, campaigns (contacts file, progress, pause/resume/cancel), contacts, the do-not-call list.
SECRET_FIELDS = ("api_key", "service_account", "webhook_secret")


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or the form as a whole)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class VoximplantConnectionForm(forms.ModelForm):
    """Secrets are never shown back; leaving a secret empty keeps the stored one."""

    api_key = forms.CharField(label=_("API key"), required=False, widget=forms.PasswordInput(render_value=False))
    service_account = forms.CharField(
        label=_("service account JSON"), required=False, widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"})
    )
    webhook_secret = forms.CharField(label=_("webhook secret"), required=False, widget=forms.PasswordInput(render_value=False))
    clear_secrets = forms.BooleanField(label=_("remove the stored secrets"), required=False)

    class Meta:
        model = VoximplantConnection
        fields = ["clinic", "account_id", "api_key", "service_account", "rule_id", "caller_id", "webhook_secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            if getattr(self.instance, name, ""):
                self.fields[name].help_text = _("Stored (encrypted). Leave empty to keep it.")

    def clean(self):
        data = super().clean()
        for name in SECRET_FIELDS:
            if not data.get(name) and not data.get("clear_secrets"):
                data[name] = getattr(self.instance, name, "")
                setattr(self.instance, name, data[name])
        return data


@admin.register(VoximplantConnection)
class VoximplantConnectionAdmin(ClinicScopedAdmin):
    form = VoximplantConnectionForm
    list_display = ["clinic", "account_id", "rule_id", "caller_id", "updated_at"]


def _status_colour(status: str) -> str:
    return {"completed": "#2e7d32", "failed": "#c62828", "no_answer": "#777", "busy": "#777", "voicemail": "#777"}.get(
        status, "#1565c0"
    )


class StartCallForm(forms.Form):
    clinic = forms.ModelChoiceField(label=_("clinic"), queryset=Clinic.objects.none())
    phone = forms.CharField(label=_("phone"), max_length=32, help_text=_("E.164, e.g. +79990001122."))
    language = forms.ChoiceField(label=_("language"), choices=LANGUAGE_CHOICES, initial="ru")
    voice = forms.CharField(
        label=_("voice"), max_length=100, initial="female", help_text=_("female, male, or a VoxEngine VoiceList path.")
    )
    greeting = forms.CharField(label=_("greeting"), widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    prompt = forms.CharField(label=_("prompt"), widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=8000)
    script = forms.CharField(
        label=_("script"), widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=8000,
        help_text=_("Replies in order, one per line: used when no LLM is configured."),
    )
    purpose = forms.CharField(label=_("goal of the call"), max_length=300, required=False)
    crm_lead_id = forms.IntegerField(label=_("CRM lead"), required=False, min_value=1)

    def __init__(self, *args, clinics, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        if clinics.count() == 1:
            self.fields["clinic"].initial = clinics.first()


@admin.register(OutboundCall)
class OutboundCallAdmin(ClinicScopedAdmin):
    list_display = ["id", "created_at", "clinic", "phone", "status_badge", "campaign", "duration_seconds", "live_link"]
    list_filter = ["clinic", "status", "campaign"]
    search_fields = ["phone", "session_id"]
    list_select_related = ["clinic", "campaign"]
    date_hierarchy = "created_at"
    exclude = ["token"]
    readonly_fields = [
        "clinic", "campaign", "contact", "phone", "language", "voice", "greeting", "prompt", "script", "purpose",
        "crm_lead_id", "status", "status_changed_at", "start_attempts", "next_attempt_at", "dial_started_at",
        "answered_at", "finished_at", "session_id", "duration_seconds", "record_url", "error", "sip_code",
        "result_source", "call", "created_by", "created_at",
    ]

    def has_change_permission(self, request, obj=None):
        return False  # a call is started from the "Start call" page and then only observed

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, call):
        return format_html('<span style="color:{}">{}</span>', _status_colour(call.status), call.get_status_display())

    @admin.display(description=_("live"))
    def live_link(self, call):
        return format_html('<a href="{}">{}</a>', reverse("admin:calls_outboundcall_live", args=[call.pk]), _("status"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("start/", view(self.start_view), name="calls_outboundcall_start"),
            path("<int:pk>/live/", view(self.live_view), name="calls_outboundcall_live"),
            path("<int:pk>/status.json", view(self.status_view), name="calls_outboundcall_status"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:calls_outboundcall_start")

    def _clinics(self, request):
        ids = clinic_ids_for(request.user)
        clinics = Clinic.objects.filter(is_active=True)
        return clinics if ids is None else clinics.filter(pk__in=ids)

    def start_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartCallForm(request.POST or None, clinics=self._clinics(request))
        if request.method == "POST" and form.is_valid():
            values = dict(form.cleaned_data)
            try:
                call = outbound_services.outbound_call_create(actor=request.user.get_username(), **values)
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                self.message_user(request, _("The call is queued and will be dialled in a few seconds."))
                return redirect("admin:calls_outboundcall_live", pk=call.pk)
        context = {**self.admin_site.each_context(request), "title": _("Start an AI call"), "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/calls/outboundcall/start.html", context)

    def live_view(self, request, pk: int):
        call = get_object_or_404(self.get_queryset(request), pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("AI call #%(id)d") % {"id": call.pk},
            "call": call,
            "opts": self.model._meta,
            "status_url": reverse("admin:calls_outboundcall_status", args=[call.pk]),
            "initial": outbound_selectors.outbound_call_status(call),
        }
        return TemplateResponse(request, "admin/calls/outboundcall/live.html", context)

    def status_view(self, request, pk: int):
        call = get_object_or_404(self.get_queryset(request).select_related("call", "call__analysis"), pk=pk)
        return JsonResponse(outbound_selectors.outbound_call_status(call))


class CampaignAdminForm(forms.ModelForm):
    contacts_file = forms.FileField(
        label=_("contacts file"),
        required=False,
        help_text=_("CSV or XLSX with a phone column (optional: name, lead id). Valid rows are imported, the others reported."),
    )

    class Meta:
        model = Campaign
        fields = [
            "clinic", "name", "language", "voice", "greeting", "prompt", "script", "purpose", "max_concurrency",
            "calling_windows", "max_attempts", "retry_no_answer_minutes", "retry_busy_minutes", "retry_voicemail_minutes",
        ]

    def clean(self):
        data = super().clean()
        try:
            if "calling_windows" in data:
                data["calling_windows"] = outbound_campaigns.clean_windows(data["calling_windows"])
            outbound_services.validate_call_content(
                language=data.get("language", ""),
                voice=data.get("voice", ""),
                greeting=data.get("greeting", ""),
                prompt=data.get("prompt", ""),
                script=data.get("script", ""),
            )
        except ValidationError as exc:
            _form_errors(self, exc)
        return data


def _campaign_action(operation, label):
    def action(modeladmin, request, queryset):
        done = 0
        for campaign in queryset:
            try:
                operation(campaign=campaign)
                done += 1
            except ValidationError as exc:
                modeladmin.message_user(request, f"{campaign}: {' '.join(exc.messages)}", level=messages.WARNING)
        if done:
            modeladmin.message_user(request, _("%(n)d campaign(s) updated.") % {"n": done})

    action.__name__ = f"campaign_{operation.__name__.rsplit('_', 1)[-1]}"
    return admin.action(description=label)(action)


@admin.register(Campaign)
class CampaignAdmin(ClinicScopedAdmin):
    form = CampaignAdminForm
    list_display = ["name", "clinic", "status", "progress_short", "max_concurrency", "created_at"]
    list_filter = ["clinic", "status"]
    search_fields = ["name"]
    readonly_fields = ["status", "progress", "import_summary", "next_wake_at", "last_error", "created_by", "started_at", "finished_at"]
    fieldsets = [
        (None, {"fields": ["clinic", "name", "status", "progress", "last_error"]}),
        (_("What the AI says"), {"fields": ["language", "voice", "greeting", "prompt", "script", "purpose"]}),
        (_("Pacing"), {"fields": ["max_concurrency", "calling_windows", "max_attempts", "retry_no_answer_minutes", "retry_busy_minutes", "retry_voicemail_minutes", "next_wake_at"]}),
        (_("Contacts"), {"fields": ["contacts_file", "import_summary"]}),
        (_("History"), {"fields": ["created_by", "started_at", "finished_at"], "classes": ["collapse"]}),
    ]
    actions = [
        _campaign_action(outbound_campaigns.campaign_start, _("Start")),
        _campaign_action(outbound_campaigns.campaign_pause, _("Pause")),
        _campaign_action(outbound_campaigns.campaign_resume, _("Resume")),
        _campaign_action(outbound_campaigns.campaign_cancel, _("Cancel")),
    ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)
        upload = form.cleaned_data.get("contacts_file")
        if upload:
            try:
                report = outbound_campaigns.campaign_import(
                    campaign=obj, filename=upload.name, data=upload.read(), actor=request.user.get_username()
                )
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), level=messages.ERROR)
                return
            level = messages.WARNING if report.error_count else messages.SUCCESS
            self.message_user(request, self._import_text(report.as_dict()), level=level)

    @staticmethod
    def _import_text(report: dict) -> str:
        text = _("Imported %(imported)d of %(rows)d rows; %(duplicates)d duplicates, %(dnc)d on the do-not-call list, %(errors)d with errors.") % {
            "imported": report.get("imported", 0),
            "rows": report.get("rows", 0),
            "duplicates": report.get("duplicates", 0),
            "dnc": report.get("do_not_call", 0),
            "errors": report.get("error_count", 0),
        }
        shown = report.get("errors", [])[:5]
        if shown:
            text += " " + "; ".join(_("row %(row)s: %(error)s") % e for e in shown)
        return text

    @admin.display(description=_("progress"))
    def progress_short(self, campaign):
        progress = outbound_selectors.campaign_progress(campaign)
        return f"{progress['percent_done']}% · {progress['in_progress']} / {campaign.max_concurrency}"

    @admin.display(description=_("progress"))
    def progress(self, campaign):
        if not campaign.pk:
            return "—"
        data = outbound_selectors.campaign_progress(campaign)
        states = dict(CampaignContact.State.choices)
        statuses = dict(OutboundCall.Status.choices)
        funnel_labels = {
            "contacts": _("contacts"), "dialled": _("dialled"), "reached": _("reached"),
            "interested": _("interested"), "leads": _("leads"),
        }
        rows = [
            (_("Done"), f"{data['percent_done']}%"),
            (_("Calling now"), f"{data['in_progress']} / {campaign.max_concurrency}"),
            *((states[k], v) for k, v in data["states"].items()),
            *((statuses[k], v) for k, v in data["calls"].items() if v),
            *((funnel_labels[k], v) for k, v in data["funnel"].items()),
        ]
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description=_("last import"))
    def import_summary(self, campaign):
        return self._import_text(campaign.import_report) if campaign.import_report else "—"


@admin.register(CampaignContact)
class CampaignContactAdmin(ClinicScopedAdmin):
    list_display = ["phone", "name", "campaign", "state", "attempts", "retry_at", "last_outcome", "finished_reason"]
    list_filter = ["state", "last_outcome", "campaign"]
    search_fields = ["phone", "name"]
    list_select_related = ["campaign"]
    readonly_fields = [f.name for f in CampaignContact._meta.fields]

    def has_add_permission(self, request):
        return False  # contacts come from a campaign's file

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DoNotCall)
class DoNotCallAdmin(ClinicScopedAdmin):
    list_display = ["phone", "clinic", "reason", "created_by", "created_at"]
    list_filter = ["clinic"]
    search_fields = ["phone"]
    fields = ["clinic", "phone", "reason"]

    def get_readonly_fields(self, request, obj=None):
        return ["clinic", "phone"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:  # only the reason can change
            super().save_model(request, obj, form, change)
            return
        # Through the service: E.164, and waiting campaign contacts with the number are closed.
        entry = outbound_campaigns.do_not_call_add(
            clinic=obj.clinic, phone=obj.phone, reason=obj.reason, actor=request.user.get_username()
        )
        obj.pk, obj.phone = entry.pk, entry.phone

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from clinics import quotas, services
from clinics.models import (
    Administrator,
    ApiKey,
    Clinic,
    CrmConnection,
    OutboxEvent,
    QuotaLedger,
    QuotaPeriod,
    WorkSchedule,
)
from medai.admin import ClinicScopedAdmin


class QuotaActionForm(forms.Form):
    ACTIONS = [("top_up", _("Top up minutes")), ("reset", _("Reset the period's usage")), ("limits", _("Set limits"))]
    action = forms.ChoiceField(label=_("action"), choices=ACTIONS)
    period = forms.ChoiceField(label=_("period"), choices=QuotaPeriod.Kind.choices, required=False)
    minutes = forms.IntegerField(label=_("minutes to add"), min_value=1, required=False)
    monthly_minutes = forms.IntegerField(label=_("monthly limit, min"), min_value=0, required=False)
    weekly_minutes = forms.IntegerField(label=_("weekly limit, min"), min_value=0, required=False)
    note = forms.CharField(label=_("note"), max_length=300, required=False)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in ("top_up", "reset") and not data.get("period"):
            self.add_error("period", _("Choose the period."))
        if action == "top_up" and not data.get("minutes"):
            self.add_error("minutes", _("How many minutes?"))
        if action == "limits" and data.get("monthly_minutes") is None and data.get("weekly_minutes") is None:
            self.add_error("monthly_minutes", _("Give at least one limit."))
        return data


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    clinic_field = ""
    list_display = ["name", "slug", "time_zone", "monthly_limit_minutes", "weekly_limit_minutes", "is_active"]
    list_filter = ["is_active", "time_zone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]
    readonly_fields = ["quota_usage"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "time_zone", "is_active", "members"]}),
        (_("Transcription"), {"fields": ["transcription_provider", "language", "num_speakers", "min_billable_seconds", "proxy_url"]}),
        (_("Limits"), {"fields": ["monthly_limit_minutes", "weekly_limit_minutes", "quota_usage"]}),
    ]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        ids = self._clinic_ids(request)
        return queryset if ids is None else queryset.filter(pk__in=ids)

    def save_model(self, request, obj, form, change):
        limit_fields = {"monthly_limit_minutes", "weekly_limit_minutes"} & set(form.changed_data)
        super().save_model(request, obj, form, change)
        if change and limit_fields:
            # Through the service so the current periods follow and the ledger records it.
            quotas.quota_set_limits(
                clinic=obj,
                monthly_minutes=obj.monthly_limit_minutes,
                weekly_minutes=obj.weekly_limit_minutes,
                actor=request.user.get_username(),
            )

    @admin.display(description=_("usage now"))
    def quota_usage(self, clinic):
        if not clinic.pk:
            return "—"
        usage = quotas.quota_usage(clinic)
        url = reverse("admin:clinics_clinic_quota", args=[clinic.pk])
        return format_html(
            "{}: {} / {} {} ({}%) · {}: {} / {} {} ({}%) · <a href=\"{}\">{}</a>",
            _("month"), usage["month"]["used_minutes"], usage["month"]["limit_minutes"] + usage["month"]["topped_up_minutes"], _("min"), usage["month"]["usage_pct"],
            _("week"), usage["week"]["used_minutes"], usage["week"]["limit_minutes"] + usage["week"]["topped_up_minutes"], _("min"), usage["week"]["usage_pct"],
            url, _("top up, reset, limits…"),
        )

    def get_urls(self):
        return [
            path("<int:clinic_id>/quota/", self.admin_site.admin_view(self.quota_view), name="clinics_clinic_quota"),
            *super().get_urls(),
        ]

    def quota_view(self, request, clinic_id: int):
        clinic = get_object_or_404(self.get_queryset(request), pk=clinic_id)
        if not self.has_change_permission(request, clinic):
            raise PermissionDenied
        form = QuotaActionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data, actor = form.cleaned_data, request.user.get_username()
            if data["action"] == "top_up":
                quotas.quota_top_up(clinic=clinic, kind=data["period"], minutes=data["minutes"], actor=actor, note=data["note"])
            elif data["action"] == "reset":
                quotas.quota_reset(clinic=clinic, kind=data["period"], actor=actor, note=data["note"])
            else:
                quotas.quota_set_limits(
                    clinic=clinic, monthly_minutes=data["monthly_minutes"], weekly_minutes=data["weekly_minutes"], actor=actor
                )
            self.message_user(request, _("Done. Calls waiting for minutes resume within a minute."))
            return redirect("admin:clinics_clinic_quota", clinic_id=clinic.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Minutes of %(clinic)s") % {"clinic": clinic.name},
            "clinic": clinic,
            "usage": quotas.quota_usage(clinic),
            "ledger": QuotaLedger.objects.filter(period__clinic=clinic).select_related("period")[:50],
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/clinics/quota.html", context)


class ShiftInline(admin.TabularInline):
    model = WorkSchedule
    extra = 0
    fields = ["date", "start_time", "end_time"]
    ordering = ["-date"]


@admin.register(Administrator)
class AdministratorAdmin(ClinicScopedAdmin):
    list_display = ["name", "clinic", "crm_user_id", "is_active"]
    list_filter = ["clinic", "is_active"]
    search_fields = ["name", "email"]


@admin.register(WorkSchedule)
class WorkScheduleAdmin(ClinicScopedAdmin):
    list_display = ["date", "administrator", "start_time", "end_time", "clinic"]
    list_filter = ["clinic", "administrator"]
    date_hierarchy = "date"


@admin.register(ApiKey)
class ApiKeyAdmin(ClinicScopedAdmin):
    list_display = ["name", "prefix", "clinic", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["clinic"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["clinic", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(clinic=obj.clinic, name=obj.name)
        obj.pk = key.pk
        self.message_user(
            request,
            _("Copy the key now, it is shown only once: %(key)s") % {"key": raw},
            level=messages.WARNING,
        )

    @admin.action(description=_("Revoke selected keys"))
    def revoke(self, request, queryset):
        count = services.api_keys_revoke(queryset=queryset)
        self.message_user(request, _("%(n)d key(s) revoked.") % {"n": count})


@admin.register(OutboxEvent)
class OutboxEventAdmin(ClinicScopedAdmin):
    list_display = ["created_at", "clinic", "kind", "delivered_at"]
    list_filter = ["kind", "clinic"]
    readonly_fields = ["clinic", "kind", "payload", "dedup_key", "created_at", "delivered_at"]

    def has_add_permission(self, request):
        return False


class QuotaLedgerInline(admin.TabularInline):
    model = QuotaLedger
    extra = 0
    can_delete = False
    fields = ["created_at", "entry", "seconds", "call_id", "actor", "note"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(QuotaPeriod)
class QuotaPeriodAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "kind", "start", "limit_minutes", "used_minutes", "reserved_minutes", "topped_up_minutes"]
    list_filter = ["kind", "clinic"]
    inlines = [QuotaLedgerInline]
    readonly_fields = [f.name for f in QuotaPeriod._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("limit, min"))
    def limit_minutes(self, period):
        return round(period.limit_seconds / 60, 1)

    @admin.display(description=_("used, min"))
    def used_minutes(self, period):
        return round(period.used_seconds / 60, 1)

    @admin.display(description=_("reserved, min"))
    def reserved_minutes(self, period):
        return round(period.reserved_seconds / 60, 1)

    @admin.display(description=_("top-ups, min"))
    def topped_up_minutes(self, period):
        return round(period.topped_up_seconds / 60, 1)


def _validate_conversion(value) -> dict:
    """The shape calls.amocrm.conversion reads (see its docstring)."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise forms.ValidationError(_("Expected an object with 'primary', 'secondary' and 'confirmation_field'."))
    for key in ("primary", "secondary"):
        entry = value.get(key)
        if entry is None:
            continue
        ids = entry.get("booked_status_ids") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("pipeline_id"), int)
            or not isinstance(ids, list)
            or not all(isinstance(i, int) for i in ids)
        ):
            raise forms.ValidationError(
                _("'%(key)s' needs a numeric 'pipeline_id' and a list of numeric 'booked_status_ids' (or null).")
                % {"key": key}
            )
    if not isinstance(value.get("confirmation_field", ""), str):
        raise forms.ValidationError(_("'confirmation_field' is the name of a lead field (text)."))
    return value


class CrmConnectionForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("amoCRM address"), assume_scheme="https", help_text=_("e.g. https://yourclinic.amocrm.ru")
    )
    redirect_uri = forms.URLField(
        label=_("redirect URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("Enter the same URL in the amoCRM integration's settings."),
    )
    client_secret = forms.CharField(
        label=_("secret key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the current one."),
    )
    conversion = forms.JSONField(
        label=_("conversion settings"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90}),
        help_text=_(
            "Detected from pipeline and status names on every sync while \"auto\" is true. Editing anything "
            "but \"auto\" switches detection off and keeps your settings; set \"auto\": true to detect again."
        ),
    )

    class Meta:
        model = CrmConnection
        fields = ["clinic", "base_url", "client_id", "client_secret", "redirect_uri", "source_field", "speed_field", "conversion", "write_back"]

    def clean_client_secret(self):
        value = self.cleaned_data.get("client_secret", "")
        if value:
            return value
        if self.instance.pk and self.instance.client_secret:
            return self.instance.client_secret
        raise forms.ValidationError(_("Enter the integration's secret key."))

    def clean_conversion(self):
        value = _validate_conversion(self.cleaned_data.get("conversion"))
        current = self.instance.conversion or {}
        settings_of = lambda data: {k: v for k, v in data.items() if k not in ("auto", "detected_at")}  # noqa: E731
        if value and settings_of(value) != settings_of(current):
            value = {**value, "auto": False}  # the operator's edit wins over detection
        return value


@admin.register(CrmConnection)
class CrmConnectionAdmin(ClinicScopedAdmin):
    form = CrmConnectionForm
    list_display = ["clinic", "base_url", "status", "last_synced_at", "sync_cursor", "connect_link"]
    list_filter = ["status"]
    readonly_fields = [
        "connect_link",
        "status",
        "last_error",
        "expires_at",
        "sync_cursor",
        "last_synced_at",
        "manual_sync",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["clinic", "base_url", "client_id", "client_secret", "redirect_uri", "connect_link"]}),
        (_("State"), {"fields": ["status", "last_error", "expires_at", "last_synced_at", "sync_cursor", "manual_sync"]}),
        (_("Data"), {"fields": ["source_field", "speed_field", "conversion", "write_back"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["sync_now", "sync_range"]

    def get_changeform_initial_data(self, request):
        # What to enter as the integration's redirect URL in amoCRM.
        return {"redirect_uri": settings.PUBLIC_BASE_URL + reverse("amocrm:callback"), **super().get_changeform_initial_data(request)}

    @admin.display(description=_("connect"))
    def connect_link(self, connection):
        if not connection.pk:
            return _("Save first, then connect.")
        label = _("Reconnect") if connection.status in (CrmConnection.Status.ACTIVE, CrmConnection.Status.BROKEN) else _("Connect")
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("amocrm:connect", args=[connection.pk]), label
        )

    @admin.display(description=_("manual sync"))
    def manual_sync(self, connection):
        if not connection.pk:
            return "—"
        run = connection.sync_run or {}
        progress = run.get("progress") or {}
        state = ""
        if run:
            state = f"{run.get('date_from')} – {run.get('date_to')}: {run.get('status')}"
            if progress.get("total"):
                state += f" ({progress.get('phase')} {progress.get('done')}/{progress.get('total')})"
            if run.get("error"):
                state += f" — {run['error']}"
            elif run.get("result"):
                state += " — " + ", ".join(f"{k} {v}" for k, v in run["result"].items() if v)
        return format_html(
            '{} <a href="{}">{}</a>', state, reverse("amocrm:sync", args=[connection.pk]), _("Sync a date range…")
        )

    @admin.action(description=_("Sync now (from the cursor)"))
    def sync_now(self, request, queryset):
        from django_q.tasks import async_task

        connections = list(queryset.filter(status=CrmConnection.Status.ACTIVE).values_list("pk", flat=True))
        for connection_id in connections:
            async_task("calls.amocrm.tasks.sync_connection", connection_id, group="amocrm")
        self.message_user(request, _("%(n)d sync(s) queued.") % {"n": len(connections)})

    @admin.action(description=_("Sync a date range…"))
    def sync_range(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose one connection."), level=messages.WARNING)
            return None
        return redirect("amocrm:sync", queryset.get().pk)

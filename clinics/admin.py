from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from clinics import services
from clinics.models import Administrator, ApiKey, Clinic, OutboxEvent, WorkSchedule
from medai.admin import ClinicScopedAdmin


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    clinic_field = ""
    list_display = ["name", "slug", "time_zone", "monthly_limit_minutes", "weekly_limit_minutes", "is_active"]
    list_filter = ["is_active", "time_zone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "time_zone", "is_active", "members"]}),
        (_("Transcription"), {"fields": ["transcription_provider", "language", "num_speakers", "min_billable_seconds", "proxy_url"]}),
        (_("Limits"), {"fields": ["monthly_limit_minutes", "weekly_limit_minutes"]}),
    ]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        ids = self._clinic_ids(request)
        return queryset if ids is None else queryset.filter(pk__in=ids)


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

from django import forms
from django.contrib import admin, messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from medai.admin import ClinicScopedAdmin, is_clinic_staff
from reports import services
from reports.dashboard import dashboard_context
from reports.models import Dashboard, Report


class ReportRequestForm(forms.ModelForm):
    class Meta:
        model = Report
        fields = ["clinic", "administrator", "kind", "date_from", "date_to"]

    def clean(self):
        data = super().clean()
        clinic, administrator = data.get("clinic"), data.get("administrator")
        if clinic and administrator and administrator.clinic_id != clinic.pk:
            self.add_error("administrator", _("No such administrator in this clinic."))
        first, last = data.get("date_from"), data.get("date_to")
        if first and last:
            services.report_validate_period(date_from=first, date_to=last)
        return data


@admin.register(Report)
class ReportAdmin(ClinicScopedAdmin):
    """Reports: request one (built in the background), download it, build a failed one again."""

    form = ReportRequestForm
    list_display = ["id", "clinic", "administrator", "kind", "period", "status", "size_bytes", "created_at", "download"]
    list_filter = ["status", "kind", "clinic"]
    date_hierarchy = "created_at"
    actions = ["build_again"]
    readonly_fields = [
        "clinic",
        "administrator",
        "kind",
        "date_from",
        "date_to",
        "status",
        "error",
        "size_bytes",
        "requested_by",
        "requested_via",
        "requested_label",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "download",
    ]

    def get_fields(self, request, obj=None):
        return ReportRequestForm.Meta.fields if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_add_permission(self, request):
        return is_clinic_staff(request) or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # a report is never edited: request a new one

    @admin.display(description=gettext_lazy("period"))
    def period(self, report):
        return f"{report.date_from:%d.%m.%Y} – {report.date_to:%d.%m.%Y}"

    @admin.display(description=gettext_lazy("file"))
    def download(self, report):
        if report.status != Report.Status.DONE or not report.file:
            return "—"
        url = reverse("admin:reports_report_download", args=[report.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = services.report_request(
            clinic=obj.clinic,
            administrator=obj.administrator,
            kind=obj.kind,
            date_from=obj.date_from,
            date_to=obj.date_to,
            via=Report.Via.ADMIN,
            user=request.user,
            label=request.user.get_username(),
        )
        obj.pk, obj.status, obj.created_at = created.pk, created.status, created.created_at

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, _("The report is queued; it will appear here when it is ready."), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:reports_report_changelist"))

    @admin.action(description=gettext_lazy("Build the selected reports again"))
    def build_again(self, request, queryset):
        count = sum(services.report_requeue(report) for report in queryset)
        self.message_user(request, _("%(n)d report(s) queued again.") % {"n": count}, messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:pk>/download/", self.admin_site.admin_view(self.download_view), name="reports_report_download"),
            *super().get_urls(),
        ]

    def download_view(self, request, pk: int):
        report = get_object_or_404(self.get_queryset(request), pk=pk)
        if report.status != Report.Status.DONE or not report.file:
            raise Http404
        response = FileResponse(report.file.open("rb"), content_type=report.content_type, as_attachment=True, filename=report.filename)
        response["Cache-Control"] = "private, no-store"
        return response


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """The dashboard page; registered on a proxy model so the admin index links to it."""

    def has_module_permission(self, request):
        return is_clinic_staff(request)

    def has_view_permission(self, request, obj=None):
        return is_clinic_staff(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise Http404
        context = {
            **self.admin_site.each_context(request),
            "title": _("Dashboard"),
            "opts": self.model._meta,
            **dashboard_context(request.user, request.GET),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "reports/dashboard.html", context)

"""Browser views for connecting amoCRM and starting a range sync (the admin links here).

The OAuth redirect is public on purpose — the account owner may grant access from their own
browser — and is authorised by the signed, expiring ``state`` that names the connection.
The other views are for staff members of the connection's clinic.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinics.models import CrmConnection
from medai.auth import clinic_ids_for
from medai.timeutils import local_now

from . import connection as connection_services
from . import runs

logger = logging.getLogger("medai.amocrm")


@never_cache
@require_GET
def oauth_callback(request) -> HttpResponse:
    """amoCRM redirects here with ``code``, ``state`` and ``referer`` (or ``error``) after the grant."""
    context: dict = {"ok": False}
    if request.GET.get("error"):
        context["message"] = _("Access was not granted in amoCRM. Nothing was changed.")
    else:
        try:
            connection = connection_services.connection_complete_oauth(
                state=request.GET.get("state", ""), code=request.GET.get("code", ""), referer=request.GET.get("referer", "")
            )
        except connection_services.OAuthError as exc:
            context["message"] = str(exc)
        else:
            context.update(ok=True, clinic=connection.clinic.name, base_url=connection.base_url)
    response = TemplateResponse(request, "amocrm/oauth_result.html", context, status=200 if context["ok"] else 400)
    response["Referrer-Policy"] = "no-referrer"  # the URL carries the authorisation code
    return response


def _staff_connection(request, pk: int) -> CrmConnection:
    queryset = CrmConnection.objects.select_related("clinic")
    ids = clinic_ids_for(request.user)
    if ids is not None:
        queryset = queryset.filter(clinic_id__in=ids)
    connection = get_object_or_404(queryset, pk=pk)
    if not request.user.has_perm("clinics.change_crmconnection"):
        raise PermissionDenied
    return connection


@never_cache
def connect(request, pk: int) -> HttpResponse:
    """Send the operator (or the account owner) to amoCRM's grant page for this connection."""
    connection = _staff_connection(request, pk)
    return redirect(connection_services.connection_authorize_url(connection=connection))


class RangeSyncForm(forms.Form):
    date_from = forms.DateField(label=gettext_lazy("first day"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=gettext_lazy("last day"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to"):
            try:
                runs.validate_range(data["date_from"], data["date_to"])
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from exc
        return data


def sync_range(request, pk: int) -> HttpResponse:
    """A form to sync a range of clinic-local days in the background."""
    connection = _staff_connection(request, pk)
    today = local_now(connection.clinic.time_zone).date()
    form = RangeSyncForm(request.POST or None, initial={"date_from": today, "date_to": today})
    if request.method == "POST" and form.is_valid():
        try:
            runs.sync_run_request(
                connection=connection,
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
                requested_by=request.user.get_username(),
            )
        except (runs.SyncBusy, connection_services.CrmUnavailable) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("The sync is queued; its progress shows on the connection page."))
            return redirect("admin:clinics_crmconnection_change", connection.pk)
    context = {
        **admin.site.each_context(request),
        "title": _("Sync calls from amoCRM: %(clinic)s") % {"clinic": connection.clinic.name},
        "connection": connection,
        "form": form,
        "run": runs.run_state(connection),
        "opts": CrmConnection._meta,
    }
    return TemplateResponse(request, "amocrm/sync_form.html", context)

"""The admin dashboard: funnel, calls per day, quality by week, administrators' leaderboard.

Read from the roll-ups and scoped to the staff user's clinics (superusers: all clinics).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinics.models import Administrator, Clinic
from medai.auth import clinic_ids_for
from reports import selectors
from reports.builders import common

DEFAULT_DAYS = 30
MAX_DAYS = 366


class DashboardFilterForm(forms.Form):
    date_from = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    clinic = forms.ModelChoiceField(label=gettext_lazy("Clinic"), queryset=Clinic.objects.none(), required=False)
    administrator = forms.ModelChoiceField(
        label=gettext_lazy("Administrator"), queryset=Administrator.objects.none(), required=False
    )

    def __init__(self, *args, clinic_ids: list[int] | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        clinics = Clinic.objects.all() if clinic_ids is None else Clinic.objects.filter(pk__in=clinic_ids)
        self.fields["clinic"].queryset = clinics.order_by("name")
        self.fields["clinic"].empty_label = _("All my clinics")
        admins = Administrator.objects.select_related("clinic").filter(clinic__in=clinics).order_by("clinic__name", "name")
        self.fields["administrator"].queryset = admins
        self.fields["administrator"].empty_label = _("All administrators")
        if clinics.count() > 1:
            self.fields["administrator"].label_from_instance = lambda a: f"{a.name} ({a.clinic.name})"

    def clean(self):
        data = super().clean()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and last < first:
            raise forms.ValidationError(_("The last day is before the first day."))
        if first and last and (last - first).days + 1 > MAX_DAYS:
            raise forms.ValidationError(_("At most %(days)d days at a time.") % {"days": MAX_DAYS})
        clinic, administrator = data.get("clinic"), data.get("administrator")
        if clinic and administrator and administrator.clinic_id != clinic.pk:
            raise forms.ValidationError(_("The administrator belongs to another clinic."))
        return data


def _today(clinic_ids: list[int] | None, clinic: Clinic | None):
    if clinic is None and clinic_ids and len(clinic_ids) == 1:
        clinic = Clinic.objects.filter(pk=clinic_ids[0]).first()
    return timezone.now().astimezone(clinic.tz).date() if clinic else timezone.now().date()


def dashboard_context(user, params) -> dict[str, Any]:
    clinic_ids = clinic_ids_for(user)
    form = DashboardFilterForm(params or None, clinic_ids=clinic_ids)
    values = form.cleaned_data if form.is_valid() else {}
    clinic = values.get("clinic")
    administrator = values.get("administrator")
    date_to = values.get("date_to") or _today(clinic_ids, clinic)
    date_from = values.get("date_from") or date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        date_from = date_to - timedelta(days=DEFAULT_DAYS - 1)
    scope = [clinic.pk] if clinic else clinic_ids
    filters = selectors.MetricFilters(
        clinic_ids=scope,
        date_from=date_from,
        date_to=date_to,
        administrator_id=administrator.pk if administrator else None,
    )
    rows = selectors.metric_rows(filters)
    totals = selectors.metrics_totals(rows)
    per_day = {g["key"]: g for g in selectors.metrics_grouped(rows, "day")}
    days = [date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    weeks = selectors.metrics_grouped(rows, "week")
    leaderboard = sorted(
        (g for g in selectors.metrics_grouped(rows, "administrator") if g["key"] is not None),
        key=lambda g: (g["quality_pct"] is None, -(g["quality_pct"] or 0), -g["calls"]),
    )
    charts = {
        "funnel": {
            "labels": [_("Called"), _("Talked"), _("Interested"), _("Booked")],
            "values": [totals["calls"], totals["answered"], totals["interested"], totals["booked"]],
        },
        "days": {
            "labels": [f"{d:%d.%m}" for d in days],
            "calls": [per_day.get(d.isoformat(), {}).get("calls", 0) for d in days],
            "answered": [per_day.get(d.isoformat(), {}).get("answered", 0) for d in days],
            "booked": [per_day.get(d.isoformat(), {}).get("booked", 0) for d in days],
        },
        "weeks": {
            "labels": [common.week_label(w["key"]) for w in weeks],
            "quality": [w["quality_pct"] for w in weeks],
            "good": [w["good_calls_pct"] for w in weeks],
        },
        "leaders": {
            "labels": [g["label"] for g in leaderboard[:15]],
            "quality": [g["quality_pct"] for g in leaderboard[:15]],
            "conversion": [g["conversion_pct"] for g in leaderboard[:15]],
        },
        "text": {
            "calls": _("Calls"),
            "answered": _("Answered"),
            "booked": _("Booked"),
            "quality": _("Quality, %"),
            "good": _("Good calls, %"),
            "conversion": _("Conversion, %"),
        },
    }
    return {
        "form": form,
        "date_from": date_from,
        "date_to": date_to,
        "totals": totals,
        "kpis": common.summary_lines(totals),
        "leaderboard": leaderboard,
        "charts": charts,
        "has_data": bool(totals["calls"]),
    }

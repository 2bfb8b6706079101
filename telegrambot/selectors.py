"""Reads for the bot. Every read takes the chat's clinic: a chat never sees another clinic's rows.

Figures come from the reports app (roll-ups, the same definitions as reports and dashboards) and
quotas from :func:`clinics.quotas.quota_usage`; nothing is recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet

from calls.models import Call, Stage, Transcript
from calls.selectors import call_list
from clinics.models import Clinic
from clinics.quotas import quota_usage
from medai.timeutils import local_now, month_start, week_start
from reports import rollups
from reports.selectors import MetricFilters, metric_rows, metrics_totals
from telegrambot.models import ChatLink

STATS_PERIODS = ("today", "week", "month")
REPORT_PERIODS = ("this_week", "last_week", "this_month", "last_month")
CALLS_SHOWN = 8
FOUND_SHOWN = 10
EXCERPT_UTTERANCES = 10


def active_link(chat_id: int) -> ChatLink | None:
    return ChatLink.objects.active().filter(chat_id=chat_id).select_related("clinic").first()


def clinic_today(clinic: Clinic) -> date:
    return local_now(clinic.time_zone).date()


def stats_period(clinic: Clinic, period: str) -> tuple[date, date]:
    """``today`` / ``week`` (since Monday) / ``month`` (since the 1st), in the clinic's time zone."""
    today = clinic_today(clinic)
    if period == "week":
        return week_start(today), today
    if period == "month":
        return month_start(today), today
    return today, today


def report_period(clinic: Clinic, period: str) -> tuple[date, date]:
    today = clinic_today(clinic)
    if period == "last_week":
        first = week_start(today) - timedelta(days=7)
        return first, first + timedelta(days=6)
    if period == "this_month":
        return month_start(today), today
    if period == "last_month":
        last = month_start(today) - timedelta(days=1)
        return month_start(last), last
    return week_start(today), today


def clinic_figures(clinic: Clinic, date_from: date, date_to: date) -> dict[str, Any]:
    """KPIs of a clinic for clinic-local days, from the roll-ups (days marked dirty refreshed first,
    as the report builder does, so today's calls count)."""
    rollups.rollups_refresh_dirty(clinic_id=clinic.pk, date_from=date_from, date_to=date_to, limit=62)
    return metrics_totals(metric_rows(MetricFilters(clinic_ids=[clinic.pk], date_from=date_from, date_to=date_to)))


def clinic_quota(clinic: Clinic) -> dict[str, Any]:
    return quota_usage(clinic)


def failed_calls_count(clinic: Clinic, day: date) -> int:
    return call_list(clinic_id=clinic.pk, stage=Stage.FAILED, date_from=day, date_to=day).count()


def latest_calls(clinic: Clinic, *, limit: int = CALLS_SHOWN) -> list[Call]:
    return list(call_list(clinic_id=clinic.pk)[:limit])


def find_calls(clinic: Clinic, query: str, *, limit: int = FOUND_SHOWN) -> list[Call]:
    return list(call_list(clinic_id=clinic.pk, q=query)[:limit])


@dataclass
class CallCard:
    call: Call
    analysis: Any | None
    utterances: list[dict[str, Any]]
    more_utterances: int


def call_card(clinic: Clinic, call_id: int) -> CallCard | None:
    """One call of *this* clinic with its analysis and the transcript's first lines, or None."""
    calls: QuerySet[Call] = Call.objects.filter(pk=call_id, clinic=clinic).select_related("administrator", "analysis")
    call = calls.first()
    if call is None:
        return None
    analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
    transcript = Transcript.objects.filter(call=call).only("utterances", "text").first()
    utterances = list(transcript.utterances or []) if transcript else []
    if not utterances and transcript and transcript.text:
        utterances = [{"role": "", "text": line} for line in transcript.text.splitlines() if line.strip()]
    shown = utterances[:EXCERPT_UTTERANCES]
    return CallCard(call=call, analysis=analysis, utterances=shown, more_utterances=len(utterances) - len(shown))

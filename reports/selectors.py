"""Reads for reports, the metrics API and the dashboard — from the roll-ups, never from raw calls.

Every figure is a ratio of sums over ``bi_daily_metrics`` rows, so a period, an administrator or
a source is just a different ``WHERE``/``GROUP BY`` over the same additive columns (see
:mod:`reports.rollups` for the definitions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Max, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from analysis.models import CallType, PeriodSummary
from calls.models import Campaign
from clinics.models import Administrator, Clinic
from medai.timeutils import week_start
from reports import labels
from reports.links import CallLinks
from reports.models import CallDetail, DailyCriterion, DailyMetric

SUM_FIELDS = (
    "calls",
    "answered",
    "analysed",
    "scored",
    "good_calls",
    "interested",
    "booked",
    "duration_total_s",
    "score_sum",
)
GROUPINGS = ("day", "week", "month", "clinic", "administrator", "source", "call_type", "direction", "call_source", "campaign")
CALL_TYPE_LABELS = labels.CALL_TYPES


@dataclass(frozen=True)
class MetricFilters:
    clinic_ids: list[int] | None  # None: every clinic (superusers)
    date_from: date
    date_to: date
    administrator_id: int | None = None
    traffic_source: str | None = None
    call_type: str | None = None
    direction: str | None = None  # None: both
    call_source: str | None = None  # amocrm | upload | outbound (AI calls)
    campaign_id: int | None = None  # outbound AI calls of one campaign


def metric_rows(filters: MetricFilters) -> QuerySet[DailyMetric]:
    rows = DailyMetric.objects.filter(day__gte=filters.date_from, day__lte=filters.date_to)
    if filters.clinic_ids is not None:
        rows = rows.filter(clinic_id__in=filters.clinic_ids)
    if filters.administrator_id is not None:
        rows = rows.filter(administrator_id=filters.administrator_id)
    if filters.traffic_source is not None:
        rows = rows.filter(traffic_source=filters.traffic_source)
    if filters.call_type is not None:
        rows = rows.filter(call_type=filters.call_type)
    if filters.direction is not None:
        rows = rows.filter(direction=filters.direction)
    if filters.call_source is not None:
        rows = rows.filter(call_source=filters.call_source)
    if filters.campaign_id is not None:
        rows = rows.filter(campaign_id=filters.campaign_id)
    return rows


def _pct(part, whole) -> float | None:
    return round(float(part) * 100 / float(whole), 2) if whole else None


def kpis(sums: dict[str, Any]) -> dict[str, Any]:
    """Counts plus every derived figure, from the additive sums of some roll-up rows."""
    s = {name: sums.get(name) or 0 for name in SUM_FIELDS}
    score_sum = Decimal(s["score_sum"] or 0)
    return {
        "calls": s["calls"],
        "answered": s["answered"],
        "analysed": s["analysed"],
        "scored": s["scored"],
        "good_calls": s["good_calls"],
        "interested": s["interested"],
        "booked": s["booked"],
        "duration_total_s": s["duration_total_s"],
        "duration_avg_s": round(s["duration_total_s"] / s["answered"], 1) if s["answered"] else None,
        "score_avg": float(round(score_sum / s["scored"], 2)) if s["scored"] else None,
        "quality_pct": float(round(score_sum * 10 / s["scored"], 2)) if s["scored"] else None,
        "good_calls_pct": _pct(s["good_calls"], s["scored"]),
        "conversion_pct": _pct(s["booked"], s["answered"]),
        "talk_rate": _pct(s["answered"], s["calls"]),
        "interest_rate": _pct(s["interested"], s["answered"]),
        "booking_rate": _pct(s["booked"], s["answered"]),
    }


_SUMS = {name: Sum(name) for name in SUM_FIELDS}


def _group_expression(group_by: str) -> tuple[dict, list[str]]:
    if group_by == "week":
        return {"period": TruncWeek("day")}, ["period"]
    if group_by == "month":
        return {"period": TruncMonth("day")}, ["period"]
    if group_by == "day":
        return {}, ["day"]
    if group_by in {"clinic", "administrator", "campaign"}:
        return {}, [f"{group_by}_id"]
    if group_by == "source":
        return {}, ["traffic_source"]
    return {}, [group_by]


def _group_key(group_by: str, row: dict) -> dict[str, Any]:
    if group_by in {"week", "month"}:
        value = row["period"]
        return {"key": value.date().isoformat() if hasattr(value, "date") else str(value)}
    if group_by == "day":
        return {"key": row["day"].isoformat()}
    if group_by == "administrator":
        return {"key": row["administrator_id"], "label": row.get("label") or ""}
    if group_by in {"clinic", "campaign"}:
        return {"key": row[f"{group_by}_id"], "label": row.get("label") or ""}
    if group_by == "call_type":
        return {"key": row["call_type"], "label": str(CALL_TYPE_LABELS.get(row["call_type"], ""))}
    if group_by == "source":
        return {"key": row["traffic_source"]}
    return {"key": row[group_by]}


def _grouped_sums(rows: QuerySet[DailyMetric], group_by: str) -> list[dict[str, Any]]:
    if group_by not in GROUPINGS:
        raise ValueError(f"cannot group by {group_by!r}")
    extra, keys = _group_expression(group_by)
    queryset = rows.annotate(**extra) if extra else rows
    queryset = queryset.values(*keys)
    if group_by == "administrator":
        queryset = queryset.annotate(label=Max("administrator_name"))
    return list(queryset.annotate(**_SUMS).order_by(*keys))


def _with_kpis(group_by: str, sums: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [{**_group_key(group_by, row), **kpis(row)} for row in sums]
    if group_by in {"clinic", "campaign"}:
        model = Clinic if group_by == "clinic" else Campaign
        names = dict(model.objects.filter(pk__in=[r["key"] for r in result]).values_list("pk", "name"))
        for entry in result:
            entry["label"] = names.get(entry["key"], "")
    return result


def metrics_grouped(rows: QuerySet[DailyMetric], group_by: str) -> list[dict[str, Any]]:
    """One entry per group: ``{"key", ["label"], **kpis}``, in the group's natural order."""
    return _with_kpis(group_by, _grouped_sums(rows, group_by))


def metrics_grouped_with_totals(rows: QuerySet[DailyMetric], group_by: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Groups and the totals, from one query: the sums are additive, so totals = Σ groups."""
    sums = _grouped_sums(rows, group_by)
    totals = kpis({name: sum((row[name] or 0) for row in sums) for name in SUM_FIELDS})
    return _with_kpis(group_by, sums), totals


def metrics_totals(rows: QuerySet[DailyMetric]) -> dict[str, Any]:
    return kpis(rows.aggregate(**_SUMS))


FUNNEL_STEPS = ("calls", "answered", "interested", "booked")
FUNNEL_FIELDS = (*FUNNEL_STEPS, "talk_rate", "interest_rate", "booking_rate", "duration_avg_s")


def funnel_of(figures: dict[str, Any]) -> dict[str, Any]:
    return {name: figures[name] for name in FUNNEL_FIELDS}


# --- report content ------------------------------------------------------------------------------
@dataclass
class ReportData:
    clinic: Clinic
    administrator: Administrator | None
    date_from: date
    date_to: date
    summary: dict[str, Any]
    administrators: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    call_types: list[dict[str, Any]]
    directions: list[dict[str, Any]]
    weeks: list[dict[str, Any]]
    criteria_weeks: list[dict[str, Any]]  # [{call_type, label, weeks: [date], rows: [{key, title, values: [avg|None], average}]}]
    heatmap: list[list[int]]  # [weekday 0..6][hour 0..23] call counts
    period_recommendations: list[dict[str, Any]]
    calls_with_recommendations: int


def _scope(date_from: date, date_to: date, clinic: Clinic, administrator: Administrator | None) -> MetricFilters:
    return MetricFilters(
        clinic_ids=[clinic.pk],
        date_from=date_from,
        date_to=date_to,
        administrator_id=administrator.pk if administrator else None,
    )


def criteria_by_week(*, clinic: Clinic, date_from: date, date_to: date, administrator: Administrator | None = None):
    """Average of each criterion per week, per call type (types are never mixed)."""
    rows = DailyCriterion.objects.filter(clinic=clinic, day__gte=date_from, day__lte=date_to)
    if administrator is not None:
        rows = rows.filter(administrator=administrator)
    sums: dict[tuple[str, str], dict[date, list]] = defaultdict(lambda: defaultdict(lambda: [Decimal(0), 0]))
    titles: dict[tuple[str, str], str] = {}
    weeks: set[date] = set()
    grouped = (
        rows.values("call_type", "criterion_key", "day")
        .annotate(title=Max("criterion_title"), n=Sum("scored"), total=Sum("score_sum"))
        .order_by()
    )
    for row in grouped:
        slot = (row["call_type"], row["criterion_key"])
        week = week_start(row["day"])
        weeks.add(week)
        cell = sums[slot][week]
        cell[0] += Decimal(row["total"] or 0)
        cell[1] += int(row["n"] or 0)
        titles[slot] = titles.get(slot) or row["title"]
    ordered_weeks = sorted(weeks)
    blocks = []
    for call_type in [t for t in CallType.values if t != CallType.OTHER]:
        keys = sorted({k for (t, k) in sums if t == call_type})
        if not keys:
            continue
        block_rows = []
        for key in keys:
            per_week = sums[(call_type, key)]
            values = [round(float(per_week[w][0] / per_week[w][1]), 2) if w in per_week and per_week[w][1] else None for w in ordered_weeks]
            total_sum = sum(c[0] for c in per_week.values())
            total_n = sum(c[1] for c in per_week.values())
            block_rows.append(
                {"key": key, "title": titles.get((call_type, key)) or key, "values": values, "average": round(float(total_sum / total_n), 2) if total_n else None}
            )
        block_rows.sort(key=lambda r: (r["average"] is None, r["average"] or 0))
        blocks.append({"call_type": call_type, "label": str(CALL_TYPE_LABELS[call_type]), "weeks": ordered_weeks, "rows": block_rows})
    return blocks


def heatmap(*, clinic: Clinic, date_from: date, date_to: date, administrator: Administrator | None = None) -> list[list[int]]:
    grid = [[0] * 24 for _ in range(7)]
    rows = CallDetail.objects.filter(clinic=clinic, day__gte=date_from, day__lte=date_to)
    if administrator is not None:
        rows = rows.filter(administrator=administrator)
    for weekday, hour, count in rows.values_list("weekday", "hour").annotate(n=Count("call_id")).values_list("weekday", "hour", "n").order_by():
        grid[weekday - 1][hour] = count
    return grid


def period_recommendations(*, clinic: Clinic, date_from: date, date_to: date, administrator: Administrator | None = None):
    summaries = PeriodSummary.objects.filter(clinic=clinic, start__lte=date_to, end__gte=date_from, administrator=administrator)
    return [
        {
            "kind": s.kind,
            "kind_label": str(s.get_kind_display()),
            "start": s.start,
            "end": s.end,
            "average_score": s.average_score,
            "calls_scored": s.calls_scored,
            "recommendations": [str(r) for r in (s.recommendations or []) if str(r).strip()],
        }
        for s in summaries.order_by("kind", "start")
    ]


def report_data(*, clinic: Clinic, date_from: date, date_to: date, administrator: Administrator | None = None) -> ReportData:
    rows = metric_rows(_scope(date_from, date_to, clinic, administrator))
    details = call_details(clinic=clinic, date_from=date_from, date_to=date_to, administrator=administrator)
    return ReportData(
        clinic=clinic,
        administrator=administrator,
        date_from=date_from,
        date_to=date_to,
        summary=metrics_totals(rows),
        administrators=sorted(metrics_grouped(rows, "administrator"), key=lambda r: (-r["calls"], r["label"])),
        sources=sorted(metrics_grouped(rows, "source"), key=lambda r: -r["calls"]),
        call_types=metrics_grouped(rows, "call_type"),
        directions=metrics_grouped(rows, "direction"),
        weeks=metrics_grouped(rows, "week"),
        criteria_weeks=criteria_by_week(clinic=clinic, date_from=date_from, date_to=date_to, administrator=administrator),
        heatmap=heatmap(clinic=clinic, date_from=date_from, date_to=date_to, administrator=administrator),
        period_recommendations=period_recommendations(
            clinic=clinic, date_from=date_from, date_to=date_to, administrator=administrator
        ),
        calls_with_recommendations=details.exclude(recommendations="").count(),
    )


def call_details(*, clinic: Clinic, date_from: date, date_to: date, administrator: Administrator | None = None) -> QuerySet[CallDetail]:
    rows = CallDetail.objects.filter(clinic=clinic, day__gte=date_from, day__lte=date_to)
    if administrator is not None:
        rows = rows.filter(administrator=administrator)
    return rows


CALL_ROW_FIELDS = (
    "call_id",
    "started_at",
    "administrator_name",
    "direction",
    "status",
    "duration_s",
    "traffic_source",
    "call_type",
    "overall_score",
    "booked",
    "interest",
    "summary",
    "recommendations",
    "recording_url",
)


def call_rows(
    rows: QuerySet[CallDetail], *, limit: int | None = None, worst_first: bool = False, only_with_recommendations: bool = False
) -> Iterator[tuple]:
    """Calls for a report, streamed: tuples of :data:`CALL_ROW_FIELDS` in which ``recording_url``
    is replaced by fresh signed links: ``(..., call_url, recording_url)`` (the audio one "" if
    there is no recording). Tuples, not dicts: this is the hot loop of a 100 000-call XLSX."""
    if only_with_recommendations:
        rows = rows.exclude(recommendations="")
    ordering = [F("overall_score").asc(nulls_last=True), "started_at"] if worst_first else ["started_at", "call_id"]
    queryset = rows.order_by(*ordering).values_list(*CALL_ROW_FIELDS)
    if limit is not None:
        queryset = queryset[:limit]
    links = CallLinks()
    for values in queryset.iterator(chunk_size=5000):
        yield (*values[:-1], *links.for_call(values[0], has_recording=bool(values[-1])))


def default_period(today: date, days: int = 30) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today

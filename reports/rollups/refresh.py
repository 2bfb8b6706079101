"""Keeping the ``bi_*`` tables current: mark, recompute, rebuild (see the package docstring)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max, Min
from django.utils import timezone

from analysis.models import PeriodSummary
from calls.models import Call
from clinics.models import Clinic
from reports.models import CallDetail, DailyCriterion, DailyMetric, PeriodRecommendation, RollupDirtyDay
from reports.rollups.tables import (
    METRIC_COLUMNS,
    detail_rows,
    insert_criteria,
    insert_details,
    insert_select,
    metrics_queryset,
)

logger = logging.getLogger("medai.reports")


@dataclass
class RollupCounts:
    metrics: int = 0
    criteria: int = 0
    details: int = 0

    def __iadd__(self, other: RollupCounts) -> RollupCounts:
        self.metrics += other.metrics
        self.criteria += other.criteria
        self.details += other.details
        return self


def _lock_clinic(clinic_id: int) -> None:
    """Serialise recomputes of one clinic (two concurrent ones would both insert their rows).

    SQLite needs nothing: MedAI opens its transactions IMMEDIATE, so writers already queue."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x6D656461, clinic_id])


def rollups_recompute(*, clinic: Clinic, date_from: date, date_to: date) -> RollupCounts:
    """Replace every roll-up row of ``clinic`` in ``[date_from, date_to]`` from its calls."""
    computed_at = timezone.now()
    calls = Call.objects.filter(clinic_id=clinic.pk, local_date__gte=date_from, local_date__lte=date_to)
    counts = RollupCounts()
    with transaction.atomic():
        _lock_clinic(clinic.pk)
        in_range = {"clinic_id": clinic.pk, "day__gte": date_from, "day__lte": date_to}
        DailyMetric.objects.filter(**in_range).delete()
        DailyCriterion.objects.filter(**in_range).delete()
        CallDetail.objects.filter(**in_range).delete()
        # A call that moved here from another day (or another range) still has its old row.
        CallDetail.objects.filter(call_id__in=calls.values("id")).delete()
        counts.metrics = insert_select(DailyMetric, METRIC_COLUMNS, metrics_queryset(calls, computed_at=computed_at))
        counts.criteria = insert_criteria(clinic_id=clinic.pk, date_from=date_from, date_to=date_to, computed_at=computed_at)
        counts.details = insert_details(detail_rows(calls, tz=clinic.tz, computed_at=computed_at))
    return counts


def _markers(clinic_id: int, date_from: date, date_to: date) -> list[tuple[int, uuid.UUID]]:
    return list(
        RollupDirtyDay.objects.filter(clinic_id=clinic_id, day__gte=date_from, day__lte=date_to).values_list("pk", "token")
    )


def _clear_markers(markers: list[tuple[int, uuid.UUID]]) -> None:
    """Delete the markers a recompute covered — unless marked again meanwhile (new token)."""
    for pk, token in markers:
        RollupDirtyDay.objects.filter(pk=pk, token=token).delete()


def rollup_mark_dirty(*, clinic_id: int, day: date) -> None:
    """Ask for (clinic, day) to be recomputed. Cheap; safe inside the pipeline's transaction."""
    RollupDirtyDay.objects.bulk_create(
        [RollupDirtyDay(clinic_id=clinic_id, day=day, token=uuid.uuid4(), marked_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["clinic", "day"],
        update_fields=["token", "marked_at"],
    )


def rollups_refresh_dirty(
    *, clinic_id: int | None = None, date_from: date | None = None, date_to: date | None = None, limit: int = 500
) -> int:
    """Recompute the marked days (oldest mark first), each (clinic, day) on its own. Returns the count.

    A day that fails keeps its marker and is retried on the next run; the others go ahead.
    """
    markers = RollupDirtyDay.objects.order_by("marked_at")
    if clinic_id is not None:
        markers = markers.filter(clinic_id=clinic_id)
    if date_from is not None:
        markers = markers.filter(day__gte=date_from)
    if date_to is not None:
        markers = markers.filter(day__lte=date_to)
    pending = list(markers.values_list("pk", "clinic_id", "day", "token")[:limit])
    clinics = Clinic.objects.in_bulk({c for _, c, _, _ in pending})
    done = 0
    for pk, marker_clinic_id, day, token in pending:
        clinic = clinics.get(marker_clinic_id)
        if clinic is None:
            continue
        try:
            rollups_recompute(clinic=clinic, date_from=day, date_to=day)
        except Exception:
            logger.exception("roll-up of clinic %s day %s failed; will retry", marker_clinic_id, day)
            continue
        _clear_markers([(pk, token)])
        done += 1
    return done


def _rebuild_clinic(clinic: Clinic, date_from: date | None, date_to: date | None) -> RollupCounts:
    first, last = date_from, date_to
    if first is None or last is None:
        spans = [
            Call.objects.filter(clinic=clinic).aggregate(low=Min("local_date"), high=Max("local_date")),
            DailyMetric.objects.filter(clinic=clinic).aggregate(low=Min("day"), high=Max("day")),
            CallDetail.objects.filter(clinic=clinic).aggregate(low=Min("day"), high=Max("day")),
        ]
        lows = [s["low"] for s in spans if s["low"]]
        if not lows:
            return RollupCounts()
        first = first or min(lows)
        last = last or max(s["high"] for s in spans if s["high"])
    markers = _markers(clinic.pk, first, last)
    counts = rollups_recompute(clinic=clinic, date_from=first, date_to=last)
    _clear_markers(markers)
    return counts


def _rebuild_in_thread(clinic: Clinic, date_from: date | None, date_to: date | None) -> RollupCounts:
    try:
        return _rebuild_clinic(clinic, date_from, date_to)
    finally:
        connections.close_all()  # this thread's own connection


def rollups_rebuild(
    *,
    clinic_ids: Iterable[int] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    workers: int = 1,
) -> RollupCounts:
    """Recompute whole ranges (default: every day that has calls or roll-up rows), clinic by clinic.

    ``workers`` > 1 rebuilds that many clinics at once, each in its own connection and transaction
    (PostgreSQL only: SQLite serialises writers anyway): the database aggregates one clinic while
    Python signs another's links.
    """
    clinics = Clinic.objects.all() if clinic_ids is None else Clinic.objects.filter(pk__in=list(clinic_ids))
    clinics = list(clinics.order_by("pk"))
    total = RollupCounts()
    if workers <= 1 or len(clinics) <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for clinic in clinics:
            total += _rebuild_clinic(clinic, date_from, date_to)
        return total
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollups") as pool:
        for counts in pool.map(lambda c: _rebuild_in_thread(c, date_from, date_to), clinics):
            total += counts
    return total


def rollups_rebuild_recent(*, days: int | None = None) -> RollupCounts:
    """The nightly pass: each active clinic's last ``ROLLUP_REBUILD_DAYS`` days (clinic time)."""
    days = days or int(settings.ROLLUP_REBUILD_DAYS)
    total = RollupCounts()
    for clinic in Clinic.objects.filter(is_active=True).order_by("pk"):
        today = timezone.now().astimezone(clinic.tz).date()
        first, last = today - timedelta(days=days - 1), today + timedelta(days=1)
        markers = _markers(clinic.pk, first, last)
        total += rollups_recompute(clinic=clinic, date_from=first, date_to=last)
        _clear_markers(markers)
    period_recommendations_sync(full=True)
    return total


# --- period recommendations (read from analysis.PeriodSummary) -------------------------------------
def _recommendation_rows(summaries: Iterable[PeriodSummary]) -> list[PeriodRecommendation]:
    rows = []
    for summary in summaries:
        for position, text in enumerate(summary.recommendations or [], start=1):
            text = str(text).strip()
            if not text:
                continue
            rows.append(
                PeriodRecommendation(
                    summary_id=summary.pk,
                    clinic_id=summary.clinic_id,
                    administrator_id=summary.administrator_id,
                    administrator_name=summary.administrator.name if summary.administrator else "",
                    period_kind=summary.kind,
                    period_start=summary.start,
                    period_end=summary.end,
                    position=position,
                    text=text,
                    source=summary.recommendations_source,
                    calls_scored=summary.calls_scored,
                    average_score=summary.average_score,
                    generated_at=summary.generated_at,
                )
            )
    return rows


def period_recommendations_sync(*, full: bool = False) -> int:
    """Copy the coaching summaries' recommendations into ``bi_period_recommendations``.

    Incremental by ``generated_at`` (with an overlap: copying is idempotent); ``full`` also drops
    rows of deleted summaries. Returns the number of summaries copied.
    """
    summaries = PeriodSummary.objects.select_related("administrator").only(
        "pk", "clinic_id", "administrator__name", "kind", "start", "end", "recommendations",
        "recommendations_source", "calls_scored", "average_score", "generated_at",
    )
    latest = None if full else PeriodRecommendation.objects.aggregate(latest=Max("generated_at"))["latest"]
    if latest is not None:
        summaries = summaries.filter(generated_at__gte=latest - timedelta(minutes=10))
    summaries = list(summaries)
    with transaction.atomic():
        if full:
            PeriodRecommendation.objects.all().delete()
        else:
            PeriodRecommendation.objects.filter(summary_id__in=[s.pk for s in summaries]).delete()
        PeriodRecommendation.objects.bulk_create(_recommendation_rows(summaries), batch_size=1000)
    return len(summaries)

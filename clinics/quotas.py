"""Per-clinic audio-minute quotas that can never be overspent.

Before a paid transcription the pipeline *reserves* the estimated seconds in both the current
month and the current week with one conditional UPDATE (``used + reserved + n <= limit +
top-ups`` for both rows, else nothing changes); after the provider answers it *settles* to the
billed duration, or *releases* on failure. Periods are rows keyed by their first day in the
clinic's time zone, so a new week or month starts at zero without any reset job.

Every change is a :class:`~clinics.models.QuotaLedger` row. A call's reservation is found again
through the ledger, which makes reserve/settle/release idempotent per call (a retried or
re-swept step never double-reserves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from clinics.models import Clinic, OutboxEvent, QuotaLedger, QuotaPeriod
from medai.timeutils import local_now, month_start, week_start

THRESHOLDS = ((0.8, "alerted_80", 80), (1.0, "alerted_100", 100))


@dataclass(frozen=True)
class Reservation:
    call_id: int
    seconds: int
    period_ids: tuple[int, ...]


def period_starts(clinic: Clinic, on: date | None = None) -> dict[str, date]:
    today = on or local_now(clinic.time_zone).date()
    return {QuotaPeriod.Kind.MONTH: month_start(today), QuotaPeriod.Kind.WEEK: week_start(today)}


def _limit_seconds(clinic: Clinic, kind: str) -> int:
    minutes = clinic.monthly_limit_minutes if kind == QuotaPeriod.Kind.MONTH else clinic.weekly_limit_minutes
    return minutes * 60


def current_periods(clinic: Clinic, on: date | None = None) -> dict[str, QuotaPeriod]:
    """The month and week rows for ``on`` (today in the clinic's zone), created on first use."""
    starts = period_starts(clinic, on)
    found = QuotaPeriod.objects.filter(
        Q(kind=QuotaPeriod.Kind.MONTH, start=starts[QuotaPeriod.Kind.MONTH])
        | Q(kind=QuotaPeriod.Kind.WEEK, start=starts[QuotaPeriod.Kind.WEEK]),
        clinic=clinic,
    )
    periods = {period.kind: period for period in found}
    for kind, start in starts.items():
        if kind in periods:
            continue
        try:
            with transaction.atomic():
                periods[kind] = QuotaPeriod.objects.create(
                    clinic=clinic, kind=kind, start=start, limit_seconds=_limit_seconds(clinic, kind)
                )
        except IntegrityError:  # created concurrently
            periods[kind] = QuotaPeriod.objects.get(clinic=clinic, kind=kind, start=start)
    return periods


def _open_reservation(call_id: int) -> Reservation | None:
    """The call's reservation that has not been settled or released yet, if any."""
    rows = list(QuotaLedger.objects.filter(call_id=call_id).order_by("id").values("entry", "seconds", "period_id"))
    open_rows: dict[int, int] = {}
    for row in rows:
        if row["entry"] == QuotaLedger.Entry.RESERVE:
            open_rows[row["period_id"]] = row["seconds"]
        elif row["entry"] in (QuotaLedger.Entry.SETTLE, QuotaLedger.Entry.RELEASE):
            open_rows.pop(row["period_id"], None)
    if not open_rows:
        return None
    return Reservation(call_id, max(open_rows.values()), tuple(sorted(open_rows)))


def quota_reserve(*, clinic: Clinic, call_id: int, seconds: float, on: date | None = None) -> Reservation | None:
    """Reserve ``seconds`` in the current month and week, or return None if either would overflow."""
    needed = max(1, math.ceil(seconds))
    existing = _open_reservation(call_id)
    if existing is not None:
        return existing
    periods = current_periods(clinic, on)
    ids = sorted(p.pk for p in periods.values())
    with transaction.atomic():
        # Lock both rows in a fixed order so concurrent reservations never deadlock; the UPDATE
        # below re-checks the condition against the latest committed values.
        list(QuotaPeriod.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
        updated = (
            QuotaPeriod.objects.filter(pk__in=ids)
            .filter(limit_seconds__gte=F("used_seconds") + F("reserved_seconds") + needed - F("topped_up_seconds"))
            .update(reserved_seconds=F("reserved_seconds") + needed)
        )
        if updated != len(ids):
            transaction.set_rollback(True)
            return None
        QuotaLedger.objects.bulk_create(
            [QuotaLedger(period_id=pk, entry=QuotaLedger.Entry.RESERVE, seconds=needed, call_id=call_id) for pk in ids]
        )
        _check_thresholds(ids)
    return Reservation(call_id, needed, tuple(ids))


def quota_settle(*, reservation: Reservation, billed_seconds: float) -> None:
    """Turn the reservation into usage of the billed duration (which may differ from the estimate)."""
    billed = max(0, math.ceil(billed_seconds))
    with transaction.atomic():
        if _open_reservation(reservation.call_id) is None:
            return  # already settled or released: settling twice must not count twice
        for pk in reservation.period_ids:
            QuotaPeriod.objects.filter(pk=pk).update(
                reserved_seconds=F("reserved_seconds") - reservation.seconds, used_seconds=F("used_seconds") + billed
            )
        QuotaLedger.objects.bulk_create(
            [
                QuotaLedger(
                    period_id=pk,
                    entry=QuotaLedger.Entry.SETTLE,
                    seconds=billed,
                    call_id=reservation.call_id,
                    note=f"reserved {reservation.seconds}s",
                )
                for pk in reservation.period_ids
            ]
        )
        _check_thresholds(reservation.period_ids)


def quota_release(*, reservation: Reservation, note: str = "") -> None:
    with transaction.atomic():
        if _open_reservation(reservation.call_id) is None:
            return
        QuotaPeriod.objects.filter(pk__in=reservation.period_ids).update(
            reserved_seconds=F("reserved_seconds") - reservation.seconds
        )
        QuotaLedger.objects.bulk_create(
            [
                QuotaLedger(
                    period_id=pk,
                    entry=QuotaLedger.Entry.RELEASE,
                    seconds=-reservation.seconds,
                    call_id=reservation.call_id,
                    note=note[:300],
                )
                for pk in reservation.period_ids
            ]
        )


def _check_thresholds(period_ids) -> None:
    """Emit one event per period when usage first crosses 80 % and 100 %."""
    for period in QuotaPeriod.objects.filter(pk__in=period_ids).select_related("clinic"):
        for share, flag, percent in THRESHOLDS:
            if period.usage_share < share or getattr(period, flag):
                continue
            # Conditional update: exactly one writer emits the event.
            if QuotaPeriod.objects.filter(pk=period.pk, **{flag: False}).update(**{flag: True}):
                OutboxEvent.objects.get_or_create(
                    clinic=period.clinic,
                    kind=OutboxEvent.Kind.QUOTA_THRESHOLD,
                    dedup_key=f"{period.kind}:{period.start}:{percent}",
                    defaults={
                        "payload": {
                            "period": period.kind,
                            "start": period.start.isoformat(),
                            "percent": percent,
                            "used_minutes": round(period.used_seconds / 60, 1),
                            "limit_minutes": round((period.limit_seconds + period.topped_up_seconds) / 60, 1),
                        }
                    },
                )


# --- operator actions ------------------------------------------------------------------------------
def _rearm_alerts(period: QuotaPeriod) -> None:
    share = period.usage_share
    QuotaPeriod.objects.filter(pk=period.pk).update(alerted_80=share >= 0.8, alerted_100=share >= 1.0)


@transaction.atomic
def quota_top_up(*, clinic: Clinic, kind: str, minutes: int, actor: str = "", note: str = "") -> QuotaPeriod:
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    period = current_periods(clinic)[kind]
    QuotaPeriod.objects.filter(pk=period.pk).update(topped_up_seconds=F("topped_up_seconds") + minutes * 60)
    QuotaLedger.objects.create(period=period, entry=QuotaLedger.Entry.TOP_UP, seconds=minutes * 60, actor=actor, note=note)
    period.refresh_from_db()
    _rearm_alerts(period)
    return period


@transaction.atomic
def quota_reset(*, clinic: Clinic, kind: str, actor: str = "", note: str = "") -> QuotaPeriod:
    """Zero the current period's usage (reservations in flight stay reserved)."""
    period = current_periods(clinic)[kind]
    locked = QuotaPeriod.objects.select_for_update().get(pk=period.pk)
    QuotaLedger.objects.create(
        period=period, entry=QuotaLedger.Entry.RESET, seconds=-locked.used_seconds, actor=actor, note=note
    )
    QuotaPeriod.objects.filter(pk=period.pk).update(used_seconds=0, alerted_80=False, alerted_100=False)
    period.refresh_from_db()
    return period


@transaction.atomic
def quota_set_limits(
    *, clinic: Clinic, monthly_minutes: int | None = None, weekly_minutes: int | None = None, actor: str = ""
) -> Clinic:
    """Change the clinic's limits; the current periods follow at once, past periods keep theirs."""
    periods = current_periods(clinic)
    changes = {QuotaPeriod.Kind.MONTH: monthly_minutes, QuotaPeriod.Kind.WEEK: weekly_minutes}
    for kind, minutes in changes.items():
        if minutes is None:
            continue
        if minutes < 0:
            raise ValueError("limits cannot be negative")
        period = periods[kind]
        delta = minutes * 60 - period.limit_seconds
        QuotaPeriod.objects.filter(pk=period.pk).update(limit_seconds=minutes * 60)
        QuotaLedger.objects.create(
            period=period, entry=QuotaLedger.Entry.LIMIT, seconds=delta, actor=actor, note=f"limit {minutes} min"
        )
        period.refresh_from_db()
        _rearm_alerts(period)
    if monthly_minutes is not None:
        clinic.monthly_limit_minutes = monthly_minutes
    if weekly_minutes is not None:
        clinic.weekly_limit_minutes = weekly_minutes
    clinic.save(update_fields=["monthly_limit_minutes", "weekly_limit_minutes"])
    return clinic


def quota_available_seconds(clinic: Clinic) -> int:
    periods = current_periods(clinic)
    return min(p.available_seconds for p in periods.values())


def quota_usage(clinic: Clinic) -> dict:
    """What a clinic has used and has left in the current month and week (minutes)."""
    result: dict = {"clinic": clinic.pk, "clinic_name": clinic.name, "time_zone": clinic.time_zone}
    for kind, period in current_periods(clinic).items():
        total = period.limit_seconds + period.topped_up_seconds
        result[kind] = {
            "start": period.start.isoformat(),
            "limit_minutes": round(period.limit_seconds / 60, 1),
            "topped_up_minutes": round(period.topped_up_seconds / 60, 1),
            "used_minutes": round(period.used_seconds / 60, 1),
            "reserved_minutes": round(period.reserved_seconds / 60, 1),
            "available_minutes": round(period.available_seconds / 60, 1),
            "usage_pct": round(100 * (period.used_seconds + period.reserved_seconds) / total, 1) if total else 100.0,
        }
    result["as_of"] = timezone.now().isoformat()
    return result


__all__ = [
    "Reservation",
    "current_periods",
    "quota_available_seconds",
    "quota_release",
    "quota_reserve",
    "quota_reset",
    "quota_set_limits",
    "quota_settle",
    "quota_top_up",
    "quota_usage",
]

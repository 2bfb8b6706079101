"""Which amoCRM lead statuses mean "the patient booked", and which call a booking belongs to.

``CrmConnection.conversion`` holds the clinic's config::

    {"auto": true,
     "primary":   {"pipeline_id": 1, "pipeline": "Первичные", "booked_status_ids": [11], "booked_statuses": ["Записан"]},
     "secondary": {...} or null,
     "confirmation_field": "",          # optional lead field; a value set means booked
     "detected_at": "2026-11-16T09:00:00+00:00"}

With ``auto`` on, every sync re-detects it from pipeline and status names ("Записан", "Запись",
"Записался", "Booked", "Appointment", ...; the won status 142 when nothing matches). An operator's
edit in the admin turns ``auto`` off and is kept as is.

Attribution: a lead entering a booked status at moment T books the lead's last answered call that
started no later than T + ``BOOKING_GRACE`` on the same clinic-local day (telephony writes the
call's note, and so its event, after the call ends, often after the administrator has moved the
lead). Other calls of a lead in a configured pipeline are "not booked" by the CRM. Bookings only
ever turn a call's CRM flag on: a later sync that no longer sees the status change leaves it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from medai.integrations.amocrm import STATUS_WON, Pipeline, StatusChange

BOOKING_GRACE = timedelta(minutes=15)

_BOOKED = re.compile(r"запис|бронир|booked|appointment|scheduled", re.IGNORECASE)
_NEGATED = re.compile(r"(^|\W)(не|нет|no|not)(\W|$)|отказ|отмен|cancel|no-?show|перенос|lost", re.IGNORECASE)


def is_booked_status_name(name: str) -> bool:
    return bool(_BOOKED.search(name or "")) and not _NEGATED.search(name or "")


def _pipeline_entry(pipeline: Pipeline, statuses: list[Any]) -> dict[str, Any]:
    return {
        "pipeline_id": pipeline.id,
        "pipeline": pipeline.name,
        "booked_status_ids": [s.id for s in statuses],
        "booked_statuses": [s.name for s in statuses],
    }


def conversion_detect(pipelines: list[Pipeline]) -> dict[str, Any]:
    """A config from names: the main pipeline first, then the next pipeline with a booked status."""
    ordered = sorted(pipelines, key=lambda p: not p.is_main)  # stable: keeps amoCRM's order otherwise
    matches = [(p, [s for s in p.statuses if is_booked_status_name(s.name)]) for p in ordered]
    matches = [(p, statuses) for p, statuses in matches if statuses]
    primary = secondary = None
    if matches:
        primary = _pipeline_entry(*matches[0])
        if len(matches) > 1:
            secondary = _pipeline_entry(*matches[1])
    elif ordered:
        main = ordered[0]
        won = [s for s in main.statuses if s.id == STATUS_WON]
        primary = _pipeline_entry(main, won) if won else {**_pipeline_entry(main, []), "booked_status_ids": [STATUS_WON]}
    return {"primary": primary, "secondary": secondary}


def conversion_merge(current: dict[str, Any], pipelines: list[Pipeline]) -> dict[str, Any]:
    """The config to store: re-detected when ``auto`` is on, the operator's otherwise."""
    if current and current.get("auto") is False:
        return current
    detected = conversion_detect(pipelines)
    merged = {
        "auto": True,
        "primary": detected["primary"],
        "secondary": detected["secondary"],
        "confirmation_field": (current or {}).get("confirmation_field", ""),
    }
    previous = {k: (current or {}).get(k) for k in ("auto", "primary", "secondary", "confirmation_field")}
    if previous == {k: merged[k] for k in previous}:
        return current
    merged["detected_at"] = timezone.now().isoformat()
    return merged


@dataclass(frozen=True)
class ConversionConfig:
    booked: frozenset[tuple[int, int]]  # (pipeline id, status id)
    pipelines: frozenset[int]
    confirmation_field: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ConversionConfig:
        booked: set[tuple[int, int]] = set()
        pipelines: set[int] = set()
        for key in ("primary", "secondary"):
            entry = (data or {}).get(key)
            if not isinstance(entry, dict) or entry.get("pipeline_id") is None:
                continue
            pipeline_id = int(entry["pipeline_id"])
            pipelines.add(pipeline_id)
            booked.update((pipeline_id, int(status)) for status in entry.get("booked_status_ids") or [])
        field = str((data or {}).get("confirmation_field") or "").strip()
        return cls(frozenset(booked), frozenset(pipelines), field)

    @property
    def enabled(self) -> bool:
        return bool(self.booked or self.confirmation_field)

    def is_booked(self, pipeline_id: int | None, status_id: int | None) -> bool:
        return (pipeline_id, status_id) in self.booked

    def covers(self, pipeline_id: int | None) -> bool:
        """Leads in these pipelines get a CRM verdict (booked or not); others are left to the transcript."""
        return pipeline_id in self.pipelines


def booking_moments(changes: Iterable[StatusChange], config: ConversionConfig) -> dict[int, list[datetime]]:
    """lead id → the moments it entered a booked status."""
    moments: dict[int, list[datetime]] = defaultdict(list)
    for change in changes:
        if config.is_booked(change.pipeline_id, change.status_id):
            moments[change.lead_id].append(change.created_at)
    return moments


@dataclass(frozen=True)
class Candidate:
    key: Any  # a call pk or an external id
    lead_id: int
    started_at: datetime
    answered: bool


def attribute_bookings(
    moments: dict[int, list[datetime]], candidates: Iterable[Candidate], tz_name: str
) -> set[Any]:
    """Keys of the calls each booking moment belongs to (see the module docstring)."""
    tz = ZoneInfo(tz_name)
    by_lead_day: dict[tuple[int, date], list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if candidate.answered:
            by_lead_day[(candidate.lead_id, candidate.started_at.astimezone(tz).date())].append(candidate)
    booked: set[Any] = set()
    for lead_id, lead_moments in moments.items():
        for moment in lead_moments:
            day = moment.astimezone(tz).date()
            before = [c for c in by_lead_day.get((lead_id, day), ()) if c.started_at <= moment + BOOKING_GRACE]
            if before:
                booked.add(max(before, key=lambda c: (c.started_at, str(c.key))).key)
    return booked


_FALSY = {"", "0", "false", "no", "нет", "none", "null"}


def is_set(values: list[Any] | None) -> bool:
    """A confirmation field counts as set when any value is truthy ("1", True, a date, text)."""
    return any(value is not None and value is not False and str(value).strip().lower() not in _FALSY for value in values or [])

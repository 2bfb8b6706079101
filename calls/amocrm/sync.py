"""Call sync from amoCRM: batched, incremental, idempotent.

One window ``[start, end)`` costs a handful of requests however many calls it holds:

1. reference data — users (→ administrators), pipelines (→ conversion config), lead custom fields;
2. call events (incoming and outgoing), 100 per page;
3. the call notes of events not stored yet, 50 ids per request and entity type (a note already
   stored as a call is never fetched again);
4. their leads, 50 ids per request (custom fields, pipeline, main contact);
5. lead status changes of the window, 100 per page (booking, see :mod:`.conversion`).

Calls are stored through :func:`calls.services.call_ingest` (idempotent by
``amocrm-note-<note id>``), in transactions of ``INGEST_BATCH`` calls with their CRM booking set in
the same transaction; after it commits, one task queues the batch's calls for the pipeline.

Days are the clinic's: a range of dates is ``[first 00:00, last + 1 00:00)`` in its time zone.
The incremental sync keeps a cursor per connection and re-reads an overlap to catch late notes.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import Call
from calls.services import call_ingest
from clinics.models import Administrator, Clinic, CrmConnection
from medai.http import HttpError
from medai.integrations.amocrm import CallEvent, CallNote
from medai.logging import redact
from medai.timeutils import day_bounds, local_now, range_bounds

from .administrators import administrators_sync, calls_fill_administrators
from .connection import AmoSession, CrmUnavailable
from .conversion import (
    BOOKING_GRACE,
    Candidate,
    ConversionConfig,
    attribute_bookings,
    booking_moments,
    conversion_merge,
    is_set,
)
from .mapping import CallRow, Reference, call_row, external_id, find_field

logger = logging.getLogger("medai.amocrm")

INGEST_BATCH = 250
LOOKUP_CHUNK = 500
NOTE_ENTITY_TYPES = ("lead", "contact", "company")
MAX_INCREMENTAL_WINDOW = timedelta(days=3)

Progress = Callable[[str, int, int], None]


def overlap() -> timedelta:
    return timedelta(minutes=int(settings.AMOCRM_SYNC_OVERLAP_MINUTES))


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.Q_TIMEOUT + 120)


@dataclass
class SyncStats:
    events: int = 0
    without_note: int = 0
    existing: int = 0
    notes_missing: int = 0
    created: int = 0
    phones_dropped: int = 0
    rejected: int = 0
    booked: int = 0
    not_booked: int = 0
    administrators_filled: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --- leases: one sync per connection at a time, across processes -----------------------------------
def lease_acquire(connection_id: int, *, wait: float = 0.0, poll: float = 1.0) -> bool:
    deadline = time.monotonic() + wait
    while True:
        now = timezone.now()
        won = (
            CrmConnection.objects.filter(pk=connection_id)
            .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
            .update(sync_lease_until=now + lease_duration())
        )
        if won:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def lease_renew(connection_id: int) -> None:
    CrmConnection.objects.filter(pk=connection_id).update(sync_lease_until=timezone.now() + lease_duration())


def lease_release(connection_id: int) -> None:
    CrmConnection.objects.filter(pk=connection_id).update(sync_lease_until=None)


# --- reference data -------------------------------------------------------------------------------
def conversion_refresh(*, connection: CrmConnection, pipelines: list[Any]) -> dict[str, Any]:
    """Re-detect the conversion config (unless an operator set it) without racing an admin edit."""
    with transaction.atomic():
        current = CrmConnection.objects.select_for_update().values_list("conversion", flat=True).get(pk=connection.pk)
        merged = conversion_merge(current or {}, pipelines)
        if merged != current:
            CrmConnection.objects.filter(pk=connection.pk).update(conversion=merged)
    connection.conversion = merged
    return merged


def reference_load(*, connection: CrmConnection, session: AmoSession) -> Reference:
    users = session.run(lambda c: c.users())
    admins = administrators_sync(clinic=connection.clinic, users=users)
    pipelines = session.run(lambda c: c.pipelines())
    config = ConversionConfig.from_json(conversion_refresh(connection=connection, pipelines=pipelines))
    wanted = (connection.source_field, connection.speed_field, config.confirmation_field)
    fields = session.run(lambda c: c.lead_custom_fields()) if any(wanted) else []
    return Reference(
        admins=admins,
        conversion=config,
        source_field=find_field(fields, connection.source_field),
        speed_field=find_field(fields, connection.speed_field),
        confirmation_field=find_field(fields, config.confirmation_field),
    )


# --- one window ------------------------------------------------------------------------------------
def _existing_external_ids(clinic: Clinic, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for offset in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[offset : offset + LOOKUP_CHUNK]
        found.update(Call.objects.filter(clinic=clinic, external_id__in=chunk).values_list("external_id", flat=True))
    return found


def _fetch_notes(session: AmoSession, events: list[CallEvent]) -> dict[tuple[str, int], CallNote]:
    ids_by_type: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.entity_type in NOTE_ENTITY_TYPES and event.note_id is not None:
            ids_by_type[event.entity_type].append(event.note_id)
    notes: dict[tuple[str, int], CallNote] = {}
    for entity_type, ids in ids_by_type.items():
        found = session.run(lambda c, t=entity_type, i=ids: c.notes_by_ids(t, i))
        notes.update({(entity_type, note_id): note for note_id, note in found.items()})
    return notes


def _existing_candidates(clinic: Clinic, moments: dict[int, list[datetime]]) -> list[Candidate]:
    days = {moment.astimezone(clinic.tz).date() for lead_moments in moments.values() for moment in lead_moments}
    lead_ids = list(moments)
    candidates = []
    for offset in range(0, len(lead_ids), LOOKUP_CHUNK):
        rows = Call.objects.filter(
            clinic=clinic,
            crm_lead_id__in=lead_ids[offset : offset + LOOKUP_CHUNK],
            local_date__in=days,
            status=Call.Status.ANSWERED,
        ).values_list("pk", "crm_lead_id", "started_at")
        candidates += [Candidate(("pk", pk), lead_id, started_at, True) for pk, lead_id, started_at in rows]
    return candidates


def _decide_bookings(
    *, clinic: Clinic, rows: list[CallRow], moments: dict[int, list[datetime]], config: ConversionConfig
) -> set[int]:
    """Set ``row.booked`` on new rows; return pks of stored calls a booking now belongs to."""
    candidates = _existing_candidates(clinic, moments) if moments else []
    candidates += [
        Candidate(("row", row.external_id), row.lead_id, row.started_at, row.status == Call.Status.ANSWERED)
        for row in rows
        if row.lead_id is not None
    ]
    booked = attribute_bookings(moments, candidates, clinic.time_zone)
    for row in rows:
        if ("row", row.external_id) in booked:
            row.booked = True
        elif row.lead_id is not None and config.covers(row.lead_pipeline_id):
            row.booked = False
    return {key[1] for key in booked if key[0] == "pk"}


def _ingest_one(clinic: Clinic, row: CallRow, admins: dict[int, Administrator], stats: SyncStats):
    values = {
        "clinic": clinic,
        "started_at": row.started_at,
        "source": Call.Source.AMOCRM,
        "direction": row.direction,
        "status": row.status,
        "external_id": row.external_id,
        "duration_seconds": row.duration,
        "phone": row.phone,
        "recording_url": row.recording_url,
        # None lets call_ingest fall back to the schedule (administrator_for).
        "administrator": admins.get(row.responsible_user_id) if row.responsible_user_id else None,
        "crm_lead_id": row.lead_id,
        "crm_contact_id": row.contact_id,
        "crm_responsible_user_id": row.responsible_user_id,
        "traffic_source": row.traffic_source,
        "lead_processing_minutes": row.lead_processing_minutes,
        "enqueue": False,  # queued per batch, see _ingest
    }
    try:
        return call_ingest(**values)
    except ValidationError:
        if not values["phone"]:
            raise
        stats.phones_dropped += 1
        return call_ingest(**{**values, "phone": ""})


def _ingest(
    *,
    connection: CrmConnection,
    rows: list[CallRow],
    admins: dict[int, Administrator],
    enqueue: bool,
    stats: SyncStats,
    progress: Progress | None,
) -> None:
    clinic = connection.clinic
    for offset in range(0, len(rows), INGEST_BATCH):
        batch = rows[offset : offset + INGEST_BATCH]
        created: list[int] = []
        # One transaction per batch, its CRM bookings included: the analysis stage must see them.
        with transaction.atomic():
            verdicts: dict[bool, list[int]] = {True: [], False: []}
            for row in batch:
                try:
                    result = _ingest_one(clinic, row, admins, stats)
                except ValidationError as exc:
                    stats.rejected += 1
                    logger.warning("amoCRM call %s rejected: %s", row.external_id, redact("; ".join(exc.messages)))
                    continue
                if result.created:
                    stats.created += 1
                    created.append(result.call.pk)
                    if row.booked is not None:
                        verdicts[row.booked].append(result.call.pk)
                else:
                    stats.existing += 1  # stored by a concurrent ingest a moment ago
            if verdicts[True]:
                stats.booked += Call.objects.filter(pk__in=verdicts[True]).update(
                    booked=True, booked_source=Call.BookedSource.CRM
                )
            if verdicts[False]:
                stats.not_booked += Call.objects.filter(pk__in=verdicts[False]).update(
                    booked=False, booked_source=Call.BookedSource.CRM
                )
        if enqueue and created:
            # One task fans the batch out to the pipeline in the worker: queueing 5,000 tasks from
            # here would cost more than the sync itself (the ORM broker reconnects per task).
            from django_q.tasks import async_task

            async_task("calls.amocrm.tasks.queue_pipeline", created, group="amocrm", task_name=f"amocrm-queue-{created[0]}")
        lease_renew(connection.pk)
        if progress:
            progress("ingest", min(offset + INGEST_BATCH, len(rows)), len(rows))


def sync_window(
    *,
    connection: CrmConnection,
    session: AmoSession,
    reference: Reference,
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
    enqueue: bool = True,
) -> SyncStats:
    """Store every call amoCRM logged in ``[start, end)``; set CRM bookings of the window."""
    clinic = connection.clinic
    stats = SyncStats()
    events = session.run(lambda c: list(c.iter_call_events(start, end)))
    stats.events = len(events)
    if progress:
        progress("events", len(events), len(events))

    by_note: dict[int, CallEvent] = {}
    for event in events:
        if event.note_id is None:
            stats.without_note += 1
        else:
            by_note.setdefault(event.note_id, event)
    stored = _existing_external_ids(clinic, [external_id(note_id) for note_id in by_note])
    new_events = [event for note_id, event in by_note.items() if external_id(note_id) not in stored]
    stats.existing = len(by_note) - len(new_events)

    notes = _fetch_notes(session, new_events)
    if progress:
        progress("notes", len(notes), len(new_events))
    lead_ids = sorted({e.entity_id for e in new_events if e.entity_type == "lead" and (e.entity_type, e.note_id) in notes})
    leads = session.run(lambda c: c.leads_by_ids(lead_ids)) if lead_ids else {}
    config = reference.conversion
    changes = session.run(lambda c: list(c.iter_status_changes(start - BOOKING_GRACE, end))) if config.booked else []

    rows = []
    for event in new_events:
        note = notes.get((event.entity_type, event.note_id))
        if note is None:
            stats.notes_missing += 1  # deleted since, or not a call note
            continue
        lead = leads.get(event.entity_id) if event.entity_type == "lead" else None
        row = call_row(event, note, lead, reference)
        stats.phones_dropped += row.phone_dropped
        rows.append(row)
    rows.sort(key=lambda r: r.started_at)

    moments = booking_moments(changes, config)
    if reference.confirmation_field is not None:
        for lead in leads.values():
            if lead.updated_at and is_set(lead.custom_fields.get(reference.confirmation_field.id)):
                moments.setdefault(lead.id, []).append(lead.updated_at)
    booked_stored = _decide_bookings(clinic=clinic, rows=rows, moments=moments, config=config)

    _ingest(connection=connection, rows=rows, admins=reference.admins, enqueue=enqueue, stats=stats, progress=progress)
    if booked_stored:
        stats.booked += (
            Call.objects.filter(pk__in=list(booked_stored))
            .exclude(booked=True, booked_source=Call.BookedSource.CRM)
            .exclude(booked_source=Call.BookedSource.MANUAL)  # an operator's correction stays
            .update(booked=True, booked_source=Call.BookedSource.CRM)
        )
    stats.administrators_filled = calls_fill_administrators(clinic=clinic, admins=reference.admins, start=start, end=end)
    return stats


# --- entry points ----------------------------------------------------------------------------------
def amocrm_sync_range(
    *,
    connection: CrmConnection,
    date_from: date,
    date_to: date,
    progress: Progress | None = None,
    enqueue: bool = True,
    session: AmoSession | None = None,
) -> SyncStats:
    """Sync the clinic-local days ``date_from``..``date_to`` (inclusive). The caller holds the lease."""
    if date_to < date_from:
        raise ValidationError(_("date_to is before date_from."))
    start, end = range_bounds(date_from, date_to, connection.clinic.time_zone)
    end = min(end, timezone.now() + timedelta(minutes=1))
    own_session = session is None
    session = session or AmoSession(connection)
    try:
        reference = reference_load(connection=connection, session=session)
        return sync_window(
            connection=connection, session=session, reference=reference, start=start, end=end, progress=progress, enqueue=enqueue
        )
    finally:
        if own_session:
            session.close()


def incremental_window(connection: CrmConnection, now: datetime) -> tuple[datetime, datetime]:
    if connection.sync_cursor is None:
        days = int(settings.AMOCRM_SYNC_INITIAL_DAYS)
        first_day = local_now(connection.clinic.time_zone).date() - timedelta(days=days)
        cursor = day_bounds(first_day, connection.clinic.time_zone)[0]
    else:
        cursor = connection.sync_cursor
    end = min(now, cursor + MAX_INCREMENTAL_WINDOW)  # a long outage is caught up over several runs
    return cursor - overlap(), end


def amocrm_sync_incremental(*, connection_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The scheduled sync of one connection: from its cursor (minus the overlap) to now."""
    connection = CrmConnection.objects.select_related("clinic").get(pk=connection_id)
    if connection.status != CrmConnection.Status.ACTIVE or not connection.clinic.is_active:
        return {"skipped": connection.status}
    if not lease_acquire(connection.pk):
        return {"skipped": "busy"}
    try:
        now = now or timezone.now()
        start, end = incremental_window(connection, now)
        with AmoSession(connection) as session:
            reference = reference_load(connection=connection, session=session)
            stats = sync_window(connection=connection, session=session, reference=reference, start=start, end=end)
        CrmConnection.objects.filter(pk=connection.pk).update(sync_cursor=end, last_synced_at=timezone.now(), last_error="")
        return {"window": [start.isoformat(), end.isoformat()], **stats.as_dict()}
    except CrmUnavailable as exc:
        return {"error": str(exc)}  # the connection was marked broken (and alerted) where it applies
    except HttpError as exc:
        # Temporary trouble (429 storm past the retries, 5xx, timeouts): the cursor stays, the next run retries.
        CrmConnection.objects.filter(pk=connection.pk).update(last_error=redact(str(exc))[:2000])
        logger.warning("amoCRM sync of connection %s failed: %s", connection.pk, redact(str(exc))[:300])
        return {"error": redact(str(exc))[:500]}
    finally:
        lease_release(connection.pk)

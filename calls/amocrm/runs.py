"""Manual range syncs (admin, API): queued in the background, state and progress in ``CrmConnection.sync_run``.

``sync_run`` holds the last run: ``{"id", "status": queued|running|succeeded|failed, "date_from",
"date_to", "requested_by", "queued_at", "started_at", "finished_at", "progress": {"phase", "done",
"total"}, "result": {...counts}, "error"}``. One run per connection at a time; a run whose worker
died shows as failed once its lease lapses (see :func:`sync_run_state`).
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.models import CrmConnection
from medai.http import HttpError
from medai.logging import redact

from .connection import CrmUnavailable
from .sync import amocrm_sync_range, lease_acquire, lease_release

MAX_RANGE_DAYS = 31
QUEUED_RUN_STALE = timedelta(minutes=30)


class SyncBusy(Exception):
    """Another sync of this connection is queued or running."""


def run_in_progress(connection: CrmConnection, now: datetime) -> bool:
    run = connection.sync_run or {}
    if run.get("status") == "queued":
        queued_at = datetime.fromisoformat(run["queued_at"]) if run.get("queued_at") else None
        return queued_at is not None and now - queued_at < QUEUED_RUN_STALE
    if run.get("status") == "running":
        return connection.sync_lease_until is not None and connection.sync_lease_until > now
    return False


def run_state(connection: CrmConnection, *, now: datetime | None = None) -> dict[str, Any]:
    """The last run as callers should see it: a run whose worker stopped reads as failed."""
    run = dict(connection.sync_run or {})
    if run.get("status") in ("queued", "running") and not run_in_progress(connection, now or timezone.now()):
        run["status"] = "failed"
        run["error"] = run.get("error") or _("The sync was interrupted (its worker stopped); start it again.")
    return run


def validate_range(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationError(_("date_to is before date_from."))
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(_("Sync at most %(days)d days at a time.") % {"days": MAX_RANGE_DAYS})


def sync_run_request(*, connection: CrmConnection, date_from: date, date_to: date, requested_by: str) -> dict[str, Any]:
    """Queue a range sync in the background; its state is kept in ``connection.sync_run``."""
    validate_range(date_from, date_to)
    now = timezone.now()
    with transaction.atomic():
        locked = CrmConnection.objects.select_for_update().get(pk=connection.pk)
        if locked.status != CrmConnection.Status.ACTIVE:
            raise CrmUnavailable(_("The amoCRM connection is %(status)s.") % {"status": locked.get_status_display()})
        if run_in_progress(locked, now):
            raise SyncBusy(_("A sync of this clinic is already queued or running."))
        run = {
            "id": uuid.uuid4().hex,
            "status": "queued",
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "requested_by": requested_by[:150],
            "queued_at": now.isoformat(),
            "started_at": None,
            "finished_at": None,
            "progress": {},
            "result": {},
            "error": "",
        }
        CrmConnection.objects.filter(pk=locked.pk).update(sync_run=run)

        def _send() -> None:
            from django_q.tasks import async_task

            async_task(
                "calls.amocrm.tasks.sync_range", locked.pk, run["id"], task_name=f"amocrm-sync-{run['id']}", group="amocrm"
            )

        transaction.on_commit(_send)
    connection.sync_run = run
    return run


def _run_update(connection_id: int, run_id: str, **changes: Any) -> None:
    with transaction.atomic():
        locked = CrmConnection.objects.select_for_update().get(pk=connection_id)
        run = dict(locked.sync_run or {})
        if run.get("id") != run_id:
            return
        run.update(changes)
        CrmConnection.objects.filter(pk=connection_id).update(sync_run=run)


def sync_run_execute(*, connection_id: int, run_id: str, lease_wait: float = 120.0) -> dict[str, Any]:
    """The background half of :func:`sync_run_request`."""
    connection = CrmConnection.objects.select_related("clinic").get(pk=connection_id)
    run = connection.sync_run or {}
    if run.get("id") != run_id or run.get("status") != "queued":
        return {"skipped": "superseded"}
    if not lease_acquire(connection_id, wait=lease_wait):
        error = _("Another sync of this clinic kept running; try again later.")
        _run_update(connection_id, run_id, status="failed", finished_at=timezone.now().isoformat(), error=error)
        return {"error": "busy"}
    _run_update(connection_id, run_id, status="running", started_at=timezone.now().isoformat())
    last_write = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        if time.monotonic() - last_write[0] >= 2 or (phase == "ingest" and done == total):
            last_write[0] = time.monotonic()
            _run_update(connection_id, run_id, progress={"phase": phase, "done": done, "total": total})

    try:
        stats = amocrm_sync_range(
            connection=connection,
            date_from=date.fromisoformat(run["date_from"]),
            date_to=date.fromisoformat(run["date_to"]),
            progress=progress,
        )
    except (CrmUnavailable, HttpError, ValidationError) as exc:
        message = redact("; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))[:1000]
        _run_update(connection_id, run_id, status="failed", finished_at=timezone.now().isoformat(), error=message)
        return {"error": message}
    except Exception:
        error = _("Internal error. It has been logged.")
        _run_update(connection_id, run_id, status="failed", finished_at=timezone.now().isoformat(), error=error)
        raise
    finally:
        lease_release(connection_id)
    _run_update(connection_id, run_id, status="succeeded", finished_at=timezone.now().isoformat(), result=stats.as_dict())
    CrmConnection.objects.filter(pk=connection_id).update(last_synced_at=timezone.now())
    return stats.as_dict()

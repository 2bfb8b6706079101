"""django-q2 entry points for amoCRM: thin, take ids, call a service."""

from __future__ import annotations

from typing import Any

from .runs import sync_run_execute
from .selectors import connections_to_sync
from .sync import amocrm_sync_incremental


def sync_due_connections() -> dict[str, Any]:
    """Every few minutes: queue one incremental sync per working connection (broken ones wait for a reconnect)."""
    from django_q.tasks import async_task

    ids = list(connections_to_sync().values_list("pk", flat=True))
    for connection_id in ids:
        async_task("calls.amocrm.tasks.sync_connection", connection_id, group="amocrm", task_name=f"amocrm-sync-{connection_id}")
    return {"queued": len(ids)}


def sync_connection(connection_id: int) -> dict[str, Any]:
    return amocrm_sync_incremental(connection_id=connection_id)


def sync_range(connection_id: int, run_id: str) -> dict[str, Any]:
    return sync_run_execute(connection_id=connection_id, run_id=run_id)


def queue_pipeline(call_ids: list[int]) -> int:
    """Queue the first pipeline step of freshly synced calls (the sweeper catches any this misses)."""
    from calls import pipeline
    from calls.models import Call, Stage

    calls = list(Call.objects.filter(pk__in=call_ids, stage=Stage.INGESTED, claim_token__isnull=True).only("pk", "stage"))
    for call in calls:
        pipeline.enqueue_call(call)
    return len(calls)

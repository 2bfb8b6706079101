"""Reads about amoCRM connections and their syncs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from clinics.models import CrmConnection

from .runs import run_state


def connections_to_sync() -> QuerySet[CrmConnection]:
    """Connections the scheduler syncs: authorised, not broken or disabled, of active clinics."""
    return CrmConnection.objects.filter(status=CrmConnection.Status.ACTIVE, clinic__is_active=True).order_by("pk")


def connection_sync_status(connection: CrmConnection) -> dict[str, Any]:
    """What the API and the admin show about a connection's syncing (never tokens)."""
    return {
        "clinic": connection.clinic_id,
        "connection_status": connection.status,
        "last_synced_at": connection.last_synced_at,
        "synced_up_to": connection.sync_cursor,
        "last_error": connection.last_error,
        "run": run_state(connection) or None,
    }

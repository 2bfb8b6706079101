"""django-q2 entry points for outbound calls: thin, take ids, call a service."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task


def enqueue(name: str, *args) -> None:
    """Queue ``calls.outbound.tasks.<name>(*args)`` once the current transaction commits."""

    def _send() -> None:
        async_task(f"calls.outbound.tasks.{name}", *args, group="outbound")

    transaction.on_commit(_send)


def start_call(outbound_call_id: int) -> str:
    from calls.outbound.services import outbound_call_start

    return outbound_call_start(outbound_call_id)


def dispatch_campaign(campaign_id: int) -> int:
    """Woken after every result of the campaign (and by start/resume)."""
    from calls.outbound.campaigns import campaign_dispatch

    return len(campaign_dispatch(campaign_id).calls)


def dispatch_campaigns() -> int:
    """Every minute: windows that open, retries that fall due, slots freed by reconciled calls."""
    from calls.outbound.campaigns import campaigns_dispatch_running

    return campaigns_dispatch_running()


def reconcile() -> dict[str, int]:
    """Every minute: due starts, unclear starts, calls whose result never arrived, old nonces."""
    from calls.outbound.reconcile import outbound_reconcile

    return outbound_reconcile()

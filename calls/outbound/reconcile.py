"""Reconciliation (every minute): start due queued calls, settle unclear starts, and finish calls whose
result never arrived — all from Voximplant's call history (GetCallHistory), never by guessing.

* A call still ``dialing`` without a session two minutes after StartScenarios: the history is searched
  by the call's custom data. Found → the session is recorded. Not found and the scenario never asked
  for its settings → StartScenarios is sent again (bounded by ``VOXIMPLANT_START_MAX_ATTEMPTS``);
  see :mod:`calls.outbound.services` for why that cannot dial twice.
* A call dialling, ringing or talking for longer than ``VOXIMPLANT_STUCK_MINUTES``: its session's final
  state comes from the history (no transcript then: the recording is transcribed). A session the
  history does not know after three times that long fails the call.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from calls.models import OutboundCall, ScenarioNonce
from calls.outbound.accounts import NotConfigured, account_for
from calls.outbound.services import (
    LIVE,
    START_LOOKUP_AFTER,
    Outcome,
    finish_without_session,
    outbound_call_start,
    outbound_result_record,
)
from medai.http import PermanentHttpError, TemporaryHttpError
from medai.integrations.voximplant import CallSession

logger = logging.getLogger("medai.outbound")

Status = OutboundCall.Status


BUSY_CODES = {486, 600, 603}
NO_ANSWER_CODES = {408, 480, 487}


def outcome_from_history(session: CallSession) -> Outcome:
    """The final state of a session read from GetCallHistory (no transcript; voicemail is not visible)."""
    legs = [leg for leg in session.calls if leg.incoming is not True] or list(session.calls)
    common = {"session_id": session.session_id, "started_at": session.start, "source": "history"}
    if not legs:
        return Outcome(status=Status.FAILED, error="no call was placed (see the session log)", **common)
    leg = legs[0]
    if leg.successful:
        return Outcome(
            status=Status.COMPLETED,
            duration_seconds=float(leg.duration or 0),
            record_url=session.record_url or "",
            started_at=leg.start_time or session.start,
            session_id=session.session_id,
            source="history",
        )
    code = leg.end_reason.get("code") if isinstance(leg.end_reason, dict) else None
    code = code if isinstance(code, int) and 100 <= code <= 699 else None
    if code in BUSY_CODES:
        return Outcome(status=Status.BUSY, sip_code=code, **common)
    if code in NO_ANSWER_CODES:
        return Outcome(status=Status.NO_ANSWER, sip_code=code, **common)
    return Outcome(status=Status.FAILED, sip_code=code, error=f"sip_{code}" if code else "call failed", **common)


def outbound_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Every minute: start due queued calls, settle unclear starts, finish calls whose result never came."""
    now = now or timezone.now()
    counts = {"started": 0, "found": 0, "restarted": 0, "finished": 0, "failed": 0, "nonces": 0}
    queued = OutboundCall.objects.filter(status=Status.QUEUED).filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lt=now - timedelta(seconds=30))
    )
    for call_id in list(queued.values_list("pk", flat=True)[:500]):
        counts["started"] += outbound_call_start(call_id, now=now) == "started"

    unclear = OutboundCall.objects.filter(
        status__in=LIVE, session_id__isnull=True, dial_started_at__lt=now - START_LOOKUP_AFTER
    ).select_related("clinic")
    for call in list(unclear[:200]):
        outcome = _settle_unclear_start(call, now=now)
        counts[outcome] = counts.get(outcome, 0) + 1

    stuck = OutboundCall.objects.filter(
        status__in=LIVE,
        session_id__isnull=False,
        dial_started_at__lt=now - timedelta(minutes=settings.VOXIMPLANT_STUCK_MINUTES),
    ).select_related("clinic")
    by_clinic: dict[int, list[OutboundCall]] = defaultdict(list)
    for call in stuck[:1000]:
        by_clinic[call.clinic_id].append(call)
    for calls in by_clinic.values():
        for key, value in _finish_from_history(calls, now=now).items():
            counts[key] += value

    counts["nonces"] = ScenarioNonce.objects.filter(expires_at__lt=now).delete()[0]
    return counts


def _settle_unclear_start(call: OutboundCall, *, now: datetime) -> str:
    """Did the unclear StartScenarios start a session? Look it up by custom data; re-send only if not."""
    try:
        with account_for(call.clinic).client() as client:
            sessions = client.call_history(
                from_date=call.dial_started_at - timedelta(minutes=5),
                to_date=now + timedelta(minutes=1),
                custom_data=call.custom_data,
                with_calls=False,
                with_records=False,
            )
    except (TemporaryHttpError, PermanentHttpError, NotConfigured, ValueError, OSError) as exc:
        logger.warning("outbound call %s: call history unavailable, will try again: %s", call.pk, exc)
        return "history_unavailable"
    if sessions:
        session_id = min(s.session_id for s in sessions)
        OutboundCall.objects.filter(pk=call.pk, session_id__isnull=True).update(session_id=session_id, error="")
        return "found"
    if call.status != Status.DIALING:
        return "waiting"  # the scenario already asked for its settings: it runs; the history lags
    if call.start_attempts >= settings.VOXIMPLANT_START_MAX_ATTEMPTS:
        finish_without_session(
            call, error=f"no session started after {call.start_attempts} StartScenarios attempts: {call.error}", now=now
        )
        return "failed"
    requeued = OutboundCall.objects.filter(
        pk=call.pk, status=Status.DIALING, session_id__isnull=True, start_attempts=call.start_attempts
    ).update(status=Status.QUEUED, status_changed_at=now, next_attempt_at=None)
    if requeued and outbound_call_start(call.pk, now=now) in ("started", "unclear", "retry"):
        return "restarted"
    return "failed"


def _finish_from_history(calls: list[OutboundCall], *, now: datetime) -> dict[str, int]:
    counts = {"finished": 0, "failed": 0}
    try:
        with account_for(calls[0].clinic).client() as client:
            sessions = client.call_history(
                from_date=min(c.dial_started_at for c in calls) - timedelta(minutes=5),
                to_date=now + timedelta(minutes=1),
                session_ids=[c.session_id for c in calls],
            )
    except (TemporaryHttpError, PermanentHttpError, NotConfigured, ValueError, OSError) as exc:
        logger.warning("call history unavailable for %d stuck outbound call(s): %s", len(calls), exc)
        return counts
    by_id = {s.session_id: s for s in sessions}
    give_up = now - 3 * timedelta(minutes=settings.VOXIMPLANT_STUCK_MINUTES)
    for call in calls:
        session = by_id.get(call.session_id)
        if session is not None:
            counts["finished"] += outbound_result_record(call=call, outcome=outcome_from_history(session), now=now)
        elif call.dial_started_at < give_up:
            outcome = Outcome(
                status=Status.FAILED,
                session_id=call.session_id,
                error="no result: the session never reported and is not in the call history",
                source="history",
            )
            counts["failed"] += outbound_result_record(call=call, outcome=outcome, now=now)
    return counts

"""Single outbound AI calls: create, start through Voximplant, answer the scenario, record the result.

States: ``queued → dialing → ringing → in_progress → completed | no_answer | busy | voicemail | failed``.
Every transition is a conditional UPDATE on the expected state, so a webhook, a retried webhook and
the reconciler can race without recording a result twice.

**StartScenarios is never retried blindly** (a retry after a lost answer could dial the patient
twice). Its outcomes:

* a session id → the call is dialling;
* Voximplant *answered* with an error: a platform error (code < 100) or HTTP 429 → nothing started,
  queued again for a later attempt; a request error (code ≥ 100, 4xx) → failed;
* anything ambiguous (timeout, connection lost, 5xx, a malformed 200) → the call stays ``dialing``
  without a session; :func:`calls.outbound.reconcile.outbound_reconcile` later looks the session up with
  ``GetCallHistory(custom_data=…)`` and re-sends StartScenarios only when none exists **and** the
  scenario never asked for its settings. The scenario fetches its settings before it dials, and its
  own retries of that request give up within a minute; so a call still ``dialing`` two minutes after
  an unclear start was never dialled, even if the call history lags behind a running session.

Results come from the signed webhook, else from the call history once a call is stuck past
``VOXIMPLANT_STUCK_MINUTES``. A result becomes a normal :class:`~calls.models.Call`
(source and direction "outbound"): with the scenario's transcript when it sent one, else the
recording is transcribed; then analysis and CRM write-back run as for any call.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import Call, DoNotCall, OutboundCall, ScenarioNonce, Transcript
from calls.outbound import conversation
from calls.outbound.accounts import E164, Account, NotConfigured, account_for
from clinics.models import Clinic
from medai.http import PermanentHttpError, ProviderResponseError, TemporaryHttpError
from medai.integrations.voximplant import (
    VoximplantClient,
    VoximplantPermanentError,
    VoximplantTemporaryError,
    compact_custom_data,
    encode_custom_data,
)
from medai.integrations.voximplant_webhook import DEFAULT_TOLERANCE, OutboundResult
from medai.logging import redact

logger = logging.getLogger("medai.outbound")

Status = OutboundCall.Status
LIVE = (Status.DIALING, Status.RINGING, Status.IN_PROGRESS)
# A dialling call still without a session this long after StartScenarios was sent is looked up in
# the call history (longer than any StartScenarios request can take).
START_LOOKUP_AFTER = timedelta(minutes=2)
# Retry delay after Voximplant refused to start (platform error or 429).
START_RETRY_DELAY = timedelta(minutes=1)
CALL_STATUS = {
    Status.COMPLETED: Call.Status.ANSWERED,
    Status.NO_ANSWER: Call.Status.MISSED,
    Status.BUSY: Call.Status.BUSY,
    Status.VOICEMAIL: Call.Status.MISSED,  # a machine answered: nobody was talked to
    Status.FAILED: Call.Status.UNKNOWN,
}
MAX_GREETING = 1000
MAX_PROMPT = 8000


# --- validation ------------------------------------------------------------------------------------
def validate_phone(raw: str, *, strict: bool = True) -> str:
    """The number in E.164. ``strict``: it must already be written in E.164 (the API's contract);
    otherwise local habits (8XXXXXXXXXX) are accepted and normalised (contact files)."""
    from calls.services import normalize_phone

    raw = (raw or "").strip()
    if strict and not E164.match(raw):
        raise ValidationError(_("Give the number in E.164 format, e.g. +79990001122."))
    phone = normalize_phone(raw)
    if not phone:
        raise ValidationError(_("The phone number is empty."))
    if not phonenumbers.is_valid_number(phonenumbers.parse(phone)):
        raise ValidationError(_("%(phone)s is not a valid phone number.") % {"phone": phone})
    return phone


def validate_call_content(*, language: str, voice: str, greeting: str, prompt: str, script: str) -> None:
    errors: dict[str, list[str]] = {}
    problem = conversation.validate_voice(language, voice)
    if problem:
        errors["language" if language not in conversation.LANGUAGES else "voice"] = [problem]
    if not greeting.strip():
        errors["greeting"] = [_("The greeting is required: it is the first thing the AI says.")]
    elif len(greeting) > MAX_GREETING:
        errors["greeting"] = [_("At most %(n)d characters.") % {"n": MAX_GREETING}]
    if not prompt.strip() and not script.strip():
        errors["prompt"] = [_("Give a prompt (for the LLM) or a script (replies, one per line).")]
    for name, value in (("prompt", prompt), ("script", script)):
        if len(value) > MAX_PROMPT:
            errors[name] = [_("At most %(n)d characters.") % {"n": MAX_PROMPT}]
    if errors:
        raise ValidationError(errors)


def ensure_configured(account: Account) -> None:
    problems = account.problems()
    if problems:
        raise ValidationError(
            _("Voximplant is not configured for this clinic: missing %(what)s.") % {"what": ", ".join(problems)}
        )


def is_do_not_call(clinic_id: int, phone: str) -> bool:
    return DoNotCall.objects.filter(clinic_id=clinic_id, phone=phone).exists()


def new_token() -> str:
    return "oc_" + secrets.token_urlsafe(24)  # 192 random bits


# --- create and start ------------------------------------------------------------------------------
def outbound_call_create(
    *,
    clinic: Clinic,
    phone: str,
    language: str = "ru",
    voice: str = "female",
    greeting: str,
    prompt: str = "",
    script: str = "",
    purpose: str = "",
    crm_lead_id: int | None = None,
    actor: str = "",
    enqueue: bool = True,
) -> OutboundCall:
    """Queue one AI call; it is started by a worker right after the transaction commits."""
    try:
        phone = validate_phone(phone)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from exc
    validate_call_content(language=language, voice=voice, greeting=greeting, prompt=prompt, script=script)
    if is_do_not_call(clinic.pk, phone):
        raise ValidationError({"phone": [_("This number is on the clinic's do-not-call list.")]})
    ensure_configured(account_for(clinic))
    with transaction.atomic():
        call = OutboundCall.objects.create(
            clinic=clinic,
            token=new_token(),
            phone=phone,
            language=language,
            voice=voice,
            greeting=greeting.strip(),
            prompt=prompt.strip(),
            script=script.strip(),
            purpose=purpose.strip()[:300],
            crm_lead_id=crm_lead_id,
            created_by=actor[:150],
        )
        if enqueue:
            from calls.outbound import tasks

            tasks.enqueue("start_call", call.pk)
    return call


def _claim_for_start(call_id: int, now: datetime) -> bool:
    return bool(
        OutboundCall.objects.filter(pk=call_id, status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(
            status=Status.DIALING,
            status_changed_at=now,
            dial_started_at=now,
            start_attempts=F("start_attempts") + 1,
            next_attempt_at=None,
        )
    )


def outbound_call_start(call_id: int, *, client: VoximplantClient | None = None, now: datetime | None = None) -> str:
    """Send StartScenarios for a queued call (exactly one worker wins the claim). Returns the outcome."""
    now = now or timezone.now()
    if not _claim_for_start(call_id, now):
        return "not_claimed"
    call = OutboundCall.objects.select_related("clinic", "campaign").get(pk=call_id)
    if call.campaign_id is not None:
        from calls.outbound import campaigns

        if call.campaign.status != call.campaign.Status.RUNNING:
            campaigns.release_unstarted(call, reason=call.campaign.status)
            return "released"
    if is_do_not_call(call.clinic_id, call.phone):
        finish_without_session(call, error=_("The number is on the do-not-call list."), now=now, do_not_call=True)
        return "do_not_call"
    account = account_for(call.clinic)
    problems = account.problems()
    if problems:
        _start_refused_permanently(call, f"Voximplant is not configured: missing {', '.join(problems)}", now=now)
        return "failed"
    custom = call.custom_data or encode_custom_data(compact_custom_data(call.token, settings.PUBLIC_BASE_URL))
    if not call.custom_data:
        OutboundCall.objects.filter(pk=call.pk).update(custom_data=custom)
    owns_client = client is None
    try:
        if client is None:
            client = account.client()
        result = client.start_scenario(int(account.rule_id), json.loads(custom))
    except VoximplantTemporaryError as exc:
        return _start_refused_temporarily(call, str(exc), now=now)
    except ProviderResponseError as exc:  # a 200 we cannot read: the scenario may have started
        return _start_unclear(call, str(exc))
    except TemporaryHttpError as exc:
        if exc.status == 429:  # rejected before anything started
            return _start_refused_temporarily(call, str(exc), now=now, retry_after=exc.retry_after)
        return _start_unclear(call, str(exc))
    except (VoximplantPermanentError, PermanentHttpError, NotConfigured, ValueError, OSError) as exc:
        _start_refused_permanently(call, str(exc), now=now)
        return "failed"
    finally:
        if owns_client and client is not None:
            client.close()
    # The scenario may already have fetched its settings or even reported: only the session id is new.
    OutboundCall.objects.filter(pk=call.pk, session_id__isnull=True).update(session_id=result.call_session_history_id)
    logger.info("outbound call %s: started, session %s", call.pk, result.call_session_history_id)
    return "started"


def _start_unclear(call: OutboundCall, error: str) -> str:
    """Maybe started, maybe not: stay ``dialing`` without a session until the history says which."""
    OutboundCall.objects.filter(pk=call.pk).update(error=redact(error)[:2000])
    logger.warning("outbound call %s: StartScenarios outcome unknown; will check the call history", call.pk)
    return "unclear"


def _start_refused_temporarily(call: OutboundCall, error: str, *, now: datetime, retry_after: float | None = None) -> str:
    if call.start_attempts >= settings.VOXIMPLANT_START_MAX_ATTEMPTS:
        _start_refused_permanently(call, f"{error} (gave up after {call.start_attempts} attempts)", now=now)
        return "failed"
    delay = max(START_RETRY_DELAY, timedelta(seconds=retry_after or 0))
    OutboundCall.objects.filter(pk=call.pk, status=Status.DIALING, session_id__isnull=True).update(
        status=Status.QUEUED, status_changed_at=now, next_attempt_at=now + delay, error=redact(error)[:2000]
    )
    return "retry"


def _start_refused_permanently(call: OutboundCall, error: str, *, now: datetime) -> None:
    if call.campaign_id is not None:
        from calls.outbound import campaigns

        # A configuration problem (credentials, rule): every other contact would fail the same way.
        campaigns.pause_on_start_error(call, error=redact(error)[:2000])
        return
    finish_without_session(call, error=error, now=now)


def finish_without_session(call: OutboundCall, *, error: str, now: datetime, do_not_call: bool = False) -> None:
    with transaction.atomic():
        updated = OutboundCall.objects.filter(pk=call.pk, status__in=OutboundCall.ACTIVE).update(
            status=Status.FAILED, status_changed_at=now, finished_at=now, error=redact(error)[:2000]
        )
        if updated and call.contact_id is not None:
            from calls.outbound import campaigns

            campaigns.contact_after_call(call, outcome=Status.FAILED, now=now, do_not_call=do_not_call)


# --- what the scenario asks while the call runs ---------------------------------------------------
def scenario_call(token: str) -> OutboundCall | None:
    """The live call a scenario request names, or None (unknown, finished or expired token)."""
    cutoff = timezone.now() - timedelta(hours=settings.VOXIMPLANT_TOKEN_TTL_HOURS)
    return (
        OutboundCall.objects.select_related("clinic")
        .filter(token=token, status__in=LIVE, created_at__gte=cutoff)
        .first()
    )


def outbound_call_settings(call: OutboundCall) -> dict:
    """The scenario fetched its settings: it is about to dial the number (``ringing``)."""
    account = account_for(call.clinic)
    now = timezone.now()
    OutboundCall.objects.filter(pk=call.pk, status=Status.DIALING).update(status=Status.RINGING, status_changed_at=now)
    return conversation.scenario_settings(call, caller_id=account.caller_id)


def outbound_call_turn(call: OutboundCall, *, text: str, transcript: list[dict]) -> dict:
    """The customer said ``text``: mark the call in progress and answer with the AI's reply."""
    now = timezone.now()
    OutboundCall.objects.filter(pk=call.pk, status__in=(Status.DIALING, Status.RINGING)).update(
        status=Status.IN_PROGRESS, status_changed_at=now, answered_at=now
    )
    reply, end, _engine = conversation.turn_reply(call, text, transcript)
    return {"reply": reply, "end": end}


def nonce_seen(nonce: str, *, tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """Record a signed request's nonce; True when it was already recorded (a replay)."""
    try:
        with transaction.atomic():
            ScenarioNonce.objects.create(nonce=nonce, expires_at=timezone.now() + timedelta(seconds=2 * tolerance))
    except IntegrityError:
        return True
    return False


# --- results ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status: str  # a terminal OutboundCall.Status
    session_id: int | None
    duration_seconds: float = 0.0
    transcript: tuple | None = None  # TranscriptSegment items, from the webhook
    record_url: str = ""
    error: str = ""
    sip_code: int | None = None
    started_at: datetime | None = None
    source: str = "webhook"  # webhook | history

    @classmethod
    def from_webhook(cls, result: OutboundResult) -> Outcome:
        return cls(
            status=result.status.value,
            session_id=result.session_id,
            duration_seconds=result.duration_seconds,
            transcript=result.transcript,
            record_url=result.record_url or "",
            error=result.error or "",
            sip_code=result.sip_code,
        )


def outbound_result_record(*, call: OutboundCall, outcome: Outcome, now: datetime | None = None) -> bool:
    """Record the final state once (True), or do nothing for a duplicate (False). Idempotent by call."""
    now = now or timezone.now()
    if outcome.status not in OutboundCall.TERMINAL:
        raise ValueError(f"{outcome.status!r} is not a final state")
    with transaction.atomic():
        values = {
            "status": outcome.status,
            "status_changed_at": now,
            "finished_at": now,
            "duration_seconds": round(outcome.duration_seconds, 2),
            "record_url": (outcome.record_url or "")[:2000],
            "error": redact(outcome.error or "")[:2000],
            "sip_code": outcome.sip_code,
            "result_source": outcome.source,
        }
        updated = OutboundCall.objects.filter(pk=call.pk, status__in=OutboundCall.ACTIVE).update(**values)
        if not updated:
            return False
        if outcome.session_id:
            OutboundCall.objects.filter(pk=call.pk, session_id__isnull=True).update(session_id=outcome.session_id)
        call.refresh_from_db()
        if call.session_id:  # nothing is ingested for a call that never reached Voximplant
            _ingest(call, outcome, now=now)
        if call.contact_id is not None:
            from calls.outbound import campaigns

            campaigns.contact_after_call(call, outcome=outcome.status, now=now)
    logger.info("outbound call %s: %s (from %s)", call.pk, outcome.status, outcome.source)
    return True


def _ingest(call: OutboundCall, outcome: Outcome, *, now: datetime) -> None:
    """The result as a normal call, into the pipeline (transcript if we have one, else the recording)."""
    from calls.services import call_ingest

    transcript = None
    if outcome.status == Status.COMPLETED and outcome.transcript:
        segments = sorted(outcome.transcript, key=lambda s: (s.start, s.end))
        transcript = []
        for segment in segments:
            speaker = str(getattr(segment.speaker, "value", segment.speaker))
            role = Transcript.Role.ADMINISTRATOR if speaker == "ai" else Transcript.Role.PATIENT  # the AI speaks for the clinic
            transcript.append({"speaker": speaker, "role": role, "start": segment.start, "end": segment.end, "text": segment.text})
    started_at = outcome.started_at or call.dial_started_at or call.created_at or now
    try:
        result = call_ingest(
            clinic=call.clinic,
            started_at=started_at,
            source=Call.Source.OUTBOUND,
            direction=Call.Direction.OUTBOUND,
            status=CALL_STATUS[outcome.status],
            external_id=f"voximplant-{call.session_id}",
            duration_seconds=round(outcome.duration_seconds),
            phone=call.phone,
            recording_url="" if transcript else (outcome.record_url or ""),
            transcript=transcript,
            crm_lead_id=call.crm_lead_id,
        )
    except ValidationError as exc:
        # A transcript we cannot store must not lose the result: keep the call, transcribe the recording.
        logger.warning("outbound call %s: transcript not stored: %s", call.pk, "; ".join(exc.messages)[:300])
        result = call_ingest(
            clinic=call.clinic,
            started_at=started_at,
            source=Call.Source.OUTBOUND,
            direction=Call.Direction.OUTBOUND,
            status=CALL_STATUS[outcome.status],
            external_id=f"voximplant-{call.session_id}",
            duration_seconds=round(outcome.duration_seconds),
            phone=call.phone,
            recording_url=outcome.record_url or "",
            crm_lead_id=call.crm_lead_id,
        )
    # The AI is nobody on the clinic's schedule: never attribute its call to the administrator on shift.
    Call.objects.filter(pk=result.call.pk).update(administrator=None, recording_url=(outcome.record_url or "")[:2000])
    OutboundCall.objects.filter(pk=call.pk).update(call=result.call)


def outbound_webhook_result(result: OutboundResult) -> str:
    """Apply a verified webhook result. Returns "recorded", "duplicate" or "unknown"."""
    call = OutboundCall.objects.select_related("clinic").filter(token=result.call_token).first()
    if call is None:
        return "unknown"
    if call.session_id and call.session_id != result.session_id:
        # A second session for the same token (a start retried after the history showed none):
        # the first result wins; the other one is logged for the operator.
        logger.warning("outbound call %s: result of another session %s ignored", call.pk, result.session_id)
        return "duplicate"
    recorded = outbound_result_record(call=call, outcome=Outcome.from_webhook(result))
    return "recorded" if recorded else "duplicate"

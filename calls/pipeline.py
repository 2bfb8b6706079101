"""The stage pipeline: a state machine over ``Call.stage`` driven by django-q2 tasks.

``ingested → audio_fetched → transcribed → analysed → synced → done``, plus ``skipped`` and
``failed``. Each arrow is a *step* with a handler registered by name (``register_step``), so
``calls`` never imports ``analysis`` or an integration: they register their handlers at start-up.

A step:
1. claims the call with one conditional UPDATE (``stage = expected`` and not claimed, or the
   claim is older than the stage timeout); exactly one worker wins;
2. runs the handler outside any long transaction (handlers are idempotent and write their own
   results in short transactions);
3. advances the stage only if it still holds the claim, records a :class:`CallEvent`, and
   enqueues the next step after commit.

Handlers signal outcomes with exceptions: :class:`SkipCall` (stored, never retried),
:class:`~medai.http.HttpError` / :class:`StageError` with ``temporary`` (retry later with
backoff, up to ``PIPELINE_MAX_ATTEMPTS``), anything else is permanent and fails the call with a
readable reason. A sweeper re-enqueues due retries and calls stuck past the stage timeout.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calls.models import Call, CallEvent, SkipReason, Stage
from medai.logging import redact

logger = logging.getLogger("medai.pipeline")


@dataclass(frozen=True)
class Step:
    name: str
    from_stage: str
    to_stage: str
    timestamp_field: str


STEPS: tuple[Step, ...] = (
    Step("fetch_audio", Stage.INGESTED, Stage.AUDIO_FETCHED, "audio_fetched_at"),
    Step("transcribe", Stage.AUDIO_FETCHED, Stage.TRANSCRIBED, "transcribed_at"),
    Step("analyse", Stage.TRANSCRIBED, Stage.ANALYSED, "analysed_at"),
    Step("write_back", Stage.ANALYSED, Stage.SYNCED, "synced_at"),
    Step("finish", Stage.SYNCED, Stage.DONE, "done_at"),
)
STEP_BY_NAME = {step.name: step for step in STEPS}
STEP_FROM_STAGE = {step.from_stage: step for step in STEPS}
WORK_STAGES = tuple(STEP_FROM_STAGE)
# Steps a call can be restarted from (the "chosen stage" of reprocessing).
REPROCESS_STEPS = ("fetch_audio", "transcribe", "analyse", "write_back")


class SkipCall(Exception):
    """The call is stored but not processed further (missed, too short, quota...)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = SkipReason(reason)


class StageError(Exception):
    """A handler's own failure. ``temporary`` errors are retried, others fail the call."""

    def __init__(self, message: str, *, temporary: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.retry_after = retry_after
        self.request_id: str | None = None


@dataclass
class StepResult:
    """What a handler may report back for the audit trail."""

    request_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Call], StepResult | None]
_handlers: dict[str, Handler] = {}
_after_hooks: list[Callable[[Call, Step], None]] = []


def register_step(name: str, handler: Handler) -> None:
    """Install the handler for a step (the last registration wins, which tests rely on)."""
    if name not in STEP_BY_NAME:
        raise ValueError(f"unknown pipeline step {name!r}")
    _handlers[name] = handler


def handler_for(name: str) -> Handler:
    return _handlers.get(name, _noop)


def on_step_completed(hook: Callable[[Call, Step], None]) -> None:
    """Run ``hook(call, step)`` after a step succeeds (used for roll-ups and notifications)."""
    _after_hooks.append(hook)


def _noop(call: Call) -> None:
    return None


# --- enqueueing -----------------------------------------------------------------------------
_inline = False


@contextmanager
def inline_mode() -> Iterable[None]:
    """Within this block ``enqueue_step`` does nothing; the caller drives steps itself."""
    global _inline
    previous, _inline = _inline, True
    try:
        yield
    finally:
        _inline = previous


def enqueue_step(call_id: int, step_name: str) -> None:
    """Queue a step for a worker once the current transaction commits."""
    if _inline:
        return

    def _send() -> None:
        from django_q.tasks import async_task

        async_task("calls.tasks.run_step", call_id, step_name, task_name=f"call-{call_id}-{step_name}", group="pipeline")

    transaction.on_commit(_send)


def enqueue_call(call: Call) -> None:
    step = STEP_FROM_STAGE.get(call.stage)
    if step is not None:
        enqueue_step(call.pk, step.name)


# --- running a step ---------------------------------------------------------------------------
def _stale_claim_cutoff():
    return timezone.now() - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS)


def claim(call_id: int, step: Step) -> uuid.UUID | None:
    """Atomically take the call for ``step``. Returns the claim token, or None if someone else has it."""
    token = uuid.uuid4()
    now = timezone.now()
    won = (
        Call.objects.filter(pk=call_id, stage=step.from_stage)
        .filter(Q(claim_token__isnull=True) | Q(claimed_at__lt=_stale_claim_cutoff()))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .update(claim_token=token, claimed_at=now, attempts=F("attempts") + 1, retry_at=None)
    )
    return token if won else None


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text)[:2000]


def _retry_delay(attempt: int, retry_after: float | None) -> float:
    backoff = settings.PIPELINE_RETRY_BASE_SECONDS * (2 ** max(0, attempt - 1))
    return max(backoff, retry_after or 0)


def run_step(call_id: int, step_name: str) -> str:
    """Run one step of one call. Returns a short outcome string (for logs and tests)."""
    step = STEP_BY_NAME[step_name]
    token = claim(call_id, step)
    if token is None:
        return "not_claimed"
    call = Call.objects.select_related("clinic").get(pk=call_id)
    handler = handler_for(step.name)
    started = time.monotonic()
    try:
        result = handler(call) or StepResult()
    except SkipCall as skip:
        return _finish_skipped(call, step, token, skip, started)
    except Exception as exc:
        temporary = bool(getattr(exc, "temporary", False))
        if not temporary:
            logger.warning("call %s: step %s failed permanently: %s", call_id, step.name, _error_text(exc))
            if not isinstance(exc, StageError) and not hasattr(exc, "status"):
                logger.exception("call %s: unexpected error in step %s", call_id, step.name)
        return _finish_error(call, step, token, exc, started, temporary=temporary)
    return _finish_success(call, step, token, result, started)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _release_filter(call: Call, token: uuid.UUID):
    return Call.objects.filter(pk=call.pk, claim_token=token)


def _lost_claim(call: Call, step: Step, started: float) -> str:
    CallEvent.objects.create(
        call=call,
        stage=step.name,
        status=CallEvent.Status.LOST_CLAIM,
        attempt=call.attempts,
        duration_ms=_elapsed_ms(started),
        error="Another worker took over this call (claim expired); the result was discarded.",
    )
    return "lost_claim"


def _finish_success(call: Call, step: Step, token: uuid.UUID, result: StepResult, started: float) -> str:
    now = timezone.now()
    with transaction.atomic():
        updated = _release_filter(call, token).update(
            stage=step.to_stage,
            stage_changed_at=now,
            claim_token=None,
            claimed_at=None,
            attempts=0,
            last_error="",
            failed_stage="",
            **{step.timestamp_field: now},
        )
        if not updated:
            return _lost_claim(call, step, started)
        CallEvent.objects.create(
            call=call,
            stage=step.name,
            status=CallEvent.Status.SUCCEEDED,
            attempt=call.attempts,
            duration_ms=_elapsed_ms(started),
            provider_request_id=(result.request_id or "")[:128],
            detail=result.detail,
        )
        call.stage = step.to_stage
        for hook in _after_hooks:
            hook(call, step)
        enqueue_call(call)
    return "succeeded"


def _finish_skipped(call: Call, step: Step, token: uuid.UUID, skip: SkipCall, started: float) -> str:
    with transaction.atomic():
        updated = _release_filter(call, token).update(
            stage=Stage.SKIPPED,
            skip_reason=skip.reason,
            stage_changed_at=timezone.now(),
            claim_token=None,
            claimed_at=None,
            last_error="" if str(skip) == skip.reason else _error_text(skip),
        )
        if not updated:
            return _lost_claim(call, step, started)
        CallEvent.objects.create(
            call=call,
            stage=step.name,
            status=CallEvent.Status.SKIPPED,
            attempt=call.attempts,
            duration_ms=_elapsed_ms(started),
            detail={"reason": skip.reason},
            error="" if str(skip) == skip.reason else _error_text(skip),
        )
    return "skipped"


def _finish_error(
    call: Call, step: Step, token: uuid.UUID, exc: Exception, started: float, *, temporary: bool
) -> str:
    attempt = call.attempts
    error = _error_text(exc)
    request_id = (getattr(exc, "request_id", None) or "")[:128]
    will_retry = temporary and attempt < settings.PIPELINE_MAX_ATTEMPTS
    with transaction.atomic():
        if will_retry:
            delay = _retry_delay(attempt, getattr(exc, "retry_after", None))
            updated = _release_filter(call, token).update(
                claim_token=None,
                claimed_at=None,
                last_error=error,
                retry_at=timezone.now() + timedelta(seconds=delay),
            )
            status = CallEvent.Status.RETRY
        else:
            if temporary:
                error = f"{error} (gave up after {attempt} attempts)"
            updated = _release_filter(call, token).update(
                stage=Stage.FAILED,
                failed_stage=step.from_stage,
                stage_changed_at=timezone.now(),
                claim_token=None,
                claimed_at=None,
                last_error=error,
                retry_at=None,
            )
            status = CallEvent.Status.FAILED
        if not updated:
            return _lost_claim(call, step, started)
        CallEvent.objects.create(
            call=call,
            stage=step.name,
            status=status,
            attempt=attempt,
            duration_ms=_elapsed_ms(started),
            error=error,
            provider_request_id=request_id,
        )
        if status == CallEvent.Status.FAILED:
            _emit_failure(call, step, error)
    return "retry" if will_retry else "failed"


def _emit_failure(call: Call, step: Step, error: str) -> None:
    from clinics.models import OutboxEvent

    OutboxEvent.objects.create(
        clinic_id=call.clinic_id,
        kind=OutboxEvent.Kind.PIPELINE_FAILED,
        payload={"call_id": call.pk, "step": step.name, "error": error[:500]},
    )


def drive(call_id: int, *, max_steps: int = len(STEPS) + 1) -> str:
    """Run a call's remaining steps in this process (demo, tests, ``manage.py process --inline``)."""
    outcome = "noop"
    with inline_mode():
        for _ in range(max_steps):
            stage = Call.objects.filter(pk=call_id).values_list("stage", flat=True).first()
            step = STEP_FROM_STAGE.get(stage)
            if step is None:
                break
            outcome = run_step(call_id, step.name)
            if outcome != "succeeded":
                break
    return outcome


# --- sweeping and reprocessing -----------------------------------------------------------------
def sweep(*, now=None) -> dict[str, int]:
    """Re-enqueue due retries and calls stuck in a work stage longer than the stage timeout."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS)
    due = Call.objects.filter(stage__in=WORK_STAGES, retry_at__lte=now, claim_token__isnull=True)
    stale_claims = Call.objects.filter(stage__in=WORK_STAGES, claimed_at__lt=cutoff)
    # Enqueued but never picked up (a lost task): unclaimed, no retry pending, untouched for a while.
    orphaned = Call.objects.filter(
        stage__in=WORK_STAGES, claim_token__isnull=True, retry_at__isnull=True, updated_at__lt=cutoff
    )
    counts = {"retries": 0, "stale": 0, "orphaned": 0}
    for label, queryset in (("retries", due), ("stale", stale_claims), ("orphaned", orphaned)):
        for call_id, stage in queryset.values_list("pk", "stage")[:1000]:
            if label == "orphaned":
                # Touch it so the next sweep does not enqueue it again before a worker gets to it.
                Call.objects.filter(pk=call_id, claim_token__isnull=True).update(updated_at=now)
            enqueue_step(call_id, STEP_FROM_STAGE[stage].name)
            counts[label] += 1
    if any(counts.values()):
        logger.info("sweeper re-enqueued %s", counts)
    return counts


def reprocess_queryset(queryset, *, from_step: str, user_label: str = "") -> int:
    """Restart every call in ``queryset`` from ``from_step``. Returns the number restarted."""
    if from_step not in REPROCESS_STEPS:
        raise ValueError(f"cannot reprocess from {from_step!r}; choose one of {', '.join(REPROCESS_STEPS)}")
    step = STEP_BY_NAME[from_step]
    now = timezone.now()
    count = 0
    for call_id in list(queryset.values_list("pk", flat=True)):
        with transaction.atomic():
            # A call a worker is processing right now is left alone (its claim is fresh).
            updated = (
                Call.objects.filter(pk=call_id)
                .filter(Q(claim_token__isnull=True) | Q(claimed_at__lt=_stale_claim_cutoff()))
                .update(
                    stage=step.from_stage,
                    stage_changed_at=now,
                    skip_reason="",
                    failed_stage="",
                    last_error="",
                    attempts=0,
                    retry_at=None,
                    claim_token=None,
                    claimed_at=None,
                )
            )
            if not updated:
                continue
            CallEvent.objects.create(
                call_id=call_id,
                stage=from_step,
                status=CallEvent.Status.REPROCESS,
                detail={"by": user_label} if user_label else {},
            )
            enqueue_step(call_id, step.name)
            count += 1
    return count

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls import pipeline
from calls.models import Call, CallEvent, SkipReason, Stage
from calls.pipeline import SkipCall, StageError, StepResult
from clinics.models import OutboxEvent
from medai.http import PermanentHttpError, TemporaryHttpError
from tests.factories import CallFactory


@pytest.fixture
def handlers():
    """Swap in test handlers for the duration of a test and restore the real ones after."""
    saved = dict(pipeline._handlers)
    yield pipeline.register_step
    pipeline._handlers.clear()
    pipeline._handlers.update(saved)


@pytest.mark.django_db
def test_claim_is_exclusive():
    call = CallFactory()
    step = pipeline.STEP_BY_NAME["fetch_audio"]
    first = pipeline.claim(call.pk, step)
    second = pipeline.claim(call.pk, step)
    assert first is not None
    assert second is None
    call.refresh_from_db()
    assert call.claim_token == first
    assert call.attempts == 1


@pytest.mark.django_db
def test_claim_requires_expected_stage():
    call = CallFactory(stage=Stage.TRANSCRIBED)
    assert pipeline.claim(call.pk, pipeline.STEP_BY_NAME["fetch_audio"]) is None


@pytest.mark.django_db
def test_stale_claim_can_be_taken_over(settings):
    call = CallFactory()
    step = pipeline.STEP_BY_NAME["fetch_audio"]
    old = pipeline.claim(call.pk, step)
    Call.objects.filter(pk=call.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS + 1)
    )
    new = pipeline.claim(call.pk, step)
    assert new is not None and new != old


@pytest.mark.django_db
def test_success_advances_stage_and_records_event(handlers):
    handlers("fetch_audio", lambda call: StepResult(request_id="req-1", detail={"ok": 1}))
    call = CallFactory()
    assert pipeline.run_step(call.pk, "fetch_audio") == "succeeded"
    call.refresh_from_db()
    assert call.stage == Stage.AUDIO_FETCHED
    assert call.audio_fetched_at is not None
    assert call.claim_token is None and call.attempts == 0
    event = CallEvent.objects.get(call=call)
    assert (event.stage, event.status, event.provider_request_id) == ("fetch_audio", "succeeded", "req-1")


@pytest.mark.django_db
def test_temporary_error_schedules_a_retry_with_backoff(handlers, settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 10

    def flaky(call):
        raise TemporaryHttpError("provider: HTTP 503", status=503, request_id="r-503")

    handlers("fetch_audio", flaky)
    call = CallFactory()
    before = timezone.now()
    assert pipeline.run_step(call.pk, "fetch_audio") == "retry"
    call.refresh_from_db()
    assert call.stage == Stage.INGESTED
    assert call.claim_token is None
    assert call.retry_at >= before + timedelta(seconds=10)
    assert "503" in call.last_error
    # Not claimable before retry_at.
    assert pipeline.run_step(call.pk, "fetch_audio") == "not_claimed"
    event = CallEvent.objects.get(call=call)
    assert event.status == "retry" and event.provider_request_id == "r-503"


@pytest.mark.django_db
def test_retry_after_longer_than_backoff_is_honoured(handlers, settings):
    settings.PIPELINE_RETRY_BASE_SECONDS = 1
    handlers("fetch_audio", lambda call: (_ for _ in ()).throw(TemporaryHttpError("429", status=429, retry_after=120)))
    call = CallFactory()
    pipeline.run_step(call.pk, "fetch_audio")
    call.refresh_from_db()
    assert call.retry_at >= timezone.now() + timedelta(seconds=110)


@pytest.mark.django_db
def test_temporary_errors_are_bounded(handlers, settings):
    settings.PIPELINE_MAX_ATTEMPTS = 3
    handlers("fetch_audio", lambda call: (_ for _ in ()).throw(StageError("network down", temporary=True)))
    call = CallFactory()
    outcomes = []
    for _ in range(3):
        Call.objects.filter(pk=call.pk).update(retry_at=None)
        outcomes.append(pipeline.run_step(call.pk, "fetch_audio"))
    assert outcomes == ["retry", "retry", "failed"]
    call.refresh_from_db()
    assert call.stage == Stage.FAILED
    assert call.failed_stage == Stage.INGESTED
    assert "gave up after 3 attempts" in call.last_error


@pytest.mark.django_db
def test_permanent_error_fails_at_once_with_reason_and_alert(handlers):
    calls = []

    def bad(call):
        calls.append(call.pk)
        raise PermanentHttpError("elevenlabs: HTTP 401: invalid api key", status=401)

    handlers("fetch_audio", bad)
    call = CallFactory()
    assert pipeline.run_step(call.pk, "fetch_audio") == "failed"
    call.refresh_from_db()
    assert call.stage == Stage.FAILED
    assert "401" in call.last_error
    assert len(calls) == 1
    alert = OutboxEvent.objects.get(clinic=call.clinic)
    assert alert.kind == OutboxEvent.Kind.PIPELINE_FAILED
    assert alert.payload["call_id"] == call.pk


@pytest.mark.django_db
def test_unexpected_exception_fails_the_call_readably(handlers):
    handlers("fetch_audio", lambda call: 1 / 0)
    call = CallFactory()
    assert pipeline.run_step(call.pk, "fetch_audio") == "failed"
    call.refresh_from_db()
    assert "division by zero" in call.last_error


@pytest.mark.django_db
def test_skip_records_reason(handlers):
    def skip(call):
        raise SkipCall(SkipReason.MISSED)

    handlers("fetch_audio", skip)
    call = CallFactory()
    assert pipeline.run_step(call.pk, "fetch_audio") == "skipped"
    call.refresh_from_db()
    assert (call.stage, call.skip_reason) == (Stage.SKIPPED, SkipReason.MISSED)


@pytest.mark.django_db
def test_result_is_discarded_when_claim_was_lost(handlers):
    def slow(call):
        # While this worker is "busy", the sweeper hands the call to someone else.
        Call.objects.filter(pk=call.pk).update(claim_token=None, claimed_at=None)
        pipeline.claim(call.pk, pipeline.STEP_BY_NAME["fetch_audio"])
        return None

    handlers("fetch_audio", slow)
    call = CallFactory()
    assert pipeline.run_step(call.pk, "fetch_audio") == "lost_claim"
    call.refresh_from_db()
    assert call.stage == Stage.INGESTED
    assert CallEvent.objects.filter(call=call, status="lost_claim").exists()


@pytest.mark.django_db
def test_sweeper_requeues_due_retries_and_stale_claims(settings, monkeypatch):
    queued = []
    monkeypatch.setattr(pipeline, "enqueue_step", lambda call_id, step: queued.append((call_id, step)))
    now = timezone.now()
    due = CallFactory(retry_at=now - timedelta(seconds=1))
    not_due = CallFactory(retry_at=now + timedelta(minutes=5))
    stale = CallFactory(
        stage=Stage.TRANSCRIBED,
        claim_token="00000000-0000-0000-0000-000000000001",
        claimed_at=now - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS + 5),
    )
    fresh = CallFactory(stage=Stage.TRANSCRIBED, claim_token="00000000-0000-0000-0000-000000000002", claimed_at=now)
    done = CallFactory(stage=Stage.DONE)
    counts = pipeline.sweep()
    assert (due.pk, "fetch_audio") in queued
    assert (stale.pk, "analyse") in queued
    queued_ids = {call_id for call_id, _ in queued}
    assert not queued_ids & {not_due.pk, fresh.pk, done.pk}
    assert counts["retries"] == 1 and counts["stale"] == 1


@pytest.mark.django_db
def test_sweeper_requeues_orphaned_calls_once(settings, monkeypatch):
    queued = []
    monkeypatch.setattr(pipeline, "enqueue_step", lambda call_id, step: queued.append(call_id))
    call = CallFactory()
    old = timezone.now() - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS + 60)
    Call.objects.filter(pk=call.pk).update(updated_at=old)
    pipeline.sweep()
    pipeline.sweep()
    assert queued == [call.pk]


@pytest.mark.django_db
def test_reprocess_restarts_from_chosen_step_and_leaves_busy_calls(settings):
    done = CallFactory(stage=Stage.DONE)
    failed = CallFactory(stage=Stage.FAILED, failed_stage=Stage.TRANSCRIBED, last_error="boom")
    busy = CallFactory(stage=Stage.TRANSCRIBED, claim_token="00000000-0000-0000-0000-000000000003", claimed_at=timezone.now())
    count = pipeline.reprocess_queryset(Call.objects.filter(pk__in=[done.pk, failed.pk, busy.pk]), from_step="analyse")
    assert count == 2
    for call in (done, failed):
        call.refresh_from_db()
        assert call.stage == Stage.TRANSCRIBED
        assert call.last_error == "" and call.failed_stage == ""
    busy.refresh_from_db()
    assert busy.claim_token is not None
    assert CallEvent.objects.filter(status="reprocess").count() == 2
    with pytest.raises(ValueError):
        pipeline.reprocess_queryset(Call.objects.all(), from_step="finish")


@pytest.mark.django_db
def test_drive_runs_all_steps(handlers):
    for name in ("fetch_audio", "transcribe", "analyse", "write_back", "finish"):
        handlers(name, lambda call: None)
    call = CallFactory()
    assert pipeline.drive(call.pk) == "succeeded"
    call.refresh_from_db()
    assert call.stage == Stage.DONE
    assert list(CallEvent.objects.filter(call=call).values_list("stage", flat=True)) == [
        "fetch_audio",
        "transcribe",
        "analyse",
        "write_back",
        "finish",
    ]


@pytest.mark.django_db
def test_success_enqueues_next_step_after_commit(handlers, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: sent.append(args))
    handlers("fetch_audio", lambda call: None)
    call = CallFactory()
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.run_step(call.pk, "fetch_audio")
    assert sent == [("calls.tasks.run_step", call.pk, "transcribe")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_process_the_same_call(handlers):
    """Real threads, real PostgreSQL connections: exactly one of 8 racing workers runs the handler."""
    ran = []
    barrier = threading.Barrier(8)

    def handler(call):
        ran.append(threading.get_ident())
        return None

    handlers("fetch_audio", handler)
    call = CallFactory()
    outcomes = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(pipeline.run_step(call.pk, "fetch_audio"))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1
    assert sorted(outcomes) == ["not_claimed"] * 7 + ["succeeded"]

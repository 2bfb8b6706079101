"""StartScenarios is never retried blindly; results that never arrived are read from the call history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, OutboundCall, ScenarioNonce, Transcript
from calls.outbound import reconcile, services
from tests.fakes.base import Response
from tests.fakes.voximplant import API_PREFIX, FakeVoximplant, Scripted
from tests.outbound.conftest import RULE, SECRET, deliver
from tests.outbound.test_calls import CALL

START = f"{API_PREFIX}/StartScenarios"
HISTORY = f"{API_PREFIX}/GetCallHistory"


class LossyVoximplant(FakeVoximplant):
    """Starts the session, then loses the answer (a 502 from a proxy): the worst case for a retry."""

    lose_next = 0

    def start_scenarios(self, request):
        response = super().start_scenarios(request)
        if self.lose_next:
            self.lose_next -= 1
            return Response(502, {"detail": "bad gateway"})
        return response


@pytest.fixture
def lossy(vox_settings):
    with LossyVoximplant(rules=(RULE,)) as fake:
        fake.webhook_secret = SECRET.encode()
        vox_settings.VOXIMPLANT_BASE_URL = fake.api_url
        yield fake


def queue_call(clinic) -> OutboundCall:
    return services.outbound_call_create(clinic=clinic, **CALL, enqueue=False)


def later(minutes: float):
    return timezone.now() + timedelta(minutes=minutes)


@pytest.mark.django_db
def test_a_lost_answer_is_settled_from_the_history_without_dialling_again(clinic, lossy):
    call = queue_call(clinic)
    lossy.lose_next = 1
    assert services.outbound_call_start(call.pk) == "unclear"
    call.refresh_from_db()
    assert call.status == "dialing" and call.session_id is None and "502" in call.error
    # Too early to look: a StartScenarios request may still be running somewhere.
    assert reconcile.outbound_reconcile(now=later(1))["found"] == 0
    counts = reconcile.outbound_reconcile(now=later(3))
    assert counts["found"] == 1 and counts["restarted"] == 0
    call.refresh_from_db()
    [session] = lossy.sessions
    assert call.session_id == session.session_id and call.status == "dialing"
    assert len(lossy.requests_to("POST", START)) == 1  # never a second dial
    [lookup] = lossy.requests_to("POST", HISTORY)
    assert b"call_session_history_custom_data" in lookup.body


@pytest.mark.django_db
def test_an_unclear_start_with_no_session_is_sent_again_once(clinic, vox, vox_settings):
    call = queue_call(clinic)
    vox.fail_next("POST", START, status=502)
    assert services.outbound_call_start(call.pk) == "unclear"
    assert vox.sessions == []
    counts = reconcile.outbound_reconcile(now=later(3))
    assert counts["restarted"] == 1
    call.refresh_from_db()
    assert call.status == "dialing" and call.start_attempts == 2 and call.session_id == vox.sessions[0].session_id
    assert len(vox.requests_to("POST", START)) == 2
    assert len(vox.requests_to("POST", HISTORY)) == 1  # the history was checked before the second dial


@pytest.mark.django_db
def test_unclear_starts_give_up_after_the_attempt_limit(clinic, vox, vox_settings):
    vox_settings.VOXIMPLANT_START_MAX_ATTEMPTS = 2
    call = queue_call(clinic)
    vox.fail_next("POST", START, status=503, times=2)
    assert services.outbound_call_start(call.pk) == "unclear"
    reconcile.outbound_reconcile(now=later(3))  # nothing in the history → second attempt, unclear again
    OutboundCall.objects.filter(pk=call.pk).update(dial_started_at=timezone.now() - timedelta(minutes=5))
    reconcile.outbound_reconcile(now=later(3))
    call.refresh_from_db()
    assert call.status == "failed" and "2 StartScenarios attempts" in call.error
    assert len(vox.requests_to("POST", START)) == 2 and call.call is None


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["error_object", "http_429"])
def test_a_refused_start_is_retried_later_without_a_history_lookup(clinic, vox, vox_settings, failure):
    call = queue_call(clinic)
    if failure == "error_object":
        vox.fail_api_next(8, "Media server is unavailable", method="StartScenarios")
    else:
        vox.fail_next("POST", START, status=429, headers={"Retry-After": "1"})
    assert services.outbound_call_start(call.pk) == "retry"
    call.refresh_from_db()
    assert call.status == "queued" and call.next_attempt_at > timezone.now()
    assert services.outbound_call_start(call.pk) == "not_claimed"  # not before next_attempt_at
    assert reconcile.outbound_reconcile(now=later(2))["started"] == 1
    call.refresh_from_db()
    assert call.status == "dialing" and call.session_id
    assert vox.requests_to("POST", HISTORY) == []


@pytest.mark.django_db
def test_a_permanent_refusal_fails_the_call(clinic, vox, vox_settings):
    call = queue_call(clinic)
    vox.fail_api_next(100, "Authorization failed", method="StartScenarios")
    assert services.outbound_call_start(call.pk) == "failed"
    call.refresh_from_db()
    assert call.status == "failed" and "Authorization failed" in call.error and call.call is None
    assert reconcile.outbound_reconcile(now=later(30))["started"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("scripted", "expected"), [("completed", "completed"), ("busy", "busy"), ("no_answer", "no_answer")])
def test_a_missed_webhook_is_reconciled_from_the_call_history(client, clinic, vox, vox_settings, scripted, expected):
    vox.outcomes.append(Scripted(scripted, duration=61))
    call = queue_call(clinic)
    assert services.outbound_call_start(call.pk) == "started"
    assert reconcile.outbound_reconcile(now=later(10))["finished"] == 0  # not stuck yet
    counts = reconcile.outbound_reconcile(now=later(16))
    assert counts["finished"] == 1
    call.refresh_from_db()
    assert call.status == expected and call.result_source == "history"
    ingested = call.call
    assert ingested.external_id == f"voximplant-{call.session_id}"
    if scripted == "completed":
        # No transcript came: the recording goes to transcription like any call's.
        assert call.duration_seconds == 61 and ingested.recording_url == vox.sessions[0].record_url
        assert ingested.status == Call.Status.ANSWERED and not Transcript.objects.filter(call=ingested).exists()
    else:
        assert call.sip_code in (480, 486)
    # The webhook arriving after all changes nothing.
    assert deliver(client, vox, vox.sessions[0]).json()["result"] == "duplicate"


@pytest.mark.django_db
def test_a_session_missing_from_the_history_fails_only_after_a_long_wait(clinic, vox, vox_settings):
    call = queue_call(clinic)
    services.outbound_call_start(call.pk)
    vox.sessions.clear()  # the history lost it
    reconcile.outbound_reconcile(now=later(20))
    call.refresh_from_db()
    assert call.status == "dialing"
    reconcile.outbound_reconcile(now=later(50))
    call.refresh_from_db()
    assert call.status == "failed" and "not in the call history" in call.error


@pytest.mark.django_db
def test_expired_nonces_are_forgotten(vox_settings):
    assert services.nonce_seen("a" * 32) is False
    assert services.nonce_seen("a" * 32) is True
    assert reconcile.outbound_reconcile(now=later(11))["nonces"] == 1
    assert not ScenarioNonce.objects.exists()

"""Single AI calls: API → StartScenarios (fake Voximplant) → scenario settings/turns → signed result →
a normal call in the pipeline with the outbound scorecard."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from analysis.models import ClinicAnalysisSettings
from calls import pipeline
from calls.models import Call, DoNotCall, OutboundCall, SkipReason, Stage, Transcript, VoximplantConnection
from calls.outbound import services, tasks
from medai.integrations.voximplant_webhook import result_to_json
from tests.factories import AdministratorFactory, WorkScheduleFactory
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.voximplant import API_PREFIX, Scripted
from tests.outbound.conftest import CALLER_ID, PHONE, deliver, post_result, scenario_get, scenario_turn, sign

START = f"{API_PREFIX}/StartScenarios"
CALL = {
    "phone": PHONE,
    "language": "ru",
    "voice": "female",
    "greeting": "Здравствуйте! Это клиника «Улыбка», напоминаем о приёме завтра в 10:00.",
    "prompt": "Подтверди визит пациента на завтра в 10:00. Если неудобно — предложи перезвонить.",
    "purpose": "Подтвердить визит на завтра",
}


def start_call(clinic, **overrides) -> OutboundCall:
    call = services.outbound_call_create(clinic=clinic, **{**CALL, **overrides}, enqueue=False)
    assert services.outbound_call_start(call.pk) == "started"
    call.refresh_from_db()
    return call


# --- the happy path --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_start_call_happy_path(key_client, client, clinic, vox, vox_settings, enqueued, django_capture_on_commit_callbacks):
    # The administrator on shift must not be credited with the AI's call.
    WorkScheduleFactory(administrator=AdministratorFactory(clinic=clinic), date=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        response = key_client.post("/api/outbound/calls/", {**CALL, "crm_lead_id": 777}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    call = OutboundCall.objects.get(pk=body["id"])
    assert body["status"] == "queued" and call.phone == PHONE and call.crm_lead_id == 777
    assert enqueued == [("calls.outbound.tasks.start_call", call.pk)]

    assert tasks.start_call(call.pk) == "started"
    [session] = vox.sessions
    [request] = vox.requests_to("POST", START)
    sent = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
    assert sent["rule_id"] == "3003"
    assert json.loads(sent["script_custom_data"]) == {"t": call.token, "u": "http://testserver"}
    assert len(sent["script_custom_data"].encode()) <= 200
    call.refresh_from_db()
    assert (call.status, call.session_id, call.start_attempts) == ("dialing", session.session_id, 1)
    assert tasks.start_call(call.pk) == "not_claimed"  # a duplicate task never dials twice
    assert len(vox.sessions) == 1

    # The scenario asks for its settings (signed GET), then talks.
    got = scenario_get(client, call.token)
    assert got.status_code == 200
    data = got.json()
    assert data["phone"] == PHONE and data["caller_id"] == CALLER_ID
    assert data["voice"] == "Google.ru_RU_Wavenet_A" and data["asr_profile"] == "Google.ru_RU"
    assert data["greeting"] == CALL["greeting"] and data["amd_model"] == "ru"
    call.refresh_from_db()
    assert call.status == "ringing"

    turn = scenario_turn(client, call.token, "Да, слушаю", [{"speaker": "ai", "start": 0, "end": 3, "text": CALL["greeting"]}])
    assert turn.status_code == 200
    assert isinstance(turn.json()["reply"], str) and turn.json()["end"] is True  # no LLM, no script: goodbye
    call.refresh_from_db()
    assert call.status == "in_progress" and call.answered_at is not None

    result = deliver(client, vox, session)
    assert result.status_code == 200 and result.json()["result"] == "recorded"
    call.refresh_from_db()
    assert call.status == "completed" and call.duration_seconds == 42 and call.result_source == "webhook"
    assert call.record_url == session.record_url

    ingested = call.call
    assert (ingested.source, ingested.direction, ingested.status) == ("outbound", "outbound", "answered")
    assert ingested.external_id == f"voximplant-{session.session_id}" and ingested.crm_lead_id == 777
    assert ingested.administrator is None and ingested.phone == PHONE
    assert [u["role"] for u in ingested.transcript.utterances] == ["administrator", "patient", "administrator"]

    # The normal pipeline: the transcript came with the result, so nothing is transcribed.
    assert pipeline.drive(ingested.pk) == "succeeded"
    ingested.refresh_from_db()
    analysis = ingested.analysis
    assert ingested.stage == Stage.DONE and analysis.call_type == "outbound"
    assert [c["key"] for c in analysis.criteria] == ["purpose_stated", "objections", "goal_reached"]
    purpose = next(c for c in analysis.criteria if c["key"] == "purpose_stated")
    assert purpose["score"] == 10  # "напоминаем о приёме" in the greeting
    for field in ("summary", "disposition", "follow_up", "crm_status"):
        assert getattr(analysis, field), field
    assert analysis.interest in {"high", "medium", "low", "none"}

    detail = key_client.get(f"/api/outbound/calls/{call.pk}/").json()
    assert detail["status"] == "completed" and detail["call"] == ingested.pk
    assert detail["analysis"]["call_type"] == "outbound"
    assert set(detail["analysis"]) >= {"summary", "disposition", "follow_up", "interest", "crm_status"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scripted", "call_status", "skip_reason"),
    [
        ("completed", Call.Status.ANSWERED, None),
        ("no_answer", Call.Status.MISSED, SkipReason.MISSED),
        ("busy", Call.Status.BUSY, SkipReason.BUSY),
        ("voicemail", Call.Status.MISSED, SkipReason.MISSED),
        ("failed", Call.Status.UNKNOWN, SkipReason.NO_RECORDING),
    ],
)
def test_every_terminal_state(client, clinic, vox, vox_settings, scripted, call_status, skip_reason):
    vox.outcomes.append(Scripted(scripted, duration=30))
    call = start_call(clinic)
    assert deliver(client, vox, vox.sessions[0]).status_code == 200
    call.refresh_from_db()
    assert call.status == scripted and call.finished_at is not None
    assert call.call.status == call_status and call.call.source == "outbound"
    if scripted == "failed":
        assert call.error == "invalid_number" and call.sip_code == 404
    if scripted != "completed":  # only a conversation is worth a transcript
        assert not Transcript.objects.filter(call=call.call).exists()
    pipeline.drive(call.call.pk)
    call.call.refresh_from_db()
    if skip_reason is None:
        assert call.call.stage == Stage.DONE
    else:
        assert (call.call.stage, call.call.skip_reason) == (Stage.SKIPPED, skip_reason)


# --- the result webhook ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_result_is_idempotent_by_call_token(client, clinic, vox, vox_settings):
    call = start_call(clinic)
    session = vox.sessions[0]
    first = deliver(client, vox, session)
    again = deliver(client, vox, session)  # the scenario's retry: a fresh nonce, the same result
    assert first.json()["result"] == "recorded" and again.status_code == 200 and again.json()["result"] == "duplicate"
    assert Call.objects.filter(source="outbound").count() == 1
    call.refresh_from_db()
    assert call.status == "completed"


@pytest.mark.django_db
def test_webhook_rejects_bad_signatures_and_replays(client, clinic, vox, vox_settings):
    start_call(clinic)
    body = result_to_json(vox.result_for(vox.sessions[0]))
    url = "/api/outbound/webhook/"
    assert client.post(url, data=body, content_type="application/json").status_code == 401
    wrong = client.post(url, data=body, content_type="application/json", headers=sign(body, secret="x" * 32))
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "bad signature"
    stale = client.post(url, data=body, content_type="application/json", headers=sign(body, timestamp=int(timezone.now().timestamp()) - 900))
    assert stale.json()["error"]["message"] == "stale timestamp"
    tampered = client.post(url, data=body.replace(b'"completed"', b'"busy"'), content_type="application/json", headers=sign(body))
    assert tampered.status_code == 401
    headers = sign(body)
    assert client.post(url, data=body, content_type="application/json", headers=headers).status_code == 200
    replay = client.post(url, data=body, content_type="application/json", headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["message"] == "replayed nonce"


@pytest.mark.django_db
def test_webhook_acknowledges_unknown_tokens_and_refuses_bad_payloads(client, vox_settings):
    unknown = json.dumps(
        {"call_token": "oc_unknown-token", "session_id": 1, "status": "busy", "duration_seconds": 0,
         "transcript": None, "record_url": None, "error": None}
    ).encode()
    response = post_result(client, unknown)
    assert response.status_code == 200 and response.json()["result"] == "unknown"
    bad = post_result(client, json.dumps({"call_token": "oc_unknown-token", "status": "nonsense"}).encode())
    assert bad.status_code == 400 and "missing field" in bad.json()["error"]["message"]


@pytest.mark.django_db
def test_endpoints_do_not_exist_without_a_secret(client, clinic, vox, vox_settings):
    call = start_call(clinic)
    vox_settings.VOXIMPLANT_WEBHOOK_SECRETS = []
    assert scenario_get(client, call.token).status_code == 404
    assert deliver(client, vox, vox.sessions[0]).status_code == 404


@pytest.mark.django_db
def test_a_clinic_may_have_its_own_webhook_secret(client, clinic, vox, vox_settings):
    own = "c" * 32
    VoximplantConnection.objects.create(clinic=clinic, webhook_secret=own)
    call = start_call(clinic)
    assert scenario_get(client, call.token, secret=own).status_code == 200
    assert deliver(client, vox, vox.sessions[0]).status_code == 200  # the deployment's secret still works


# --- the scenario's settings and turns ---------------------------------------------------------
@pytest.mark.django_db
def test_settings_refuse_moved_signatures_and_unknown_finished_or_expired_tokens(client, clinic, vox, vox_settings):
    call = start_call(clinic)
    other_path = "/api/outbound/scenario/oc_other/"
    moved = client.get(f"/api/outbound/scenario/{call.token}/", headers=sign(other_path.encode()))
    assert moved.status_code == 401
    assert scenario_get(client, "oc_never-issued").status_code == 404
    OutboundCall.objects.filter(pk=call.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert scenario_get(client, call.token).status_code == 404
    OutboundCall.objects.filter(pk=call.pk).update(created_at=timezone.now())
    deliver(client, vox, vox.sessions[0])
    assert scenario_get(client, call.token).status_code == 404
    assert scenario_turn(client, call.token, "Алло").status_code == 404


@pytest.mark.django_db
def test_scripted_replies_follow_the_customer_turns(client, clinic, vox, vox_settings):
    call = start_call(clinic, prompt="", script="Визит завтра в 10:00, вам удобно?\nОтлично, ждём вас!")
    said = [{"speaker": "customer", "start": 1, "end": 2, "text": "Да"}]
    first = scenario_turn(client, call.token, "Да", said).json()
    assert first == {"reply": "Визит завтра в 10:00, вам удобно?", "end": False}
    said.append({"speaker": "customer", "start": 5, "end": 6, "text": "Удобно"})
    assert scenario_turn(client, call.token, "Удобно", said).json() == {"reply": "Отлично, ждём вас!", "end": True}
    said.append({"speaker": "customer", "start": 8, "end": 9, "text": "Спасибо"})
    assert scenario_turn(client, call.token, "Спасибо", said).json() == {"reply": "Спасибо, до свидания!", "end": True}


@pytest.mark.django_db
def test_turns_use_the_clinics_llm_and_fall_back_to_the_script(client, clinic, vox, vox_settings):
    with FakeOpenAIChat() as llm:
        ClinicAnalysisSettings.objects.create(
            clinic=clinic, engine="llm", llm_api_key=llm.api_key, llm_base_url=llm.base_url, llm_model="m"
        )
        call = start_call(clinic, script="Тогда перезвоним позже.")
        llm.queue(content={"reply": "Понимаю. Вам удобнее в четверг?", "end": False})
        answer = scenario_turn(client, call.token, "Завтра не могу").json()
        assert answer == {"reply": "Понимаю. Вам удобнее в четверг?", "end": False}
        request = llm.last_json
        assert CALL["prompt"] in request["messages"][0]["content"] and "Завтра не могу" in request["messages"][1]["content"]
        llm.queue_error(500, "boom")
        fallback = scenario_turn(client, call.token, "Алло?").json()
        assert fallback == {"reply": "Тогда перезвоним позже.", "end": True}


# --- validation -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_validates_phone_content_do_not_call_and_configuration(key_client, clinic, vox_settings):
    not_e164 = key_client.post("/api/outbound/calls/", {**CALL, "phone": "89990001122"}, format="json")
    assert not_e164.status_code == 400 and "E.164" in not_e164.json()["error"]["fields"]["phone"][0]
    invalid = key_client.post("/api/outbound/calls/", {**CALL, "phone": "+7999"}, format="json")
    assert invalid.status_code == 400
    nothing_to_say = key_client.post("/api/outbound/calls/", {**CALL, "prompt": ""}, format="json")
    assert nothing_to_say.status_code == 400 and "prompt" in nothing_to_say.json()["error"]["fields"]
    bad_voice = key_client.post("/api/outbound/calls/", {**CALL, "voice": "robot voice"}, format="json")
    assert bad_voice.status_code == 400 and "voice" in bad_voice.json()["error"]["fields"]
    DoNotCall.objects.create(clinic=clinic, phone=PHONE)
    blocked = key_client.post("/api/outbound/calls/", CALL, format="json")
    assert blocked.status_code == 400 and "do-not-call" in blocked.json()["error"]["message"]
    DoNotCall.objects.all().delete()
    vox_settings.VOXIMPLANT_CALLER_ID = ""
    unconfigured = key_client.post("/api/outbound/calls/", CALL, format="json")
    assert unconfigured.status_code == 400 and "caller ID" in unconfigured.json()["error"]["message"]
    assert not OutboundCall.objects.exists()


@pytest.mark.django_db
def test_a_number_put_on_the_list_after_queueing_is_not_dialled(clinic, vox, vox_settings):
    call = services.outbound_call_create(clinic=clinic, **CALL, enqueue=False)
    DoNotCall.objects.create(clinic=clinic, phone=PHONE)
    assert services.outbound_call_start(call.pk) == "do_not_call"
    call.refresh_from_db()
    assert call.status == "failed" and "do-not-call" in call.error
    assert vox.sessions == []


@pytest.mark.django_db(transaction=True)
def test_the_fake_delivers_the_signed_result_over_http(web_server, vox, vox_settings, enqueued):
    """The whole wire path: custom data → the fake's signed POST to {u}/api/outbound/webhook/."""
    import time

    from tests.factories import ClinicFactory

    vox_settings.PUBLIC_BASE_URL = web_server
    vox.auto_deliver = True  # posts as soon as the session starts, before our own start returns
    call = services.outbound_call_create(clinic=ClinicFactory(), **CALL, enqueue=False)
    assert services.outbound_call_start(call.pk) == "started"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        call.refresh_from_db()
        if call.is_terminal and vox.sessions[0].deliveries:
            break
        time.sleep(0.05)
    assert call.status == "completed" and call.session_id == vox.sessions[0].session_id
    assert vox.sessions[0].deliveries == [200]
    assert call.call.transcript.utterances

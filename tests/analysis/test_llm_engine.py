"""The LLM engine end to end: pipeline step → real ChatClient → fake OpenAI-compatible server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analysis.models import Analysis, ClinicAnalysisSettings
from calls import pipeline
from calls.models import Call, CallEvent, Stage
from medai.integrations.openai_compat.chat import estimate_cost
from tests.analysis.conftest import make_transcribed_call, schema_of, valid_answer
from tests.factories import AdministratorFactory, ClinicFactory

pytestmark = pytest.mark.django_db


def analyse(call) -> str:
    return pipeline.run_step(call.pk, "analyse")


def requests_by_schema(fake) -> list[str]:
    return [schema_of(r.json())[0] for r in fake.chat_requests]


def test_valid_answer_is_stored_with_our_overall_score_tokens_and_cost(fake_llm, settings):
    settings.LLM_PRICE_INPUT_PER_1M = "100"
    settings.LLM_PRICE_OUTPUT_PER_1M = "400"
    fake_llm.responder = lambda payload: valid_answer(payload, score=8)
    call = make_transcribed_call()

    assert analyse(call) == "succeeded"

    analysis = Analysis.objects.get(call=call)
    assert (analysis.engine, analysis.call_type, analysis.scorecard_version) == ("llm", "first_contact", "1")
    assert analysis.engine_model == fake_llm.model
    assert requests_by_schema(fake_llm) == ["call_type", "call_analysis"]
    by_key = {c["key"]: c for c in analysis.criteria}
    assert len(by_key) == 17
    # 12 graded criteria at 8, four binary ones at 10 (8 counts as done), objections excluded.
    assert by_key["appointment_offered"]["score"] == 10
    assert by_key["booked"]["score"] == 10
    assert by_key["objections"]["applicable"] is False and by_key["objections"]["score"] is None
    assert analysis.overall_score == Decimal("8.50")
    assert len(analysis.recommendations) == 3
    assert analysis.prompt_tokens > 0 and analysis.completion_tokens > 0
    expected = estimate_cost(analysis.prompt_tokens, analysis.completion_tokens, "100", "400")
    assert analysis.cost == expected.quantize(Decimal("0.000001"))
    call.refresh_from_db()
    assert (call.stage, call.booked, call.booked_source) == (Stage.ANALYSED, True, "transcript")
    event = CallEvent.objects.get(call=call, stage="analyse")
    assert event.detail["engine"] == "llm" and event.provider_request_id.startswith("req_")


def test_prompt_carries_clinic_context_metadata_crm_fact_and_rubrics(fake_llm):
    fake_llm.responder = lambda payload: valid_answer(payload)
    clinic = ClinicFactory(name="Клиника «Зубик»")
    ClinicAnalysisSettings.objects.create(clinic=clinic, context="Адрес: ул. Садовая, 5. Гигиена 6000 ₽.")
    admin = AdministratorFactory(clinic=clinic, name="Вера Иванова")
    call = make_transcribed_call(clinic=clinic, administrator=admin, booked=False, booked_source="crm", traffic_source="Сайт")

    assert analyse(call) == "succeeded"

    system, user = (m["content"] for m in fake_llm.last_json["messages"])
    assert "Адрес: ул. Садовая, 5" in user
    assert "Вера Иванова" in user and "Сайт" in user
    assert "Запись по данным CRM: не записан" in user
    assert "Пётр, гигиена стоит 6000 рублей" in user
    assert "Тип звонка: Первичное обращение" in user
    assert "0 — нет приветствия" in system  # the rubric of the greeting criterion
    schema = schema_of(fake_llm.last_json)[1]
    criteria = schema["properties"]["criteria"]["properties"]
    assert "booked" not in criteria  # derived from the booking fact, never asked
    assert criteria["address"]["properties"]["score"]["type"] == ["number", "null"]
    assert criteria["greeting"]["properties"]["score"]["type"] == "number"
    assert "overall" not in str(schema)


def test_scores_are_clamped_and_an_overall_from_the_model_is_rejected(fake_llm):
    def answer(payload):
        data = valid_answer(payload, score=5, scores={"greeting": 11, "patient_name": -3, "needs": 7.6, "appointment_offered": 4})
        if schema_of(payload)[0] == "call_analysis" and len(fake_llm.chat_requests) == 2:
            data["overall_score"] = 10  # not in the schema: additionalProperties is false → invalid, retried
        return data

    fake_llm.responder = answer
    call = make_transcribed_call()

    assert analyse(call) == "succeeded"

    assert requests_by_schema(fake_llm) == ["call_type", "call_analysis", "call_analysis"]
    retry_prompt = fake_llm.last_json["messages"][1]["content"]
    assert "Предыдущий ответ отклонён" in retry_prompt
    by_key = {c["key"]: c["score"] for c in Analysis.objects.get(call=call).criteria}
    assert (by_key["greeting"], by_key["patient_name"], by_key["needs"], by_key["appointment_offered"]) == (10, 0, 8, 0)
    # graded: 10 + 0 + 8 + 9×5 = 63; binary: offered 0, booked 10, address 10, documents 10 → 93 / 16
    assert Analysis.objects.get(call=call).overall_score == Decimal("5.81")


def test_invalid_output_is_retried_once_then_the_call_fails_with_the_reason(fake_llm):
    fake_llm.queue(content={"call_type": "first_contact", "reason": "Новый пациент"})
    fake_llm.queue_invalid("Конечно! Вот анализ звонка: всё хорошо.")
    fake_llm.queue_invalid('{"summary": "нет остальных полей"}')
    call = make_transcribed_call()

    assert analyse(call) == "failed"

    assert requests_by_schema(fake_llm) == ["call_type", "call_analysis", "call_analysis"]
    call.refresh_from_db()
    assert call.stage == Stage.FAILED and call.failed_stage == Stage.TRANSCRIBED
    assert "invalid twice" in call.last_error and "call_analysis" in call.last_error
    assert not Analysis.objects.filter(call=call).exists()
    assert CallEvent.objects.get(call=call, stage="analyse").status == CallEvent.Status.FAILED


def test_truncated_output_is_retried_with_a_larger_budget(fake_llm, settings):
    settings.LLM_MAX_OUTPUT_TOKENS = 1000
    fake_llm.queue(content={"call_type": "first_contact", "reason": "Новый пациент"})
    fake_llm.queue_truncated('{"summary": "Пациент запис')
    fake_llm.responder = lambda payload: valid_answer(payload)
    call = make_transcribed_call()

    assert analyse(call) == "succeeded"

    budgets = [r.json()["max_completion_tokens"] for r in fake_llm.chat_requests]
    assert budgets == [1000, 1000, 2000]


def test_truncated_twice_fails_the_call(fake_llm):
    fake_llm.queue(content={"call_type": "first_contact", "reason": "Новый пациент"})
    fake_llm.queue_truncated('{"summary": "Пац')
    fake_llm.queue_truncated('{"summary": "Пациент')
    call = make_transcribed_call()

    assert analyse(call) == "failed"
    call.refresh_from_db()
    assert "truncated twice" in call.last_error


def test_refusal_fails_at_once_without_a_retry(fake_llm):
    fake_llm.queue_refusal("I can't help with that.")
    call = make_transcribed_call()

    assert analyse(call) == "failed"

    assert len(fake_llm.chat_requests) == 1
    call.refresh_from_db()
    assert "refused" in call.last_error


def test_rate_limit_is_temporary_and_the_pipeline_retries_later(fake_llm):
    fake_llm.queue_error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded")
    call = make_transcribed_call()

    assert analyse(call) == "retry"

    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.retry_at is not None
    assert CallEvent.objects.get(call=call).status == CallEvent.Status.RETRY


def test_crm_booking_wins_over_the_transcript(fake_llm):
    fake_llm.responder = lambda payload: valid_answer(payload, booked=False, score=6)
    call = make_transcribed_call(booked=True, booked_source=Call.BookedSource.CRM)

    assert analyse(call) == "succeeded"

    analysis = Analysis.objects.get(call=call)
    by_key = {c["key"]: c for c in analysis.criteria}
    assert analysis.booked is False  # what the conversation showed
    assert by_key["booked"]["score"] == 10 and "CRM" in by_key["booked"]["comment"]
    assert by_key["address"]["applicable"] and by_key["documents"]["applicable"]  # "only if booked" now applies
    call.refresh_from_db()
    assert (call.booked, call.booked_source) == (True, "crm")


def test_other_call_is_not_scored_and_booking_does_not_apply(fake_llm):
    fake_llm.responder = lambda payload: valid_answer(payload, call_type="other")
    call = make_transcribed_call()

    assert analyse(call) == "succeeded"

    second = schema_of(fake_llm.last_json)[1]
    assert "criteria" not in second["properties"] and "booked" not in second["properties"]
    analysis = Analysis.objects.get(call=call)
    assert (analysis.call_type, analysis.criteria, analysis.overall_score, analysis.booked) == ("other", [], None, None)
    call.refresh_from_db()
    assert call.booked is None and call.booked_source == ""


def test_clinic_overrides_pick_the_engine_model_and_key(fake_llm, settings):
    settings.OPENAI_API_KEY = ""  # no deployment key: "auto" would mean rules
    fake_llm.responder = lambda payload: valid_answer(payload)
    clinic = ClinicFactory()
    ClinicAnalysisSettings.objects.create(
        clinic=clinic, llm_api_key="test-key", llm_base_url=fake_llm.base_url, llm_model="clinic-model"
    )
    call = make_transcribed_call(clinic=clinic)

    assert analyse(call) == "succeeded"
    assert {r.json()["model"] for r in fake_llm.chat_requests} == {"clinic-model"}
    assert ClinicAnalysisSettings.objects.get(clinic=clinic).llm_api_key == "test-key"  # decrypts


def test_clinic_can_force_the_rule_engine(fake_llm):
    clinic = ClinicFactory()
    ClinicAnalysisSettings.objects.create(clinic=clinic, engine=ClinicAnalysisSettings.Engine.RULES)
    call = make_transcribed_call(clinic=clinic)

    assert analyse(call) == "succeeded"
    assert Analysis.objects.get(call=call).engine == "rules"
    assert fake_llm.chat_requests == []


def test_without_any_key_the_rule_engine_is_the_baseline(db, settings):
    settings.OPENAI_API_KEY = ""
    settings.ANALYSIS_ENGINE = "auto"
    call = make_transcribed_call()
    assert analyse(call) == "succeeded"
    analysis = Analysis.objects.get(call=call)
    assert analysis.engine == "rules" and analysis.cost == 0

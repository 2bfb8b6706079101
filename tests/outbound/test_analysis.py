"""Outbound AI calls are analysed with their own scorecard: purpose stated, objections, goal reached,
plus the five outputs (summary, disposition, follow-up, interest, CRM status)."""

from __future__ import annotations

import pytest

from analysis.models import Analysis, ClinicAnalysisSettings, Scorecard
from analysis.selectors import period_figures
from analysis.services import scorecard_ensure_default
from calls import pipeline
from calls.outbound import services
from tests.factories import AnalysisFactory, CallFactory
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.voximplant import Scripted
from tests.outbound.conftest import deliver
from tests.outbound.test_calls import CALL

HANDLED = [
    ("ai", "Здравствуйте! Это клиника «Улыбка». Звоню напомнить о приёме завтра в 10:00, вы придёте?"),
    ("customer", "Ой, у вас дорого, я подумаю."),
    ("ai", "Понимаю вас. У нас есть рассрочка без переплаты, а консультация бесплатная. Давайте сохраним запись?"),
    ("customer", "Хорошо, давайте, я приду."),
    ("ai", "Отлично, ждём вас завтра в 10:00!"),
]
REFUSED = [
    ("ai", "Здравствуйте!"),
    ("customer", "Кто это?"),
    ("ai", "Это клиника «Улыбка», хотим предложить профессиональную чистку зубов."),
    ("customer", "Нет, уже неактуально, не звоните больше."),
]


def analysed_ai_call(client, clinic, vox, lines, **overrides):
    vox.outcomes.append(Scripted("completed", duration=60, transcript=lines))
    call = services.outbound_call_create(clinic=clinic, **{**CALL, **overrides}, enqueue=False)
    services.outbound_call_start(call.pk)
    deliver(client, vox, vox.sessions[-1])
    call.refresh_from_db()
    assert pipeline.drive(call.call_id) == "succeeded"
    return Analysis.objects.get(call_id=call.call_id)


def scores(analysis) -> dict:
    return {c["key"]: (c["score"], c["applicable"]) for c in analysis.criteria}


@pytest.mark.django_db
def test_rules_score_the_ai_on_purpose_objections_and_goal(client, clinic, vox, vox_settings):
    scorecard_ensure_default(clinic)
    assert Scorecard.objects.filter(clinic=clinic).count() == 4  # the AI scorecard comes with the first AI call
    good = analysed_ai_call(client, clinic, vox, HANDLED)
    assert Scorecard.objects.filter(clinic=clinic, call_type="outbound").exists()
    assert good.call_type == "outbound" and good.engine == "rules"
    assert "Подтвердить визит на завтра" in good.call_type_reason
    assert scores(good) == {"purpose_stated": (10, True), "objections": (10, True), "goal_reached": (10, True)}
    assert {o["key"] for o in good.objections} == {"expensive", "think"}
    assert good.overall_score == 10 and good.disposition == "booked" and good.interest == "high"
    assert good.call.booked is True and good.follow_up and good.crm_status == "Записан"

    bad = analysed_ai_call(client, clinic, vox, REFUSED, purpose="")
    assert scores(bad)["purpose_stated"] == (5, True)  # said only after "Кто это?"
    assert scores(bad)["goal_reached"] == (0, True)
    assert bad.disposition == "lost" and bad.interest == "low"
    assert bad.recommendations and bad.call.administrator is None


@pytest.mark.django_db
def test_the_llm_scores_the_ai_call_without_classifying_it(client, clinic, vox, vox_settings):
    with FakeOpenAIChat() as llm:
        ClinicAnalysisSettings.objects.create(clinic=clinic, engine="llm", llm_api_key=llm.api_key, llm_base_url=llm.base_url, llm_model="m")
        llm.queue(
            content={
                "booked": True,
                "criteria": {"purpose_stated": {"score": 9, "comment": "Сразу"}, "objections": {"score": 7, "comment": "Рассрочка"}, "goal_reached": {"score": 10, "comment": "Придёт"}},
                "objections": [{"key": "expensive", "quote": "дорого", "handled": True, "comment": "ok"}],
                "summary": "Пациент подтвердил визит.",
                "disposition": "confirmed",
                "follow_up": "Ждём вас завтра в 10:00.",
                "interest": "high",
                "crm_status": "Визит подтверждён",
                "recommendations": ["Сохраняйте короткое приветствие."],
            }
        )
        analysis = analysed_ai_call(client, clinic, vox, HANDLED)
        [request] = llm.chat_requests  # one request: the type is known, nothing to classify
        sent = request.json()
    assert analysis.call_type == "outbound" and analysis.engine == "llm"
    assert scores(analysis) == {"purpose_stated": (9, True), "objections": (7, True), "goal_reached": (10, True)}
    assert (analysis.disposition, analysis.interest, analysis.crm_status) == ("confirmed", "high", "Визит подтверждён")
    assert analysis.follow_up == "Ждём вас завтра в 10:00." and float(analysis.overall_score) == pytest.approx(8.67)
    user = sent["messages"][1]["content"]
    assert "ИИ-ассистент" in user and "Подтвердить визит на завтра" in user
    schema = sent["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]["criteria"]["properties"]) == {"purpose_stated", "objections", "goal_reached"}
    assert sent["response_format"]["json_schema"]["name"] == "call_analysis"


@pytest.mark.django_db
def test_ai_calls_stay_out_of_the_coaching_figures(clinic):
    human = AnalysisFactory(call=CallFactory(clinic=clinic), call_type="first_contact", overall_score=6)
    AnalysisFactory(call=CallFactory(clinic=clinic, source="outbound", direction="outbound"), call_type="outbound", overall_score=10)
    figures = period_figures(clinic=clinic, start=human.call.local_date, end=human.call.local_date)
    assert figures["calls_total"] == 1 and figures["average_score"] == "6.00"
    assert [t["call_type"] for t in figures["types"]] == ["first_contact"]

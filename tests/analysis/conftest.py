"""Shared fixtures: a transcribed call ready for the ``analyse`` step, and the fake LLM server."""

from __future__ import annotations

import pytest

from analysis.services import scorecard_ensure_default
from tests.factories import CallFactory, ClinicFactory, TranscriptFactory
from tests.fakes.openai_chat import FakeOpenAIChat

BOOKED_FIRST_CONTACT = [
    {"speaker": "A", "role": "administrator", "start": 0.0, "end": 4.0, "text": "Клиника «Зубик», администратор Вера, здравствуйте!"},
    {"speaker": "B", "role": "patient", "start": 4.5, "end": 8.0, "text": "Здравствуйте, хочу записаться на чистку зубов."},
    {"speaker": "A", "role": "administrator", "start": 8.5, "end": 11.0, "text": "Конечно. Как к вам обращаться?"},
    {"speaker": "B", "role": "patient", "start": 11.5, "end": 12.5, "text": "Пётр."},
    {"speaker": "A", "role": "administrator", "start": 13.0, "end": 20.0, "text": "Пётр, гигиена стоит 6000 рублей. Есть завтра в 10:00, подойдёт?"},
    {"speaker": "B", "role": "patient", "start": 20.5, "end": 22.0, "text": "Да, давайте."},
    {"speaker": "A", "role": "administrator", "start": 22.5, "end": 30.0, "text": "Записала вас, Пётр. Адрес: улица Садовая, 5. Возьмите паспорт. Ждём вас!"},
]


def make_transcribed_call(*, clinic=None, utterances=None, **call_fields):
    clinic = clinic or ClinicFactory()
    call = CallFactory(clinic=clinic, stage="transcribed", **call_fields)
    TranscriptFactory(call=call, utterances=utterances or BOOKED_FIRST_CONTACT)
    return call


@pytest.fixture
def transcribed_call(db):
    return make_transcribed_call()


@pytest.fixture
def seeded_clinic(db):
    clinic = ClinicFactory()
    scorecard_ensure_default(clinic)
    return clinic


@pytest.fixture(scope="session")
def chat_server():
    with FakeOpenAIChat() as running:
        yield running


@pytest.fixture
def fake_llm(chat_server, settings):
    """The LLM engine pointed at the fake server (no real network, no in-process retry sleeps)."""
    chat_server.reset()
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = chat_server.base_url
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.ANALYSIS_ENGINE = "auto"
    settings.HTTP_RETRIES = 0
    settings.HTTP_TIMEOUT = 5.0
    yield chat_server
    chat_server.reset()


def schema_of(payload: dict) -> tuple[str, dict]:
    spec = payload["response_format"]["json_schema"]
    return spec["name"], spec["schema"]


def valid_answer(payload: dict, *, call_type="first_contact", score=8, scores=None, booked=True, objections=()):
    """A schema-valid answer for either request of the LLM engine, built from the request's schema."""
    name, schema = schema_of(payload)
    if name == "call_type":
        return {"call_type": call_type, "reason": "Новый пациент хочет на чистку."}
    if name == "period_recommendations":
        return {"recommendations": ["Спрашивайте имя пациента.", "Называйте цену сразу."]}
    answer = {
        "summary": "Пациент записался на гигиену.",
        "disposition": "booked" if booked else "info",
        "follow_up": "Ждём вас завтра в 10:00.",
        "interest": "high",
        "crm_status": "Записан",
        "recommendations": ["Представьте врача.", "Расскажите о клинике.", "Уточните жалобу.", "Лишний совет."],
    }
    if "criteria" in schema["properties"]:
        keys = list(schema["properties"]["criteria"]["properties"])
        answer["criteria"] = {key: {"score": (scores or {}).get(key, score), "comment": f"{key} ok"} for key in keys}
        answer["booked"] = booked
        answer["objections"] = [
            {"key": key, "quote": "Дорого", "handled": True, "comment": "Предложила рассрочку"} for key in objections
        ]
    return answer

import json

import pytest

from telegrambot.models import ChatLink
from telegrambot.services import link_code_create
from telegrambot.updates import update_process
from tests.fakes.telegram import callback_update, message_update
from tests.telegrambot.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

URL = "/telegram/webhook/"


@pytest.fixture
def enqueued(monkeypatch):
    tasks = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: tasks.append((func, args)))
    return tasks


def _post(client, body, secret=WEBHOOK_SECRET, content_type="application/json"):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, content_type=content_type, **headers)


def test_the_right_secret_enqueues_the_update(client, fake_tg, enqueued):
    update = message_update(42, "/help")
    response = _post(client, update)
    assert response.status_code == 200
    assert enqueued == [("telegrambot.tasks.process_update", (update,))]


@pytest.mark.parametrize("secret", [None, "", "wrong", WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "x"])
def test_a_missing_or_wrong_secret_is_refused(client, fake_tg, enqueued, secret):
    response = _post(client, message_update(42, "/help"), secret=secret)
    assert response.status_code == 403
    assert enqueued == []


def test_no_secret_configured_means_no_endpoint(client, fake_tg, enqueued, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""
    assert _post(client, message_update(42, "/help"), secret="").status_code == 404
    assert enqueued == []


def test_only_post(client, fake_tg):
    assert client.get(URL, HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=WEBHOOK_SECRET).status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"text"',
        {"update_id": "1", "message": {}},
        {"update_id": True, "message": {}},
        {"update_id": 5, "message": "hello"},
        {"update_id": 5, "message": {"message_id": 1, "chat": {"id": "x"}}},
        {"update_id": 5, "callback_query": {"id": 7, "from": {}}},
    ],
)
def test_malformed_payloads_are_acknowledged_not_processed(client, fake_tg, enqueued, body):
    response = _post(client, body)
    assert response.status_code == 200
    assert enqueued == []


@pytest.mark.parametrize("kind", ["edited_message", "channel_post", "my_chat_member", "poll", "something_new"])
def test_other_update_kinds_are_acknowledged_and_ignored(client, fake_tg, enqueued, kind):
    response = _post(client, {"update_id": 9, kind: {"anything": 1}})
    assert response.status_code == 200
    assert enqueued == []


def test_oversized_bodies_are_acknowledged_and_ignored(client, fake_tg, enqueued):
    big = message_update(42, "/find " + "x" * 300_000)
    assert _post(client, big).status_code == 200
    assert enqueued == []


def test_the_task_handles_the_update_once(fake_tg, clinic):
    _row, code = link_code_create(clinic=clinic, role="owner")
    update = message_update(43, f"/start {code}", language_code="en")
    assert update_process(update) == "linked"
    assert update_process(update) == "duplicate"  # Telegram retried, or the task ran twice
    assert ChatLink.objects.filter(chat_id=43).count() == 1
    assert len(fake_tg.texts(43)) == 1


def test_the_task_answers_button_presses(fake_tg, link_chat, clinic):
    link_chat(clinic, 44, language="en")
    assert update_process(callback_update(44, "stats:week", language_code="en")) == "stats"
    assert fake_tg.answered and "This week" in fake_tg.sent[-1]["text"]


def test_the_task_does_nothing_without_a_token(settings, db):
    settings.TELEGRAM_BOT_TOKEN = ""
    assert update_process(message_update(45, "/help")) == "disabled"


def test_end_to_end_through_the_webhook_with_the_task_inline(client, fake_tg, monkeypatch):
    from telegrambot import tasks

    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: tasks.process_update(*args))
    response = _post(client, message_update(46, "/help", language_code="en"))
    assert response.status_code == 200
    assert "/start <code>" in fake_tg.texts(46)[0]

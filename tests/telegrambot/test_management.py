import asyncio
import io
import logging
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clinics.models import OutboxEvent
from telegrambot.models import ChatLink
from telegrambot.notifications import outbox_deliver
from telegrambot.services import link_code_create
from tests.fakes.telegram import TOKEN, message_update

pytestmark = pytest.mark.django_db


def _call(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_runbot_needs_a_token(settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    with pytest.raises(CommandError, match="TELEGRAM_BOT_TOKEN"):
        call_command("runbot", "--once")


def test_runbot_once_handles_pending_updates_and_confirms_them(fake_tg):
    fake_tg.push(message_update(50, "/help", language_code="en"))
    fake_tg.push(message_update(51, "/help", language_code="ru"))
    assert _call("runbot", "--once").strip() == "2 update(s) handled."
    assert len(fake_tg.texts(50)) == 1 and len(fake_tg.texts(51)) == 1
    assert fake_tg.updates == []  # confirmed with the offset: Telegram will not resend them
    assert _call("runbot", "--once").strip() == "0 update(s) handled."


def test_runbot_once_can_drop_the_backlog(fake_tg):
    fake_tg.push(message_update(52, "/help"))
    assert _call("runbot", "--once", "--drop-pending-updates").strip() == "1 update(s) dropped."
    assert fake_tg.texts(52) == [] and fake_tg.updates == []


def test_runbot_once_explains_a_webhook_conflict(fake_tg):
    fake_tg.webhook = {"url": "https://medai.example/telegram/webhook/"}
    with pytest.raises(CommandError, match="Conflict"):
        call_command("runbot", "--once")


def test_runbot_refuses_a_rejected_token_without_printing_it(fake_tg, settings):
    settings.TELEGRAM_BOT_TOKEN = "987654321:" + "Z" * 35
    with pytest.raises(CommandError) as caught:
        call_command("runbot", "--once")
    assert "rejected" in str(caught.value) and "987654321" not in str(caught.value)
    chain, exc = [], caught.value
    while exc is not None and len(chain) < 10:  # every exception a traceback would print
        chain.append(f"{exc!r} {exc}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    assert "Z" * 35 not in "\n".join(chain)


@pytest.mark.django_db(transaction=True)
def test_long_polling_with_the_application(fake_tg):
    """The real PTB Application + Updater loop, against the fake (handlers run in a worker thread)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from telegrambot.bot import build_application

    fake_tg.push(message_update(53, "/help", language_code="en"))

    async def main():
        application = build_application()
        async with application:
            await application.start()
            await application.updater.start_polling(timeout=1, allowed_updates=["message", "callback_query"])
            deadline = time.monotonic() + 10
            while not fake_tg.texts(53) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await application.updater.stop()
            await application.stop()
        # The handler's worker thread keeps a DB connection; close it so the test DB can be dropped.
        await sync_to_async(connections.close_all)()

    asyncio.run(main())
    assert "/start <code>" in fake_tg.texts(53)[0]


def test_set_webhook_registers_url_secret_and_update_kinds(fake_tg, settings):
    settings.PUBLIC_BASE_URL = "https://medai.example"
    fake_tg.push(message_update(54, "/help"))
    output = _call("telegram_set_webhook", "--drop-pending-updates")
    assert "Webhook set: https://medai.example/telegram/webhook/" in output
    assert fake_tg.webhook["url"] == "https://medai.example/telegram/webhook/"
    assert fake_tg.webhook["secret_token"] == settings.TELEGRAM_WEBHOOK_SECRET
    assert fake_tg.webhook["allowed_updates"] == ["message", "callback_query"]
    assert fake_tg.updates == []  # dropped
    assert settings.TELEGRAM_WEBHOOK_SECRET not in output

    assert "URL: https://medai.example/telegram/webhook/" in _call("telegram_set_webhook", "--info")
    assert "Webhook removed." in _call("telegram_set_webhook", "--delete")
    assert fake_tg.webhook == {}


def test_set_webhook_needs_https_and_a_good_secret(fake_tg, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    with pytest.raises(CommandError, match="HTTPS"):
        call_command("telegram_set_webhook")
    assert "Webhook set: https://bot.example/hook/" in _call("telegram_set_webhook", "--url", "https://bot.example/hook/")
    settings.TELEGRAM_WEBHOOK_SECRET = "short"
    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_SECRET"):
        call_command("telegram_set_webhook", "--url", "https://bot.example/hook/")
    settings.TELEGRAM_WEBHOOK_SECRET = "has spaces and ünicode but is long enough"
    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_SECRET"):
        call_command("telegram_set_webhook", "--url", "https://bot.example/hook/")


def test_the_schedules_include_the_bots_tasks():
    from calls.schedules import SCHEDULES

    funcs = {task.func for task in SCHEDULES}
    assert {"telegrambot.tasks.deliver_outbox", "telegrambot.tasks.send_due_digests", "telegrambot.tasks.housekeeping"} <= funcs


def test_tasks_do_nothing_without_a_token(settings, db):
    from telegrambot import tasks

    settings.TELEGRAM_BOT_TOKEN = ""
    assert tasks.deliver_outbox() == "bot disabled"
    assert tasks.send_due_digests() == "bot disabled"
    assert "updates" in tasks.housekeeping()


# --- the token never reaches a log ------------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def everything_logged():
    """Every logger at DEBUG — worse than any real configuration — and a plain handler on root,
    first in line (the console handler's redacting filter must not have scrubbed the record yet)."""
    handler = _Capture()
    root = logging.getLogger()
    names = ["", "telegram", "telegram.Bot", "telegram.ext", "telegram.ext.ExtBot", "telegram.ext.Updater", "httpx", "httpcore", "medai"]
    previous = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.handlers.insert(0, handler)
    yield handler
    root.removeHandler(handler)
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)


def test_the_bot_token_is_never_logged(fake_tg, link_chat, clinic, settings, everything_logged):
    settings.PUBLIC_BASE_URL = "https://medai.example"
    secret_part = TOKEN.split(":", 1)[1]
    link_chat(clinic, 60, language="en")
    _row, code = link_code_create(clinic=clinic, role="manager")
    fake_tg.push(message_update(61, f"/start {code}"))
    fake_tg.push(message_update(60, "/stats"))
    fake_tg.push(message_update(62, "/start wrong-code-aaaaaaaaaaaaaaaaaaaaa"))
    fake_tg.flood("sendMessage", retry_after=1)
    call_command("runbot", "--once", stdout=io.StringIO())

    fake_tg.block(60)
    OutboxEvent.objects.create(clinic=clinic, kind=OutboxEvent.Kind.CRM_BROKEN, payload={"error": "x"})
    outbox_deliver()
    call_command("telegram_set_webhook", stdout=io.StringIO())
    fake_tg.fail_next("POST", fake_tg.path("deleteWebhook"), kind="disconnect")
    with pytest.raises(CommandError):
        call_command("telegram_set_webhook", "--delete", stdout=io.StringIO())
    settings.TELEGRAM_BOT_TOKEN = "987654321:" + "Q" * 35
    with pytest.raises(CommandError):
        call_command("runbot", "--once")

    logged = "\n".join(everything_logged.lines)
    assert ChatLink.objects.filter(chat_id=61).exists()  # the run did real work…
    assert "httpx" in logged or "telegram" in logged  # …and the libraries did log
    assert secret_part not in logged
    assert "Q" * 35 not in logged
    assert code not in logged  # a link code is a secret too

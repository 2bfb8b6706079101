import pytest

from tests.fakes.telegram import TOKEN, FakeTelegram

WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"


@pytest.fixture
def fake_tg(settings):
    """The fake Bot API, with the bot configured to talk to it (and no real rate limits)."""
    with FakeTelegram() as fake:
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.TELEGRAM_API_BASE_URL = fake.base_url
        settings.TELEGRAM_API_FILE_URL = fake.base_file_url
        settings.TELEGRAM_BOT_USERNAME = ""
        settings.TELEGRAM_RATE_PER_CHAT = 1000
        settings.TELEGRAM_RATE_PER_CHAT_BURST = 100
        settings.TELEGRAM_RATE_PER_GROUP_MINUTE = 60000
        settings.TELEGRAM_RATE_OVERALL = 1000
        settings.TELEGRAM_MAX_RETRY_AFTER = 5
        yield fake


@pytest.fixture
def run_bot(fake_tg):
    """Push updates to the fake and let ``runbot --once`` handle them; returns the fake."""
    from django.core.management import call_command

    def run(*updates):
        for update in updates:
            fake_tg.push(update)
        call_command("runbot", "--once", stdout=_Null())
        return fake_tg

    return run


@pytest.fixture
def link_chat(db):
    """Link ``chat_id`` to ``clinic`` the way a user does (code made in the admin, /start)."""
    from telegrambot.services import chat_link_redeem, link_code_create

    def link(clinic, chat_id, *, role="owner", language="ru"):
        _code_row, code = link_code_create(clinic=clinic, role=role)
        outcome = chat_link_redeem(chat_id=chat_id, code=code, title="Test", language=language)
        assert outcome.status == "linked"
        return outcome.link

    return link


class _Null:
    def write(self, *args, **kwargs):
        pass

    def flush(self):
        pass

"""medai.integrations.telegram: splitting, the rate limiter, error mapping — against the fake."""

import asyncio

import pytest
from telegram import error as tg_error

from medai.integrations.telegram import (
    BotConfig,
    BotSession,
    ChatGone,
    ChatRateLimiter,
    PermanentTelegramError,
    RateLimits,
    RetryLater,
    build_bot,
    classify,
    split_text,
)
from tests.fakes.telegram import TOKEN, FakeTelegram

FAST = RateLimits(overall_per_second=1000, per_chat_per_second=1000, per_chat_burst=100, max_retry_after=5)


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


def _session(fake, limits=FAST, limiter=None):
    config = BotConfig(token=TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url, limits=limits)
    return BotSession(build_bot(config, rate_limiter=limiter))


# --- split_text ------------------------------------------------------------------------------------
def test_short_text_is_one_chunk():
    assert split_text("hello") == ["hello"]
    assert split_text("") == []


def test_long_text_is_split_on_line_boundaries_under_the_limit():
    lines = [f"{i:04d} " + "слово " * 15 for i in range(400)]
    text = "\n".join(lines)
    chunks = split_text(text)
    assert len(chunks) > 1
    assert all(len(chunk) <= 4096 for chunk in chunks)
    assert "\n".join(chunks) == text  # nothing lost, lines never cut
    assert all(chunk.split("\n")[0][:4].isdigit() for chunk in chunks)


def test_a_line_longer_than_the_limit_is_cut_at_a_space():
    text = "short\n" + ("word " * 2000).strip() + "\nend"
    chunks = split_text(text, limit=1000)
    assert all(len(chunk) <= 1000 for chunk in chunks)
    assert chunks[0] == "short" and chunks[-1].endswith("end")
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())


def test_a_line_without_spaces_is_cut_hard():
    chunks = split_text("x" * 2500, limit=1000)
    assert [len(c) for c in chunks] == [1000, 1000, 500]


# --- rate limiter ----------------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def _run(limiter, calls):
    async def go():
        for endpoint, data in calls:
            async def callback():
                return True

            await limiter.process_request(callback, (), {}, endpoint, data, None)

    asyncio.run(go())


def test_limiter_spaces_messages_to_one_chat_one_per_second():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(), clock=clock, sleep=clock.sleep)
    _run(limiter, [("sendMessage", {"chat_id": 1})] * 4)
    assert clock.now == pytest.approx(3.0)


def test_limiter_lets_different_chats_go_together_up_to_the_overall_limit():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(overall_per_second=30), clock=clock, sleep=clock.sleep)
    _run(limiter, [("sendMessage", {"chat_id": chat}) for chat in range(30)])
    assert clock.now == 0.0  # a burst of 30 to 30 chats is fine
    _run(limiter, [("sendMessage", {"chat_id": chat}) for chat in range(100, 160)])
    assert clock.now == pytest.approx(2.0, abs=0.01)  # the next 60 take two seconds


def test_limiter_throttles_groups_to_twenty_a_minute():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(), clock=clock, sleep=clock.sleep)
    _run(limiter, [("sendMessage", {"chat_id": -100123})] * 3)
    assert clock.now == pytest.approx(6.0)


def test_limiter_does_not_hold_back_non_chat_requests():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(), clock=clock, sleep=clock.sleep)
    _run(limiter, [("answerCallbackQuery", {"callback_query_id": "1"})] * 5 + [("getMe", {})] * 5)
    assert clock.now == 0.0


def test_limiter_waits_out_retry_after_then_repeats():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(max_retry_after=30), clock=clock, sleep=clock.sleep)
    attempts = []

    async def callback():
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise tg_error.RetryAfter(7)
        return True

    assert asyncio.run(limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)) is True
    assert attempts == [0.0, pytest.approx(7.0)]


def test_limiter_hands_long_waits_back_to_the_caller():
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(max_retry_after=30), clock=clock, sleep=clock.sleep)

    async def callback():
        raise tg_error.RetryAfter(120)

    with pytest.raises(tg_error.RetryAfter):
        asyncio.run(limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None))
    assert clock.now == 0.0


# --- against the fake ------------------------------------------------------------------------------
def test_429_from_the_api_is_honoured(fake):
    fake.flood("sendMessage", retry_after=1)
    with _session(fake) as session:
        session.send_text(10, "hello")
        waits = session.bot.rate_limiter.waits
    assert fake.texts(10) == ["hello"]
    assert waits and waits[0] == pytest.approx(1.0, abs=0.1)


def test_403_blocked_is_chat_gone(fake):
    fake.block(11)
    with _session(fake) as session, pytest.raises(ChatGone, match="blocked"):
        session.send_text(11, "hello")


def test_a_wrong_token_is_a_clean_permanent_error(fake):
    config = BotConfig(token="987654321:" + "B" * 35, base_url=fake.base_url, limits=FAST)
    with pytest.raises(PermanentTelegramError) as caught:
        BotSession(build_bot(config)).__enter__()
    assert "987654321:" not in str(caught.value)


def test_server_errors_and_timeouts_are_temporary():
    assert isinstance(classify(tg_error.NetworkError("Bad Gateway")), RetryLater)
    assert isinstance(classify(tg_error.TimedOut()), RetryLater)
    assert isinstance(classify(tg_error.BadRequest("Bad Request: chat not found")), PermanentTelegramError)
    assert isinstance(classify(tg_error.Forbidden("Forbidden: bot was kicked from the group chat")), ChatGone)


def test_long_messages_go_out_in_several_parts_with_the_keyboard_last(fake):
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("1", callback_data="call:1")]])
    text = "\n".join(f"line {i} " + "x" * 100 for i in range(100))
    with _session(fake) as session:
        session.send_text(12, text, reply_markup=keyboard)
    sent = [m for m in fake.sent if m["chat_id"] == 12]
    assert len(sent) == 3
    assert [bool(m["reply_markup"]) for m in sent] == [False, False, True]
    assert "\n".join(m["text"] for m in sent) == text


def test_documents_go_as_multipart(fake):
    with _session(fake) as session:
        session.send_document(13, filename="report.xlsx", content=b"PK\x03\x04data", caption="Отчёт")
    assert fake.documents(13) == [
        {"chat_id": 13, "document": "report.xlsx", "content": b"PK\x03\x04data", "caption": "Отчёт"}
    ]
    request = fake.requests_to("POST", fake.path("sendDocument"))[0]
    assert request.headers["content-type"].startswith("multipart/form-data")

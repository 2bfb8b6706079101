"""Telegram Bot API through python-telegram-bot (v22), behind a small sync-friendly layer.

What lives here (no Django models, no app imports):

* :func:`build_bot` — an ``ExtBot`` with timeouts, our :class:`ChatRateLimiter`, and a base URL
  that tests point at the fake server (``f"{fake.url}/bot"``);
* :class:`BotSession` — runs the bot's coroutines on a private event loop so sync code (tasks,
  the webhook's worker, notifications) can call ``session.call(bot.send_message(...))`` while
  the ORM stays in the calling thread;
* :class:`ChatRateLimiter` — Telegram's limits (about 1 message/s per chat, 20/min per group,
  30/s overall), and 429 ``retry_after`` honoured up to a bound;
* :func:`split_text` — long texts cut under 4096 characters on line boundaries;
* :func:`protect_loggers` — the bot token never reaches a log record (PTB logs its base URL,
  which holds the token, at DEBUG; httpx logs request URLs at INFO).

Errors are mapped to :class:`ChatGone` (403: blocked, kicked, deactivated — unlink the chat),
:class:`RetryLater` (flood control longer than we wait in-process, or the network) and
:class:`PermanentTelegramError` (a 400 that will not get better).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from telegram import InputFile
from telegram import error as tg_error
from telegram.ext import BaseRateLimiter, ExtBot
from telegram.request import HTTPXRequest

from medai.logging import redact

# Opt in to PTB's future behaviour (time periods as ``timedelta``) so RetryAfter does not warn
# about the int → timedelta migration every time it is built; :func:`retry_after_seconds` reads both.
os.environ.setdefault("PTB_TIMEDELTA", "true")

logger = logging.getLogger("medai.telegram")

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_BASE_FILE_URL = "https://api.telegram.org/file/bot"
MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # Bot API limit for sendDocument
# Endpoints that put a message into a chat: these count against the per-chat limit.
_CHAT_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendMediaGroup",
        "editMessageText",
        "editMessageReplyMarkup",
        "copyMessage",
        "forwardMessage",
    }
)

T = TypeVar("T")


# --- errors --------------------------------------------------------------------------------------
class TelegramFailure(Exception):
    """A Bot API call failed; ``temporary`` tells the caller whether to try again later."""

    temporary = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.retry_after = retry_after


class ChatGone(TelegramFailure):
    """403: the user blocked the bot, or the bot was removed from the group. Unlink the chat."""


class RetryLater(TelegramFailure):
    temporary = True


class PermanentTelegramError(TelegramFailure):
    pass


def retry_after_seconds(exc: tg_error.RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def classify(exc: BaseException) -> TelegramFailure:
    """Map a python-telegram-bot exception to one of ours (messages redacted)."""
    if isinstance(exc, TelegramFailure):
        return exc
    if isinstance(exc, tg_error.Forbidden):
        return ChatGone(str(exc))
    if isinstance(exc, tg_error.RetryAfter):
        return RetryLater(str(exc), retry_after=retry_after_seconds(exc))
    if isinstance(exc, (tg_error.TimedOut, tg_error.NetworkError)) and not isinstance(exc, tg_error.BadRequest):
        return RetryLater(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, tg_error.InvalidToken):
        return PermanentTelegramError("The bot token was rejected by the Bot API")
    return PermanentTelegramError(f"{type(exc).__name__}: {exc}")


# --- text ----------------------------------------------------------------------------------------
def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` characters, on line boundaries where possible.

    A single line longer than the limit is cut at the last space before it (or hard, if none).
    """
    if limit < 2:
        raise ValueError("limit too small")
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            piece, line = line[:cut], line[cut:].lstrip(" ")
            if current:
                chunks.append(current)
                current = ""
            chunks.append(piece)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = line
    if current:
        chunks.append(current)
    return [c for c in chunks if c.strip()] or [text[:limit]]


# --- rate limiting -------------------------------------------------------------------------------
class AsyncTokenBucket:
    """``rate`` tokens per second, up to ``capacity``. ``acquire`` waits for one."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = asyncio.Lock()

    async def acquire(self) -> float:
        waited = 0.0
        async with self.lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1 - 1e-9:  # float dust must not leave us a hair short forever
                    self.tokens = max(0.0, self.tokens - 1)
                    return waited
                delay = max((1 - self.tokens) / self.rate, 0.001)
                await self.sleep(delay)
                waited += delay


@dataclass(frozen=True)
class RateLimits:
    overall_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 1
    per_group_per_minute: float = 20.0
    max_retry_after: float = 30.0  # longer flood waits are handed back to the caller
    max_retries: int = 2


class ChatRateLimiter(BaseRateLimiter[None]):
    """Throttles every outgoing request (overall and per chat) and honours 429 ``retry_after``.

    A 429 pauses *all* requests for ``retry_after`` seconds (Telegram's flood control is not
    per chat), then the request is repeated, at most ``max_retries`` times. A wait longer than
    ``max_retry_after`` is not slept through: :class:`telegram.error.RetryAfter` propagates and
    the caller reschedules. Limits are per process; several workers each keep their own.
    """

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self.limits = limits or RateLimits()
        self.clock = clock
        # Looked up at call time so tests can record or shorten waits.
        self.sleep = sleep or (lambda seconds: asyncio.sleep(seconds))
        self.overall = AsyncTokenBucket(
            self.limits.overall_per_second, self.limits.overall_per_second, clock=clock, sleep=self._sleep
        )
        self.chats: dict[int | str, AsyncTokenBucket] = {}
        self.paused_until = 0.0
        self.waits: list[float] = []  # every wait, for diagnostics and tests

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.sleep(seconds)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        self.chats.clear()

    def _chat_bucket(self, chat_id: int | str) -> AsyncTokenBucket:
        bucket = self.chats.get(chat_id)
        if bucket is None:
            is_group = isinstance(chat_id, str) or int(chat_id) < 0
            if is_group:
                rate, burst = self.limits.per_group_per_minute / 60.0, 1
            else:
                rate, burst = self.limits.per_chat_per_second, self.limits.per_chat_burst
            bucket = self.chats[chat_id] = AsyncTokenBucket(rate, burst, clock=self.clock, sleep=self._sleep)
        return bucket

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id") if endpoint in _CHAT_ENDPOINTS else None
        for attempt in range(self.limits.max_retries + 1):
            pause = self.paused_until - self.clock()
            if pause > 0:
                await self._sleep(pause)
            if chat_id is not None:
                await self._chat_bucket(chat_id).acquire()
            await self.overall.acquire()
            try:
                return await callback(*args, **kwargs)
            except tg_error.RetryAfter as exc:
                delay = retry_after_seconds(exc)
                if delay > self.limits.max_retry_after or attempt >= self.limits.max_retries:
                    raise
                logger.info("Bot API flood control on %s: waiting %.0f s (attempt %d)", endpoint, delay, attempt + 1)
                self.paused_until = max(self.paused_until, self.clock() + delay)
        raise AssertionError("unreachable")  # pragma: no cover


# --- logging -------------------------------------------------------------------------------------
class SecretFilter(logging.Filter):
    """Redacts exact secrets (the bot token) and everything :func:`medai.logging.redact` knows,
    in the message and in the formatted traceback."""

    def __init__(self) -> None:
        super().__init__("medai-telegram-secrets")
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[bot-token]")
        return _START_CODE.sub(r"\1[code]", redact(text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
            record.exc_info = None  # the formatter would re-render the raw traceback otherwise
        return True


# A chat-link code in "/start <code>" (PTB logs update payloads at DEBUG).
_START_CODE = re.compile(r"(/start(?:@\w+)?\s+)[A-Za-z0-9_-]{8,64}")
_secret_filter = SecretFilter()
_PROTECTED_PREFIXES = ("telegram", "httpx", "httpcore")


def protect_loggers(*secrets: str) -> None:
    """Attach the secret filter to every PTB/httpx logger (filters are not inherited by children).

    Also keeps PTB's own loggers at INFO unless configured explicitly: at DEBUG they print the
    base URL (with the token) and every request's parameters (message texts).
    """
    _secret_filter.secrets.update(s for s in secrets if s)
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in _PROTECTED_PREFIXES]
    for name in {*names, *_PROTECTED_PREFIXES, "telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Updater"}:
        log = logging.getLogger(name)
        if _secret_filter not in log.filters:
            log.addFilter(_secret_filter)
    ptb = logging.getLogger("telegram")
    if ptb.level == logging.NOTSET:
        ptb.setLevel(logging.INFO)


# --- the bot -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BotConfig:
    token: str
    base_url: str = DEFAULT_BASE_URL
    base_file_url: str = DEFAULT_BASE_FILE_URL
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    write_timeout: float = 30.0  # documents
    poll_timeout: int = 25  # getUpdates long-poll seconds
    proxy: str | None = None
    limits: RateLimits = RateLimits()

    @property
    def bot_id(self) -> int:
        """The bot's user id: the token's public prefix (``123456:ABC…``)."""
        prefix = self.token.split(":", 1)[0]
        return int(prefix) if prefix.isdigit() else 0


def build_bot(config: BotConfig, *, rate_limiter: ChatRateLimiter | None = None) -> ExtBot:
    if not config.token:
        raise ValueError("TELEGRAM_BOT_TOKEN is empty")
    protect_loggers(config.token)
    request = HTTPXRequest(
        connection_pool_size=8,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        write_timeout=config.write_timeout,
        media_write_timeout=config.write_timeout,
        pool_timeout=5.0,
        proxy=config.proxy,
    )
    updates_request = HTTPXRequest(
        connection_pool_size=1,
        connect_timeout=config.connect_timeout,
        # The long poll holds the connection open for poll_timeout seconds.
        read_timeout=config.poll_timeout + config.read_timeout,
        pool_timeout=5.0,
        proxy=config.proxy,
    )
    return ExtBot(
        token=config.token,
        base_url=config.base_url,
        base_file_url=config.base_file_url,
        request=request,
        get_updates_request=updates_request,
        rate_limiter=rate_limiter if rate_limiter is not None else ChatRateLimiter(config.limits),
    )


class BotCaller:
    """Calls a bot's coroutines from sync code on an event loop running in *another* thread.

    ``call(coro)`` blocks until the coroutine finishes and re-raises its exception mapped by
    :func:`classify`. Database work stays in the caller's thread (Django connections are
    per-thread); only the HTTP calls hop to the loop. In ``runbot`` the loop is the
    Application's own (the sync handler runs in a worker thread meanwhile).
    """

    def __init__(self, bot: ExtBot, loop: asyncio.AbstractEventLoop, *, call_timeout: float = 180.0) -> None:
        self.bot = bot
        self.loop = loop
        self.call_timeout = call_timeout

    def call(self, awaitable: Awaitable[T]) -> T:
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self.loop)
        try:
            return future.result(self.call_timeout)
        except TimeoutError as exc:
            future.cancel()
            raise RetryLater("Bot API call did not finish in time") from exc
        except tg_error.InvalidToken:
            # PTB's message quotes the token: do not chain it into tracebacks (task results, logs).
            raise PermanentTelegramError("The bot token was rejected by the Bot API") from None
        except tg_error.TelegramError as exc:
            raise classify(exc) from exc

    # -- the calls the app makes ---------------------------------------------------------------
    def send_text(self, chat_id: int, text: str, *, reply_markup: Any = None) -> list[Any]:
        """Send ``text`` split under the limit; the keyboard goes on the last chunk."""
        parts = split_text(text)
        return [
            self.call(
                self.bot.send_message(
                    chat_id=chat_id, text=part, reply_markup=reply_markup if i == len(parts) - 1 else None
                )
            )
            for i, part in enumerate(parts)
        ]

    def edit_text(self, chat_id: int, message_id: int, text: str, *, reply_markup: Any = None) -> Any:
        """Replace a message's text (it must fit one message); an unchanged text is not an error."""
        try:
            return self.call(
                self.bot.edit_message_text(
                    chat_id=chat_id, message_id=message_id, text=split_text(text)[0], reply_markup=reply_markup
                )
            )
        except PermanentTelegramError as exc:
            if "message is not modified" in str(exc).lower():
                return None
            raise

    def send_document(self, chat_id: int, *, filename: str, content: bytes, caption: str = "") -> Any:
        if len(content) > MAX_UPLOAD_BYTES:
            raise PermanentTelegramError(f"{filename} is larger than the Bot API upload limit")
        return self.call(
            self.bot.send_document(
                chat_id=chat_id,
                document=InputFile(content, filename=filename),
                caption=caption[:MAX_CAPTION_LENGTH] or None,
            )
        )

    def answer_callback(self, callback_query_id: str, text: str = "") -> Any:
        return self.call(self.bot.answer_callback_query(callback_query_id=callback_query_id, text=text[:200] or None))


class BotSession(BotCaller):
    """A :class:`BotCaller` with its own event loop thread, for tasks and commands. A context
    manager: entering initialises the bot (one ``getMe``), leaving shuts it down."""

    def __init__(self, bot: ExtBot, *, call_timeout: float = 180.0) -> None:
        super().__init__(bot, asyncio.new_event_loop(), call_timeout=call_timeout)
        self._thread = threading.Thread(target=self.loop.run_forever, name="telegram-bot-loop", daemon=True)
        self._started = False

    def __enter__(self) -> BotSession:
        self._thread.start()
        self._started = True
        try:
            self.call(self.bot.initialize())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._started:
            self.loop.close()
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.bot.shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self._started = False


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


__all__ = [
    "BotConfig",
    "BotSession",
    "ChatGone",
    "ChatRateLimiter",
    "PermanentTelegramError",
    "RateLimits",
    "RetryLater",
    "TelegramFailure",
    "build_bot",
    "classify",
    "protect_loggers",
    "BotCaller",
    "split_text",
]

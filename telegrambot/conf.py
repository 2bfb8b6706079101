"""The bot's settings, read at call time (so tests can override them) with safe defaults.

Only TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET are required to switch features on; the rest
tune behaviour. See the README's Telegram section for the full list.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings

from medai.integrations.telegram import DEFAULT_BASE_FILE_URL, DEFAULT_BASE_URL, BotConfig, RateLimits


def _get(name: str, default):
    return getattr(settings, name, default)


def bot_token() -> str:
    return _get("TELEGRAM_BOT_TOKEN", "") or ""


def bot_enabled() -> bool:
    return bool(bot_token())


def webhook_secret() -> str:
    return _get("TELEGRAM_WEBHOOK_SECRET", "") or ""


def bot_username() -> str:
    return (_get("TELEGRAM_BOT_USERNAME", "") or "").lstrip("@")


def link_code_ttl_hours() -> int:
    return int(_get("TELEGRAM_LINK_CODE_TTL_HOURS", 72))


def link_max_failures() -> int:
    return int(_get("TELEGRAM_LINK_MAX_FAILURES", 5))


def link_failure_window_minutes() -> int:
    return int(_get("TELEGRAM_LINK_FAILURE_WINDOW_MINUTES", 60))


def default_digest_time() -> time:
    raw = str(_get("TELEGRAM_DIGEST_TIME", "09:00"))
    hours, minutes = raw.split(":", 1)
    return time(int(hours), int(minutes))


def failure_batch_minutes() -> int:
    """Pipeline failures of one clinic are told at most once per this many minutes, batched."""
    return int(_get("TELEGRAM_FAILURE_BATCH_MINUTES", 15))


def outbox_max_age_hours() -> int:
    """Events older than this are dropped unsent (stale), e.g. after a long outage."""
    return int(_get("TELEGRAM_OUTBOX_MAX_AGE_HOURS", 24))


def bot_config() -> BotConfig:
    return BotConfig(
        token=bot_token(),
        base_url=_get("TELEGRAM_API_BASE_URL", DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
        base_file_url=_get("TELEGRAM_API_FILE_URL", DEFAULT_BASE_FILE_URL) or DEFAULT_BASE_FILE_URL,
        connect_timeout=float(_get("TELEGRAM_CONNECT_TIMEOUT", 10.0)),
        read_timeout=float(_get("TELEGRAM_READ_TIMEOUT", 15.0)),
        write_timeout=float(_get("TELEGRAM_WRITE_TIMEOUT", 30.0)),
        poll_timeout=int(_get("TELEGRAM_POLL_TIMEOUT", 25)),
        proxy=_get("TELEGRAM_PROXY_URL", "") or None,
        limits=RateLimits(
            overall_per_second=float(_get("TELEGRAM_RATE_OVERALL", 30.0)),
            per_chat_per_second=float(_get("TELEGRAM_RATE_PER_CHAT", 1.0)),
            per_chat_burst=int(_get("TELEGRAM_RATE_PER_CHAT_BURST", 1)),
            per_group_per_minute=float(_get("TELEGRAM_RATE_PER_GROUP_MINUTE", 20.0)),
            max_retry_after=float(_get("TELEGRAM_MAX_RETRY_AFTER", 30.0)),
        ),
    )

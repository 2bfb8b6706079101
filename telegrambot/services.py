"""Writes of the bot: link codes, linking and unlinking chats, the brute-force brake, update claims.

Delivery of notifications and digests lives in :mod:`telegrambot.notifications`; the handling of one
update in :mod:`telegrambot.dialogs`.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from clinics.models import Clinic
from medai.integrations.telegram import BotSession, build_bot
from telegrambot import conf
from telegrambot.models import ChatLink, LinkCode, LinkThrottle, ProcessedUpdate, Role, hash_link_code

logger = logging.getLogger("medai.telegram")

# token_urlsafe(24): 32 characters of [A-Za-z0-9_-], 192 random bits — fits Telegram's 64-character
# ``start`` parameter and its alphabet.
CODE_BYTES = 24
_CODE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_RU_FAMILY = {"ru", "uk", "be", "kk"}


def language_for(language_code: str | None) -> str:
    """The UI language for a Telegram user's ``language_code`` (Russian or English)."""
    from django.conf import settings

    if not language_code:
        default = settings.LANGUAGE_CODE.split("-")[0]
        return default if default in {"ru", "en"} else "ru"
    return "ru" if language_code.lower().split("-")[0] in _RU_FAMILY else "en"


def open_session() -> BotSession:
    """A bot session for sync code (tasks, commands). Raises ValueError if no token is set."""
    return BotSession(build_bot(conf.bot_config()))


# --- link codes ------------------------------------------------------------------------------------
def link_code_create(
    *, clinic: Clinic, role: str, label: str = "", created_by=None, ttl_hours: int | None = None
) -> tuple[LinkCode, str]:
    """A new one-time code; returns (row, raw code). Only the hash is stored: show the code once."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    hours = ttl_hours if ttl_hours is not None else conf.link_code_ttl_hours()
    if hours <= 0:
        raise ValueError("ttl_hours must be positive")
    code = secrets.token_urlsafe(CODE_BYTES)
    link_code = LinkCode.objects.create(
        clinic=clinic,
        role=role,
        label=label[:150],
        code_hash=hash_link_code(code),
        created_by=created_by if getattr(created_by, "pk", None) else None,
        expires_at=timezone.now() + timedelta(hours=hours),
    )
    return link_code, code


def link_code_revoke(*, link_code: LinkCode) -> bool:
    now = timezone.now()
    return bool(LinkCode.objects.filter(pk=link_code.pk, used_at__isnull=True, expires_at__gt=now).update(expires_at=now))


def bot_username(*, session_factory=open_session) -> str:
    """``TELEGRAM_BOT_USERNAME``, else the bot's username from getMe (cached for a day)."""
    configured = conf.bot_username()
    if configured or not conf.bot_enabled():
        return configured
    key = f"telegram:bot-username:{conf.bot_config().bot_id}"
    cached = cache.get(key)
    if cached:
        return cached
    try:
        with session_factory() as session:
            username = session.bot.username
    except Exception as exc:  # the admin still shows the code; the link needs the name
        logger.warning("could not fetch the bot's username: %s", type(exc).__name__)
        return ""
    cache.set(key, username, 24 * 3600)
    return username


def deep_link(code: str, *, username: str | None = None) -> str:
    name = username if username is not None else bot_username()
    return f"https://t.me/{name}?start={code}" if name else ""


# --- linking ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkOutcome:
    status: str  # linked | already_linked | throttled | unknown | expired | used
    link: ChatLink | None = None


class _NotRedeemed(Exception):
    pass


def _throttled(chat_id: int) -> bool:
    cutoff = timezone.now() - timedelta(minutes=conf.link_failure_window_minutes())
    return LinkThrottle.objects.filter(
        chat_id=chat_id, window_started_at__gt=cutoff, failures__gte=conf.link_max_failures()
    ).exists()


def _record_failure(chat_id: int) -> None:
    now = timezone.now()
    cutoff = now - timedelta(minutes=conf.link_failure_window_minutes())
    if LinkThrottle.objects.filter(chat_id=chat_id, window_started_at__gt=cutoff).update(failures=F("failures") + 1):
        return
    try:
        with transaction.atomic():
            LinkThrottle.objects.update_or_create(chat_id=chat_id, defaults={"failures": 1, "window_started_at": now})
    except IntegrityError:  # a concurrent first failure
        LinkThrottle.objects.filter(chat_id=chat_id).update(failures=F("failures") + 1)


def chat_link_redeem(
    *, chat_id: int, code: str, chat_type: str = "private", title: str = "", user_id: int | None = None, language: str = "ru"
) -> LinkOutcome:
    """``/start <code>``: link the chat to the code's clinic, or say why not (and count the miss).

    A chat that already has a link keeps it (the code stays unused). A chat with too many wrong
    codes in the window is refused without even looking the code up.
    """
    existing = ChatLink.objects.active().filter(chat_id=chat_id).select_related("clinic").first()
    if existing is not None:
        return LinkOutcome("already_linked", existing)
    if _throttled(chat_id):
        return LinkOutcome("throttled")
    code = code.strip()
    code_hash = hash_link_code(code) if _CODE_SHAPE.match(code) else None
    now = timezone.now()
    try:
        with transaction.atomic():
            # One conditional UPDATE: of two chats racing for one code, exactly one wins.
            claimed = code_hash is not None and LinkCode.objects.filter(
                code_hash=code_hash, used_at__isnull=True, expires_at__gt=now, clinic__is_active=True
            ).update(used_at=now, used_by_chat_id=chat_id)
            if not claimed:
                raise _NotRedeemed
            link_code = LinkCode.objects.select_related("clinic").get(code_hash=code_hash)
            link = ChatLink.objects.create(
                clinic=link_code.clinic,
                chat_id=chat_id,
                chat_type=chat_type[:16],
                title=title[:200],
                role=link_code.role,
                user_id=user_id,
                language=language,
                link_code=link_code,
                last_seen_at=now,
            )
    except _NotRedeemed:
        status = "unknown"
        if code_hash is not None:
            row = LinkCode.objects.filter(code_hash=code_hash, clinic__is_active=True).first()
            if row is not None:
                status = "used" if row.is_used else "expired"
        _record_failure(chat_id)
        logger.info("chat link refused (%s)", status)
        return LinkOutcome(status)
    except IntegrityError:
        # The same chat was linked by a concurrent /start: the code claim above was rolled back.
        existing = ChatLink.objects.active().filter(chat_id=chat_id).select_related("clinic").first()
        return LinkOutcome("already_linked", existing)
    LinkThrottle.objects.filter(chat_id=chat_id).delete()
    logger.info("chat linked to clinic %s as %s", link.clinic_id, link.role)
    return LinkOutcome("linked", link)


def chat_unlink(*, link: ChatLink, reason: str) -> bool:
    done = ChatLink.objects.filter(pk=link.pk, unlinked_at__isnull=True).update(
        unlinked_at=timezone.now(), unlink_reason=reason
    )
    if done:
        logger.info("chat link %s removed (%s)", link.pk, reason)
    return bool(done)


def chat_unlink_gone(*, chat_id: int) -> int:
    """The bot was blocked or removed from the chat: drop the link (Telegram says 403 from now on)."""
    count = ChatLink.objects.filter(chat_id=chat_id, unlinked_at__isnull=True).update(
        unlinked_at=timezone.now(), unlink_reason=ChatLink.UnlinkReason.BLOCKED
    )
    if count:
        logger.info("chat link removed: the bot was blocked or removed from the chat")
    return count


def chat_touch(*, link: ChatLink, language: str, title: str = "") -> None:
    """Remember the chat's language (for notifications) and when it was last active."""
    fields = {"last_seen_at": timezone.now()}
    if language and language != link.language:
        fields["language"] = language
        link.language = language
    if title and title[:200] != link.title:
        fields["title"] = title[:200]
    ChatLink.objects.filter(pk=link.pk).update(**fields)


# --- updates ---------------------------------------------------------------------------------------
def processed_update_claim(*, bot_id: int, update_id: int) -> bool:
    """True the first time an update is seen; False for a webhook retry or a re-delivered task."""
    try:
        with transaction.atomic():
            ProcessedUpdate.objects.create(bot_id=bot_id, update_id=update_id)
    except IntegrityError:
        return False
    return True


def housekeeping(*, now=None) -> dict[str, int]:
    """Forget old update ids, finished throttle windows and long-dead unused codes."""
    now = now or timezone.now()
    window = timedelta(minutes=conf.link_failure_window_minutes())
    updates, _ = ProcessedUpdate.objects.filter(received_at__lt=now - timedelta(days=7)).delete()
    throttles, _ = LinkThrottle.objects.filter(window_started_at__lt=now - window).delete()
    codes, _ = LinkCode.objects.filter(used_at__isnull=True, expires_at__lt=now - timedelta(days=90)).delete()
    return {"updates": updates, "throttles": throttles, "codes": codes}

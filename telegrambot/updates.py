"""One incoming update, from the webhook or from long polling, handled exactly once.

The webhook view only checks the secret, parses strictly and enqueues :func:`update_process`;
``runbot`` calls :func:`update_handle` directly. Both claim the ``update_id`` first, so a webhook
retry or a task re-delivered after a worker died is not answered twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import close_old_connections
from telegram import Update

from medai.integrations.telegram import BotCaller
from telegrambot import conf, dialogs, services

logger = logging.getLogger("medai.telegram")

ALLOWED_UPDATES = ("message", "callback_query")
MAX_BODY_BYTES = 256 * 1024


def parse_payload(body: bytes) -> tuple[str, dict[str, Any] | None]:
    """("ok", data) for an update we handle, ("ignored", None) for a well-formed update of another
    kind, ("invalid", None) for anything else. Never raises."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "invalid", None
    if not isinstance(data, dict):
        return "invalid", None
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        return "invalid", None
    kinds = [key for key in data if key != "update_id"]
    if len(kinds) != 1 or kinds[0] not in ALLOWED_UPDATES:
        return "ignored", None
    body_object = data[kinds[0]]
    if not isinstance(body_object, dict):
        return "invalid", None
    if kinds[0] == "message":
        chat = body_object.get("chat")
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or not isinstance(body_object.get("message_id"), int):
            return "invalid", None
    else:
        if not isinstance(body_object.get("id"), str) or not isinstance(body_object.get("from"), dict):
            return "invalid", None
    try:
        Update.de_json(data, None)
    except Exception:  # PTB rejects the shape: acknowledge, do not retry forever
        return "invalid", None
    return "ok", data


def update_handle(update: Update, caller: BotCaller) -> str:
    if not services.processed_update_claim(bot_id=conf.bot_config().bot_id, update_id=update.update_id):
        return "duplicate"
    try:
        return dialogs.handle_update(update, caller)
    except Exception:
        logger.exception("update %s could not be handled", update.update_id)
        _apologise(update, caller)
        return "error"


def _apologise(update: Update, caller: BotCaller) -> None:
    from django.utils import translation

    from telegrambot import texts

    chat = update.effective_chat
    if chat is None:
        return
    user = update.effective_user
    try:
        with translation.override(services.language_for(user.language_code if user else None)):
            caller.send_text(chat.id, texts.error())
    except Exception:
        logger.warning("could not tell chat about the error")


def update_process(data: dict[str, Any], *, session_factory=None) -> str:
    """The webhook's task: handle one (already validated) update in a bot session."""
    if not conf.bot_enabled():
        return "disabled"
    with (session_factory or services.open_session)() as session:
        update = Update.de_json(data, session.bot)
        return update_handle(update, session)


def update_handle_polled(update: Update, caller: BotCaller) -> str:
    """``runbot``: the same, in a long-running process whose DB connection may have gone stale."""
    close_old_connections()
    try:
        return update_handle(update, caller)
    finally:
        close_old_connections()

"""What the bot does with one update: commands and button presses, in the user's language.

Sync code (the ORM stays in this thread); replies go out through a
:class:`~medai.integrations.telegram.BotCaller`. The same :func:`handle_update` serves long polling
(``runbot``) and the webhook (via a task), so both modes behave identically.

Unlinked chats get ``/start`` and ``/help`` only. Every read is scoped to the chat's clinic, and
button data is re-checked against it (a button is never trusted to name another clinic's call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import translation
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from medai.integrations.telegram import BotCaller, ChatGone, TelegramFailure
from telegrambot import selectors, services, texts
from telegrambot.models import ChatLink

logger = logging.getLogger("medai.telegram")

MAX_QUERY_LENGTH = 100
LINKED_COMMANDS = ("stats", "report", "limits", "calls", "find", "unlink")


@dataclass(frozen=True)
class Incoming:
    chat_id: int
    chat_type: str
    title: str
    user_id: int | None
    language: str


def _incoming(message: Message, update: Update) -> Incoming:
    chat = message.chat
    user = update.effective_user
    title = chat.title or " ".join(p for p in (chat.first_name, chat.last_name) if p) or ""
    return Incoming(
        chat_id=chat.id,
        chat_type=chat.type,
        title=title,
        user_id=user.id if user else None,
        language=services.language_for(user.language_code if user else None),
    )


def handle_update(update: Update, caller: BotCaller) -> str:
    """Handle one update; returns a short outcome for logs and tests. Never raises for Telegram
    errors: a chat that blocked the bot is unlinked, others are logged."""
    try:
        if update.callback_query is not None:
            return _on_callback(update.callback_query, update, caller)
        message = update.message
        if message is not None and message.text:
            return _on_message(message, update, caller)
        return "ignored"
    except ChatGone:
        chat = update.effective_chat
        if chat is not None:
            services.chat_unlink_gone(chat_id=chat.id)
        return "chat_gone"
    except TelegramFailure as exc:
        logger.warning("reply failed: %s", exc)
        return "reply_failed"


# --- messages --------------------------------------------------------------------------------------
def _parse_command(text: str, bot_username: str | None) -> tuple[str | None, str]:
    if not text.startswith("/"):
        return None, text.strip()
    head, _, args = text.partition(" ")
    name, _, target = head[1:].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return "", ""  # addressed to another bot in a group
    return name.lower(), args.strip()


def _on_message(message: Message, update: Update, caller: BotCaller) -> str:
    incoming = _incoming(message, update)
    command, args = _parse_command(message.text or "", _username(caller))
    if command == "":
        return "ignored"
    link = selectors.active_link(incoming.chat_id)
    with translation.override(incoming.language):
        if command == "start":
            return _start(incoming, args, link, caller)
        if command == "help" or (command is None and link is None and incoming.chat_type == "private"):
            text = texts.help_linked(link.clinic) if link else texts.help_unlinked()
            caller.send_text(incoming.chat_id, text)
            return "help"
        if link is None:
            if command is None:
                return "ignored"  # chatter in a group the bot is not linked to
            caller.send_text(incoming.chat_id, texts.not_linked())
            return "not_linked"
        services.chat_touch(link=link, language=incoming.language, title=incoming.title)
        if command is None:
            if incoming.chat_type == "private":
                caller.send_text(incoming.chat_id, texts.help_linked(link.clinic))
                return "help"
            return "ignored"
        if command not in LINKED_COMMANDS:
            caller.send_text(incoming.chat_id, texts.unknown_command())
            return "unknown"
        return COMMANDS[command](link, args, caller)


def _username(caller: BotCaller) -> str | None:
    try:
        return caller.bot.username
    except RuntimeError:  # not initialised (never in practice: sessions initialise the bot)
        return None


def _start(incoming: Incoming, code: str, link: ChatLink | None, caller: BotCaller) -> str:
    if not code:
        if link is not None:
            caller.send_text(incoming.chat_id, texts.help_linked(link.clinic))
        else:
            caller.send_text(incoming.chat_id, texts.help_unlinked())
        return "help"
    outcome = services.chat_link_redeem(
        chat_id=incoming.chat_id,
        code=code,
        chat_type=incoming.chat_type,
        title=incoming.title,
        user_id=incoming.user_id,
        language=incoming.language,
    )
    clinic = outcome.link.clinic if outcome.link else None
    role = outcome.link.get_role_display() if outcome.link else ""
    caller.send_text(incoming.chat_id, texts.link_result(outcome.status, clinic, str(role)))
    return outcome.status


def _unlink(link: ChatLink, args: str, caller: BotCaller) -> str:
    services.chat_unlink(link=link, reason=ChatLink.UnlinkReason.USER)
    caller.send_text(link.chat_id, texts.unlinked(link.clinic))
    return "unlinked"


def _stats_keyboard(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(("• " if period == current else "") + texts.period_label(period), callback_data=f"stats:{period}")
                for period in selectors.STATS_PERIODS
            ]
        ]
    )


def _stats_text(link: ChatLink, period: str) -> str:
    first, last = selectors.stats_period(link.clinic, period)
    figures = selectors.clinic_figures(link.clinic, first, last)
    return texts.stats(link.clinic, period, first, last, figures)


def _stats(link: ChatLink, args: str, caller: BotCaller) -> str:
    period = args.lower() if args.lower() in selectors.STATS_PERIODS else "today"
    caller.send_text(link.chat_id, _stats_text(link, period), reply_markup=_stats_keyboard(period))
    return "stats"


def _report(link: ChatLink, args: str, caller: BotCaller) -> str:
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.period_label(p), callback_data=f"report:{p}")
                for p in selectors.REPORT_PERIODS[:2]
            ],
            [
                InlineKeyboardButton(texts.period_label(p), callback_data=f"report:{p}")
                for p in selectors.REPORT_PERIODS[2:]
            ],
        ]
    )
    caller.send_text(link.chat_id, texts.report_choose(), reply_markup=keyboard)
    return "report"


def _limits(link: ChatLink, args: str, caller: BotCaller) -> str:
    caller.send_text(link.chat_id, texts.limits(link.clinic, selectors.clinic_quota(link.clinic)))
    return "limits"


def _calls_keyboard(calls) -> InlineKeyboardMarkup | None:
    buttons = [InlineKeyboardButton(texts.button_details(i), callback_data=f"call:{call.pk}") for i, call in enumerate(calls, 1)]
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[i : i + 5] for i in range(0, len(buttons), 5)])


def _calls(link: ChatLink, args: str, caller: BotCaller) -> str:
    calls = selectors.latest_calls(link.clinic)
    text = texts.calls_list(link.clinic, calls, title=texts.latest_calls_title(link.clinic))
    caller.send_text(link.chat_id, text, reply_markup=_calls_keyboard(calls))
    return "calls"


def _find(link: ChatLink, args: str, caller: BotCaller) -> str:
    query = " ".join(args.split())[:MAX_QUERY_LENGTH]
    if len(query) < 2:
        caller.send_text(link.chat_id, texts.find_usage())
        return "find_usage"
    calls = selectors.find_calls(link.clinic, query)
    text = texts.calls_list(link.clinic, calls, title=texts.found_title(query))
    caller.send_text(link.chat_id, text, reply_markup=_calls_keyboard(calls))
    return "find"


COMMANDS = {
    "stats": _stats,
    "report": _report,
    "limits": _limits,
    "calls": _calls,
    "find": _find,
    "unlink": _unlink,
}


# --- buttons ---------------------------------------------------------------------------------------
def _on_callback(query: CallbackQuery, update: Update, caller: BotCaller) -> str:
    user = query.from_user
    language = services.language_for(user.language_code if user else None)
    message = query.message
    chat_id = message.chat.id if message is not None else None
    link = selectors.active_link(chat_id) if chat_id is not None else None
    with translation.override(language):
        if link is None:
            caller.answer_callback(query.id, texts.not_linked())
            return "not_linked"
        services.chat_touch(link=link, language=language)
        action, _, value = (query.data or "").partition(":")
        if action == "stats" and value in selectors.STATS_PERIODS:
            caller.answer_callback(query.id)
            caller.edit_text(link.chat_id, message.message_id, _stats_text(link, value), reply_markup=_stats_keyboard(value))
            return "stats"
        if action == "report" and value in selectors.REPORT_PERIODS:
            from telegrambot.notifications import report_request_for_chat

            first, last = report_request_for_chat(link=link, period=value)
            caller.answer_callback(query.id)
            caller.edit_text(link.chat_id, message.message_id, texts.report_queued(first, last))
            return "report_requested"
        if action == "call" and value.isdigit():
            card = selectors.call_card(link.clinic, int(value))
            if card is None:  # another clinic's call, or deleted: the same answer
                caller.answer_callback(query.id, texts.call_not_found())
                return "call_not_found"
            caller.answer_callback(query.id)
            caller.send_text(link.chat_id, texts.call_card(card, link.clinic.tz, link=_call_link(card)))
            return "call"
        caller.answer_callback(query.id, texts.expired_button())
        return "unknown_button"


def _call_link(card: selectors.CallCard) -> str:
    """A signed, expiring link to the call page (the same links reports carry)."""
    try:
        from reports.links import CallLinks

        page, _audio = CallLinks().for_call(card.call.pk, has_recording=False)
    except Exception:  # links are a convenience: never fail the reply for them
        logger.exception("could not build a call link")
        return ""
    return page

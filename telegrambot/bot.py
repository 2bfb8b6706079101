"""The long-polling bot (``manage.py runbot``): python-telegram-bot's Application and Updater.

Every update goes to one handler that runs :func:`telegrambot.updates.update_handle_polled` in a
worker thread (``sync_to_async``): the ORM stays synchronous, and replies hop back to the
Application's event loop through a :class:`~medai.integrations.telegram.BotCaller`. Updates are
handled one at a time, in order.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import Application, ContextTypes, TypeHandler

from medai.integrations.telegram import BotCaller, PermanentTelegramError, build_bot
from telegrambot import conf
from telegrambot.updates import ALLOWED_UPDATES, update_handle_polled

logger = logging.getLogger("medai.telegram")


async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    caller = BotCaller(context.bot, asyncio.get_running_loop())
    await sync_to_async(update_handle_polled)(update, caller)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # The error's text goes through our redacting filter; no traceback of PTB internals needed.
    logger.warning("Bot error: %s: %s", type(context.error).__name__, context.error)


def build_application() -> Application:
    application = Application.builder().bot(build_bot(conf.bot_config())).concurrent_updates(False).build()
    application.add_handler(TypeHandler(Update, on_update))
    application.add_error_handler(on_error)
    return application


def run_polling(*, drop_pending_updates: bool = False) -> None:
    """Poll until SIGINT/SIGTERM. Raises PermanentTelegramError if the token is rejected."""
    application = build_application()
    try:
        application.run_polling(
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=drop_pending_updates,
            timeout=conf.bot_config().poll_timeout,
            close_loop=False,
        )
    except InvalidToken:
        # PTB's message quotes the token: never let it reach a traceback.
        raise PermanentTelegramError("The bot token was rejected by the Bot API") from None

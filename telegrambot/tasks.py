"""django-q2 entry points: thin, take plain data, call a service."""

from __future__ import annotations


def process_update(data: dict) -> str:
    from telegrambot.updates import update_process

    return update_process(data)


def deliver_outbox() -> str:
    from telegrambot import conf
    from telegrambot.notifications import outbox_deliver

    if not conf.bot_enabled():
        return "bot disabled"
    return str(outbox_deliver())


def send_due_digests() -> str:
    from telegrambot import conf
    from telegrambot.notifications import digests_send_due

    if not conf.bot_enabled():
        return "bot disabled"
    return str(digests_send_due())


def housekeeping() -> str:
    from telegrambot.services import housekeeping as run

    return str(run())

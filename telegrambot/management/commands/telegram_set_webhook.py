"""Point Telegram at our webhook (setWebhook with the secret token), show it, or remove it."""

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from medai.integrations.telegram import TelegramFailure
from telegrambot import conf
from telegrambot.updates import ALLOWED_UPDATES

_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


class Command(BaseCommand):
    help = "Register the bot's webhook with Telegram (or --delete it, or show --info)."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Public HTTPS URL of the webhook (default: PUBLIC_BASE_URL + the route).")
        parser.add_argument("--drop-pending-updates", action="store_true", help="Discard updates not delivered yet.")
        parser.add_argument("--delete", action="store_true", help="Remove the webhook (back to long polling).")
        parser.add_argument("--info", action="store_true", help="Show the webhook Telegram has now.")
        parser.add_argument("--max-connections", type=int, default=10, help="Parallel deliveries, 1-100 (default 10).")

    def handle(self, *args, **options):
        if not conf.bot_enabled():
            raise CommandError("TELEGRAM_BOT_TOKEN is not set.")
        from telegrambot.services import open_session

        try:
            with open_session() as session:
                if options["info"]:
                    self._info(session)
                elif options["delete"]:
                    session.call(session.bot.delete_webhook(drop_pending_updates=options["drop_pending_updates"]))
                    self.stdout.write(self.style.SUCCESS("Webhook removed."))
                else:
                    self._set(session, options)
        except TelegramFailure as exc:
            raise CommandError(f"Telegram: {exc}") from exc

    def _set(self, session, options) -> None:
        secret = conf.webhook_secret()
        if not _SECRET.match(secret):
            raise CommandError(
                "TELEGRAM_WEBHOOK_SECRET must be 16-256 characters of A-Z, a-z, 0-9, _ and - "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        url = options["url"] or f"{settings.PUBLIC_BASE_URL}{reverse('telegram-webhook')}"
        if not url.startswith("https://"):
            raise CommandError(f"Telegram needs an HTTPS webhook URL, got {url}")
        if not 1 <= options["max_connections"] <= 100:
            raise CommandError("--max-connections must be between 1 and 100")
        session.call(
            session.bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=options["drop_pending_updates"],
                max_connections=options["max_connections"],
            )
        )
        self.stdout.write(self.style.SUCCESS(f"Webhook set: {url}"))

    def _info(self, session) -> None:
        info = session.call(session.bot.get_webhook_info())
        self.stdout.write(f"URL: {info.url or '(none: long polling)'}")
        self.stdout.write(f"Pending updates: {info.pending_update_count}")
        if info.last_error_message:
            self.stdout.write(f"Last error: {info.last_error_message}")

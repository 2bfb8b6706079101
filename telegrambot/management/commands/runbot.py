"""Run the Telegram bot with long polling (for deployments without a public HTTPS address).

``--once`` fetches the pending updates, handles them and exits (cron-style polling, debugging).
Starting long polling removes a webhook if one is set (Telegram allows one mode at a time).
"""

from django.core.management.base import BaseCommand, CommandError

from medai.integrations.telegram import TelegramFailure
from telegrambot import conf


class Command(BaseCommand):
    help = "Run the Telegram bot with long polling."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Handle the pending updates and exit.")
        parser.add_argument(
            "--drop-pending-updates", action="store_true", help="Discard updates that arrived while the bot was off."
        )

    def handle(self, *args, **options):
        if not conf.bot_enabled():
            raise CommandError("TELEGRAM_BOT_TOKEN is not set.")
        if options["once"]:
            self._once(drop=options["drop_pending_updates"])
            return
        from telegrambot.bot import run_polling

        self.stdout.write("Polling Telegram for updates (Ctrl+C stops)…")
        try:
            run_polling(drop_pending_updates=options["drop_pending_updates"])
        except TelegramFailure as exc:
            raise CommandError(f"Telegram: {exc}") from None

    def _once(self, *, drop: bool) -> None:
        from telegrambot.services import open_session
        from telegrambot.updates import ALLOWED_UPDATES, update_handle

        handled = 0
        try:
            with open_session() as session:
                bot = session.bot
                updates = session.call(bot.get_updates(timeout=0, allowed_updates=list(ALLOWED_UPDATES)))
                for update in updates:
                    if not drop:
                        update_handle(update, session)
                    handled += 1
                if updates:
                    # Confirm what was handled: Telegram will not send it again.
                    session.call(bot.get_updates(offset=updates[-1].update_id + 1, timeout=0, limit=1))
        except TelegramFailure as exc:
            raise CommandError(f"Telegram: {exc}") from exc
        verb = "dropped" if drop else "handled"
        self.stdout.write(f"{handled} update(s) {verb}.")

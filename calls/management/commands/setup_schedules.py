from django.core.management.base import BaseCommand

from calls.schedules import SCHEDULES, setup_schedules


class Command(BaseCommand):
    help = "Create or update the periodic tasks (idempotent: safe to run on every deploy)."

    def handle(self, *args, **options):
        created, updated = setup_schedules()
        self.stdout.write(self.style.SUCCESS(f"{len(SCHEDULES)} schedules: {created} created, {updated} updated."))

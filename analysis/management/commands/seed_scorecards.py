from django.core.management.base import BaseCommand, CommandError

from analysis.services import scorecard_ensure_default
from clinics.models import Clinic


class Command(BaseCommand):
    help = "Give clinics the default dental scorecard for every call type they lack (existing ones are kept)."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", action="append", help="Clinic slug (repeatable); default: every active clinic")

    def handle(self, *args, clinic=None, **options):
        clinics = Clinic.objects.filter(is_active=True)
        if clinic:
            clinics = Clinic.objects.filter(slug__in=clinic)
            missing = set(clinic) - set(clinics.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No clinic with slug {', '.join(sorted(missing))}")
        created = sum(scorecard_ensure_default(c, actor="manage.py") for c in clinics)
        self.stdout.write(self.style.SUCCESS(f"{created} scorecard(s) created."))

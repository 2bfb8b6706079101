from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from analysis.models import Analysis, PeriodSummary
from analysis.services import period_summaries_generate_due, period_summary_generate
from clinics.models import Administrator, Clinic


class Command(BaseCommand):
    help = (
        "Generate weekly/monthly coaching summaries: --due for every period that closed (what the hourly "
        "schedule does), or one clinic's period with --clinic, --kind and --date."
    )

    def add_arguments(self, parser):
        parser.add_argument("--due", action="store_true", help="All closed periods not generated yet, every clinic")
        parser.add_argument("--clinic", help="Clinic slug")
        parser.add_argument("--kind", choices=PeriodSummary.Kind.values, default=PeriodSummary.Kind.WEEK)
        parser.add_argument("--date", type=date.fromisoformat, help="Any day of the period, YYYY-MM-DD (default: today, clinic time)")
        parser.add_argument("--administrators", action="store_true", help="Also one summary per administrator")
        parser.add_argument("--no-llm", action="store_true", help="Templated recommendations only (no LLM cost)")

    def handle(self, *args, due=False, clinic=None, kind="week", date=None, administrators=False, no_llm=False, **options):
        if due:
            count = period_summaries_generate_due()
            self.stdout.write(self.style.SUCCESS(f"{count} summary(ies) generated."))
            return
        if not clinic:
            raise CommandError("Give --due, or --clinic SLUG (with --kind and --date).")
        clinic_obj = Clinic.objects.filter(slug=clinic).first()
        if clinic_obj is None:
            raise CommandError(f"No clinic with slug {clinic!r}")
        day = date or timezone.now().astimezone(clinic_obj.tz).date()
        targets = [None]
        if administrators:
            ids = Analysis.objects.filter(call__clinic=clinic_obj).values("call__administrator_id")
            targets += list(Administrator.objects.filter(clinic=clinic_obj, pk__in=ids))
        for administrator in tqdm(targets, desc="Summaries", unit="summary", disable=options["verbosity"] == 0):
            summary = period_summary_generate(
                clinic=clinic_obj, kind=kind, day=day, administrator=administrator, use_llm=not no_llm
            )
            self.stdout.write(
                f"{summary}: {summary.calls_scored} scored call(s), average {summary.average_score or '—'}, "
                f"recommendations by {summary.recommendations_source}"
            )

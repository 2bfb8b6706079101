from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from clinics.models import Clinic
from reports import rollups


class Command(BaseCommand):
    help = (
        "Recompute the BI roll-ups (bi_daily_metrics, bi_daily_criteria, bi_call_details, "
        "bi_period_recommendations): every day of every clinic by default, or --clinic/--from/--to."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clinic", action="append", help="Clinic slug (repeatable; default: all clinics)")
        parser.add_argument("--from", dest="date_from", type=date.fromisoformat, help="YYYY-MM-DD, clinic time")
        parser.add_argument("--to", dest="date_to", type=date.fromisoformat, help="YYYY-MM-DD, clinic time")
        parser.add_argument("--dirty", action="store_true", help="Only the days marked for recompute (what runs every minute)")
        parser.add_argument("--workers", type=int, default=1, help="Clinics rebuilt at once (PostgreSQL; default 1)")

    def handle(self, *args, clinic=None, date_from=None, date_to=None, dirty=False, workers=1, **options):
        if date_from and date_to and date_to < date_from:
            raise CommandError("--to is before --from")
        if dirty:
            count = rollups.rollups_refresh_dirty(limit=100_000)
            self.stdout.write(self.style.SUCCESS(f"{count} day(s) recomputed."))
            return
        clinics = Clinic.objects.order_by("pk")
        if clinic:
            clinics = clinics.filter(slug__in=clinic)
            missing = set(clinic) - set(clinics.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No clinic with slug {', '.join(sorted(missing))}")
        ids = list(clinics.values_list("pk", flat=True))
        total = rollups.RollupCounts()
        if workers > 1:
            total = rollups.rollups_rebuild(clinic_ids=ids, date_from=date_from, date_to=date_to, workers=workers)
        else:
            for clinic_id in tqdm(ids, desc="Clinics", unit="clinic", disable=options["verbosity"] == 0):
                total += rollups.rollups_rebuild(clinic_ids=[clinic_id], date_from=date_from, date_to=date_to)
        summaries = rollups.period_recommendations_sync(full=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"{total.metrics} metric row(s), {total.criteria} criterion row(s), {total.details} call(s), "
                f"{summaries} summary(ies)."
            )
        )

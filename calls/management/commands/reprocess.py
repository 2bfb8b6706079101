from datetime import date

from django.core.management.base import BaseCommand, CommandError

from calls import pipeline
from calls.models import Call
from calls.services import calls_reprocess_range
from clinics.models import Clinic


class Command(BaseCommand):
    help = "Restart calls from a chosen step: one call (--call) or a clinic's date range (--from/--to)."

    def add_arguments(self, parser):
        parser.add_argument("--stage", required=True, choices=pipeline.REPROCESS_STEPS)
        parser.add_argument("--call", type=int, action="append", help="Call id (repeatable)")
        parser.add_argument("--clinic", help="Clinic slug, with --from/--to")
        parser.add_argument("--from", dest="date_from", type=date.fromisoformat, help="YYYY-MM-DD, clinic time")
        parser.add_argument("--to", dest="date_to", type=date.fromisoformat, help="YYYY-MM-DD, clinic time")
        parser.add_argument("--only", action="append", help="Only calls now in this stage (e.g. failed)")
        parser.add_argument("--inline", action="store_true", help="Process here instead of queueing for the worker")

    def handle(self, *args, stage, call=None, clinic=None, date_from=None, date_to=None, only=None, inline=False, **opts):
        if call:
            queryset = Call.objects.filter(pk__in=call)
            count = pipeline.reprocess_queryset(queryset, from_step=stage, user_label="manage.py")
        elif clinic and date_from and date_to:
            clinic_obj = Clinic.objects.filter(slug=clinic).first()
            if clinic_obj is None:
                raise CommandError(f"No clinic with slug {clinic!r}")
            queryset = Call.objects.filter(clinic=clinic_obj, local_date__range=(date_from, date_to))
            count = calls_reprocess_range(
                clinic_ids=[clinic_obj.pk], date_from=date_from, date_to=date_to, from_step=stage, stages=only,
                user_label="manage.py",
            )
        else:
            raise CommandError("Give --call ID, or --clinic with --from and --to.")
        if inline:
            for call_id in queryset.filter(stage__in=pipeline.WORK_STAGES).values_list("pk", flat=True):
                pipeline.drive(call_id)
        self.stdout.write(self.style.SUCCESS(f"{count} call(s) restarted from {stage}."))

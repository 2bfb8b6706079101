from django.core.management.base import BaseCommand
from tqdm import tqdm

from calls import pipeline
from calls.models import Call


class Command(BaseCommand):
    help = "Process calls that are waiting in a work stage (in this process, or by queueing them)."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", help="Clinic slug (default: all clinics)")
        parser.add_argument("--limit", type=int, default=1000)
        parser.add_argument("--queue", action="store_true", help="Queue for the worker instead of running here")

    def handle(self, *args, clinic=None, limit=1000, queue=False, **options):
        queryset = Call.objects.filter(stage__in=pipeline.WORK_STAGES).order_by("started_at")
        if clinic:
            queryset = queryset.filter(clinic__slug=clinic)
        ids = list(queryset.values_list("pk", flat=True)[:limit])
        outcomes: dict[str, int] = {}
        for call_id in tqdm(ids, desc="Processing", unit="call", disable=options["verbosity"] == 0):
            if queue:
                pipeline.enqueue_call(Call.objects.get(pk=call_id))
                outcome = "queued"
            else:
                outcome = pipeline.drive(call_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items())) or "nothing to do"
        self.stdout.write(self.style.SUCCESS(f"{len(ids)} call(s): {summary}"))

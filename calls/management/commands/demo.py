from django.core.management.base import BaseCommand
from tqdm import tqdm

from calls import pipeline
from calls.demo import demo_setup
from calls.models import Call


class Command(BaseCommand):
    help = "Create the demo clinic with 26 synthetic calls and process them offline."

    def add_arguments(self, parser):
        parser.add_argument("--keep-dates", action="store_true", help="Keep the calls' original dates (no shift to this week).")
        parser.add_argument("--queue", action="store_true", help="Hand the calls to the worker instead of processing them here.")

    def handle(self, *args, keep_dates=False, queue=False, **options):
        result = demo_setup(keep_dates=keep_dates)
        pending = [c for c in result.calls if not Call.objects.get(pk=c.pk).is_terminal]
        if queue:
            for call in pending:
                pipeline.enqueue_call(Call.objects.get(pk=call.pk))
        else:
            for call in tqdm(pending, desc="Processing demo calls", unit="call", disable=options["verbosity"] == 0):
                pipeline.drive(call.pk)
        stages = Call.objects.filter(clinic=result.clinic).values_list("stage", "skip_reason")
        done = sum(1 for stage, _ in stages if stage == "done")
        skipped = [reason for stage, reason in stages if stage == "skipped"]
        failed = sum(1 for stage, _ in stages if stage == "failed")
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo clinic “{result.clinic.name}”: {len(stages)} calls ({result.created} new), {done} processed, {len(skipped)} skipped ({', '.join(sorted(skipped))}), {failed} failed."))
        out.write("")
        out.write("Admin:    http://127.0.0.1:8000/admin/")
        out.write(f"Login:    {result.username}")
        out.write(f"Password: {result.password}   (new on every run of `manage.py demo`)")
        out.write(f"API key:  {result.api_key}   (X-API-Key header; shown once)")

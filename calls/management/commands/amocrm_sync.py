from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from calls.amocrm.connection import CrmUnavailable
from calls.amocrm.sync import amocrm_sync_incremental, amocrm_sync_range, lease_acquire, lease_release
from clinics.models import CrmConnection
from medai.http import HttpError


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Sync calls from a clinic's amoCRM: a range of clinic-local days (--from/--to), or, without them, "
        "the scheduled incremental sync from the connection's cursor. Safe to repeat: stored calls are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clinic", required=True, help="Clinic slug")
        parser.add_argument("--from", dest="date_from", help="First day, YYYY-MM-DD (clinic time)")
        parser.add_argument("--to", dest="date_to", help="Last day, YYYY-MM-DD (clinic time); default: --from")
        parser.add_argument("--wait", type=float, default=60.0, help="Seconds to wait for a running sync to finish")

    def handle(self, *args, clinic, date_from=None, date_to=None, wait=60.0, **options):
        connection = CrmConnection.objects.select_related("clinic").filter(clinic__slug=clinic).first()
        if connection is None:
            raise CommandError(f"clinic {clinic!r} has no amoCRM connection")
        if connection.status != CrmConnection.Status.ACTIVE:
            raise CommandError(f"the amoCRM connection is {connection.get_status_display()}: {connection.last_error}")
        if date_from is None:
            if date_to is not None:
                raise CommandError("--to needs --from")
            result = amocrm_sync_incremental(connection_id=connection.pk)
            if "error" in result:
                raise CommandError(result["error"])
            self.stdout.write(self.style.SUCCESS(", ".join(f"{k}: {v}" for k, v in result.items())))
            return
        first, last = _day(date_from), _day(date_to or date_from)
        if last < first:
            raise CommandError("--to is before --from")
        if not lease_acquire(connection.pk, wait=wait):
            raise CommandError("another sync of this clinic is running; try again later")
        bar = tqdm(desc="amoCRM", unit="call", disable=options["verbosity"] == 0)
        try:

            def progress(phase: str, done: int, total: int) -> None:
                bar.set_description(f"amoCRM {phase}")
                bar.total = total
                bar.n = done
                bar.refresh()

            stats = amocrm_sync_range(connection=connection, date_from=first, date_to=last, progress=progress)
        except (CrmUnavailable, HttpError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
            lease_release(connection.pk)
        summary = ", ".join(f"{key}: {value}" for key, value in stats.as_dict().items())
        self.stdout.write(self.style.SUCCESS(f"{first}..{last}: {summary}"))

import shutil
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone, translation

from clinics.models import Administrator, Clinic
from reports import services
from reports.models import Report


class Command(BaseCommand):
    help = "Build a PDF or XLSX report here (not in the worker) and print the file's path."

    def add_arguments(self, parser):
        parser.add_argument("clinic", help="Clinic slug")
        parser.add_argument("--kind", choices=Report.Kind.values, default=Report.Kind.PDF)
        parser.add_argument("--from", dest="date_from", type=date.fromisoformat, help="YYYY-MM-DD, clinic time (default: 30 days ago)")
        parser.add_argument("--to", dest="date_to", type=date.fromisoformat, help="YYYY-MM-DD, clinic time (default: today)")
        parser.add_argument("--administrator", type=int, help="Administrator id: a per-administrator report")
        parser.add_argument("--output", type=Path, help="Also copy the file here (a file or a folder)")

    def handle(self, *args, clinic, kind, date_from=None, date_to=None, administrator=None, output=None, **options):
        clinic_obj = Clinic.objects.filter(slug=clinic).first()
        if clinic_obj is None:
            raise CommandError(f"No clinic with slug {clinic!r}")
        admin_obj = None
        if administrator is not None:
            admin_obj = Administrator.objects.filter(clinic=clinic_obj, pk=administrator).first()
            if admin_obj is None:
                raise CommandError(f"No administrator {administrator} in clinic {clinic!r}")
        date_to = date_to or timezone.now().astimezone(clinic_obj.tz).date()
        date_from = date_from or date_to - timedelta(days=29)
        try:
            report = services.report_request(
                clinic=clinic_obj,
                kind=kind,
                date_from=date_from,
                date_to=date_to,
                administrator=admin_obj,
                via=Report.Via.COMMAND,
                label="manage.py make_report",
                enqueue=False,
            )
        except Exception as exc:
            raise CommandError(str(exc)) from exc
        with translation.override(settings.LANGUAGE_CODE):
            outcome = services.report_build(report.pk)
        report.refresh_from_db()
        if outcome != "done":
            raise CommandError(f"Report {report.pk} {outcome}: {report.error}")
        path = Path(report.file.path)
        if output is not None:
            target = output / report.filename if output.is_dir() else output
            shutil.copyfile(path, target)
            path = target
        self.stdout.write(str(path))

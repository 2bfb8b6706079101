"""Writes for reports: request a report, build it in the background, tell the clinic it is ready.

Building a report reads the roll-ups (refreshing the period's dirty days first) and never calls an
LLM: it costs nothing, so it can be rebuilt at will.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.models import Administrator, Clinic, OutboxEvent
from medai.logging import redact
from medai.signing import signed_url
from reports import rollups, selectors
from reports.models import Report

logger = logging.getLogger("medai.reports")

MAX_PERIOD_DAYS = 366


def report_validate_period(*, date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationError({"date_to": [_("The last day is before the first day.")]})
    if (date_to - date_from).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError({"date_to": [_("A report covers at most %(days)d days.") % {"days": MAX_PERIOD_DAYS}]})


def report_request(
    *,
    clinic: Clinic,
    kind: str,
    date_from: date,
    date_to: date,
    administrator: Administrator | None = None,
    via: str = Report.Via.API,
    user=None,
    label: str = "",
    enqueue: bool = True,
) -> Report:
    """Store a queued report and hand it to a worker once the transaction commits."""
    report_validate_period(date_from=date_from, date_to=date_to)
    if administrator is not None and administrator.clinic_id != clinic.pk:
        raise ValidationError({"administrator": [_("No such administrator in this clinic.")]})
    report = Report.objects.create(
        clinic=clinic,
        administrator=administrator,
        kind=kind,
        date_from=date_from,
        date_to=date_to,
        requested_by=user if getattr(user, "pk", None) else None,
        requested_via=via,
        requested_label=(label or str(user or ""))[:150],
    )
    if enqueue:
        report_enqueue(report)
    return report


def report_enqueue(report: Report) -> None:
    def _send() -> None:
        from django_q.tasks import async_task

        async_task("reports.tasks.build_report", report.pk, task_name=f"report-{report.pk}", group="reports")

    transaction.on_commit(_send)


def report_requeue(report: Report) -> bool:
    """Build a failed (or finished) report again. False if a worker has it right now."""
    updated = Report.objects.filter(pk=report.pk).exclude(status=Report.Status.RUNNING).update(
        status=Report.Status.QUEUED, error="", attempts=0, started_at=None, finished_at=None
    )
    if updated:
        report_enqueue(report)
    return bool(updated)


def _stale_after() -> timedelta:
    # A worker that died mid-build leaves "running" behind; the broker re-delivers the task after
    # Q_CLUSTER["retry"], by which time the build has certainly been killed (timeout < retry).
    return timedelta(seconds=int(settings.Q_TIMEOUT) + 60)


def report_claim(report_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status=Report.Status.QUEUED) | Q(status=Report.Status.RUNNING, started_at__lt=now - _stale_after())
    return bool(
        Report.objects.filter(claimable, pk=report_id).update(
            status=Report.Status.RUNNING, started_at=now, attempts=F("attempts") + 1
        )
    )


def report_render(*, report: Report, path: Path) -> None:
    """Write the report's file to ``path``."""
    from reports.builders import pdf, xlsx

    data = selectors.report_data(
        clinic=report.clinic, date_from=report.date_from, date_to=report.date_to, administrator=report.administrator
    )
    if report.kind == Report.Kind.PDF:
        pdf.build_pdf(data, path)
    elif report.kind == Report.Kind.XLSX:
        xlsx.build_xlsx(data, path)
    else:
        raise ValueError(f"unknown report kind {report.kind!r}")


def report_build(report_id: int) -> str:
    """Build one report (the task). Returns the outcome: done, failed, not_claimed or lost_claim."""
    if not report_claim(report_id):
        return "not_claimed"
    report = Report.objects.select_related("clinic", "administrator").get(pk=report_id)
    mine = Report.objects.filter(pk=report_id, status=Report.Status.RUNNING, started_at=report.started_at)
    started = time.monotonic()
    try:
        # Figures of calls processed in the last minute are not in the roll-ups yet.
        rollups.rollups_refresh_dirty(clinic_id=report.clinic_id, date_from=report.date_from, date_to=report.date_to)
        with tempfile.TemporaryDirectory(prefix="medai-report-") as folder:
            path = Path(folder) / f"report.{report.kind}"
            report_render(report=report, path=path)
            previous = report.file.name if report.file else ""
            with path.open("rb") as handle:
                report.file.save(report.filename, File(handle), save=False)
                report.size_bytes = path.stat().st_size
    except Exception as exc:
        logger.exception("report %s failed", report_id)
        mine.update(status=Report.Status.FAILED, error=redact(str(exc) or type(exc).__name__)[:2000], finished_at=timezone.now())
        return "failed"
    with transaction.atomic():
        finished = mine.update(
            status=Report.Status.DONE, error="", file=report.file.name, size_bytes=report.size_bytes, finished_at=timezone.now()
        )
        storage = report.file.storage
        if not finished:  # our claim went stale and another worker took the report over
            transaction.on_commit(lambda: storage.delete(report.file.name))
            return "lost_claim"
        if previous and previous != report.file.name:  # a rebuild replaces the old file
            transaction.on_commit(lambda: storage.delete(previous))
        OutboxEvent.objects.get_or_create(
            clinic_id=report.clinic_id,
            kind=OutboxEvent.Kind.REPORT_READY,
            dedup_key=f"report-{report.pk}-{report.started_at:%Y%m%d%H%M%S%f}",
            defaults={
                "payload": {
                    "report_id": report.pk,
                    "kind": report.kind,
                    "date_from": report.date_from.isoformat(),
                    "date_to": report.date_to.isoformat(),
                    "administrator_id": report.administrator_id,
                    "filename": report.filename,
                    "size_bytes": report.size_bytes,
                    "url": signed_url("report", report.pk),
                }
            },
        )
    logger.info("report %s built in %.1f s (%d bytes)", report_id, time.monotonic() - started, report.size_bytes)
    return "done"

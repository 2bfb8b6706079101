import re
from datetime import UTC, datetime, timedelta
from io import BytesIO, StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from clinics.models import OutboxEvent
from reports import rollups, services, tasks
from reports.models import Report
from tests.factories import AdministratorFactory, PeriodSummaryFactory
from tests.reports.conftest import DAY, criterion, make_call

pytestmark = pytest.mark.django_db

PERIOD = {"date_from": DAY.isoformat(), "date_to": (DAY + timedelta(days=6)).isoformat()}


@pytest.fixture
def queued(monkeypatch):
    """Tasks handed to django-q (after commit) are recorded instead of sent to a broker."""
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, args)))
    return sent


@pytest.fixture
def calls(clinic_a, admin_a):
    other = AdministratorFactory(clinic=clinic_a, name="Олег Смирнов")
    for n in range(6):
        make_call(
            clinic_a,
            administrator=admin_a if n % 2 else other,
            day=DAY + timedelta(days=n % 3),
            hour=9 + n,
            call_type=["first_contact", "repeat"][n % 2],
            overall=n + 3,
            booked=n % 3 == 0,
            source=["Сайт", "2ГИС", ""][n % 3],
            criteria=[criterion("greeting", n + 3, title="Приветствие"), criterion("price", 10 - n, title="Озвучена стоимость")],
            recommendations=[f"Совет номер {n}"],
            recording=n == 1,
        )
    PeriodSummaryFactory(clinic=clinic_a, start=DAY, end=DAY + timedelta(days=6), recommendations=["Чаще называйте цену"])
    rollups.rollups_rebuild(clinic_ids=[clinic_a.pk])
    return other


def _build(client, payload, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/reports/", payload, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["download_url"] is None
    assert queued[-1] == ("reports.tasks.build_report", (body["id"],))
    assert tasks.build_report(body["id"]) == "done"
    return body["id"]


def test_report_lifecycle_and_access(client_for, clinic_a, clinic_b, calls, queued, django_capture_on_commit_callbacks, api_client):
    client = client_for(clinic_a)
    report_id = _build(client, {**PERIOD, "kind": "pdf"}, queued, django_capture_on_commit_callbacks)

    status = client.get(f"/api/reports/{report_id}/").json()
    assert status["status"] == "done" and status["error"] == "" and status["size_bytes"] > 1000
    download = client.get(urlsplit(status["download_url"]).path)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith('attachment; filename="medai-alpha-')
    assert b"".join(download.streaming_content).startswith(b"%PDF")

    event = OutboxEvent.objects.get(kind=OutboxEvent.Kind.REPORT_READY)
    assert event.clinic_id == clinic_a.pk and event.payload["report_id"] == report_id

    stranger = client_for(clinic_b)
    for path in (f"/api/reports/{report_id}/", f"/api/reports/{report_id}/download/"):
        response = stranger.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert stranger.get("/api/reports/").json()["count"] == 0
    assert api_client.get(f"/api/reports/{report_id}/download/").status_code in {401, 403}
    assert stranger.post("/api/reports/", {**PERIOD, "kind": "pdf", "clinic": clinic_a.pk}, format="json").status_code == 404


def test_signed_link_works_then_expires(client_for, clinic_a, calls, queued, django_capture_on_commit_callbacks, client, time_machine):
    time_machine.move_to(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False)
    report_id = _build(client_for(clinic_a), {**PERIOD, "kind": "xlsx"}, queued, django_capture_on_commit_callbacks)
    link = urlsplit(client_for(clinic_a).get(f"/api/reports/{report_id}/").json()["signed_url"]).path
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    assert client.get(link.replace("/report/", "/recording/", 1)).status_code == 404  # a token is for one kind
    assert client.get(link[:-4] + "AAA/").status_code == 404
    time_machine.move_to(datetime(2026, 11, 25, 13, 1, tzinfo=UTC), tick=False)
    expired = client.get(link)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "link_expired"


def test_pdf_has_cyrillic_text_and_links(clinic_a, calls):
    from pypdf import PdfReader

    report = services.report_request(clinic=clinic_a, kind="pdf", date_from=DAY, date_to=DAY + timedelta(days=6), enqueue=False)
    assert services.report_build(report.pk) == "done"
    report.refresh_from_db()
    reader = PdfReader(report.file.path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Клиника Альфа", "Ирина Петрова", "Олег Смирнов", "Приветствие", "Совет номер 0", "Чаще называйте цену"):
        assert expected in text
    fonts = {str(font.get("/BaseFont")) for page in reader.pages for font in (page["/Resources"].get("/Font") or {}).values()}
    assert any("DejaVuSans" in name for name in fonts)
    links = [a.get_object()["/A"]["/URI"] for page in reader.pages for a in page.get("/Annots") or []]
    assert any("/reports/call/" in link and not link.endswith("/audio/") for link in links)
    assert any(link.endswith("/audio/") for link in links)


def test_xlsx_content_and_hyperlinks(clinic_a, calls, client):
    report = services.report_request(clinic=clinic_a, kind="xlsx", date_from=DAY, date_to=DAY + timedelta(days=6), enqueue=False)
    assert services.report_build(report.pk) == "done"
    report.refresh_from_db()
    book = load_workbook(BytesIO(report.file.read()))
    assert {"Summary", "Administrators", "Calls", "Criteria by week", "Period recommendations"} <= set(book.sheetnames)
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row}
    assert summary["Calls"] == 6 and summary["Booked"] == 2
    assert summary["Quality (mean overall score × 10), %"] == 55.0  # (3+4+5+6+7+8)/6 × 10
    calls_sheet = book["Calls"]
    rows = list(calls_sheet.iter_rows(min_row=2))
    assert len(rows) == 6
    header = [c.value for c in calls_sheet[1]]
    transcript = [row[header.index("Transcript")].value for row in rows]
    recording = [row[header.index("Recording")].value for row in rows if row[header.index("Recording")].value]
    link = re.compile(r'^=HYPERLINK\("(http://[^"]+/reports/call/[^"]+/)","open"\)$')
    assert all(link.match(value) for value in transcript)
    assert len(recording) == 1 and recording[0].endswith('/audio/","listen")')
    page = client.get(urlsplit(link.match(transcript[0]).group(1)).path)
    assert page.status_code == 200 and "Клиника Альфа" in page.content.decode()
    admins = {r[0]: r[1] for r in book["Administrators"].iter_rows(min_row=2, values_only=True)}
    assert admins == {"Ирина Петрова": 3, "Олег Смирнов": 3}
    recs = [r[3] for r in book["Period recommendations"].iter_rows(min_row=2, values_only=True)]
    assert recs == ["Чаще называйте цену"]


def test_per_administrator_report_has_only_their_calls(client_for, clinic_a, admin_a, calls, queued, django_capture_on_commit_callbacks):
    PeriodSummaryFactory(clinic=clinic_a, administrator=admin_a, start=DAY, end=DAY + timedelta(days=6), recommendations=["Только для Ирины"])
    report_id = _build(client_for(clinic_a), {**PERIOD, "kind": "xlsx", "administrator": admin_a.pk}, queued, django_capture_on_commit_callbacks)
    report = Report.objects.get(pk=report_id)
    assert report.administrator == admin_a and "-admin" in report.filename
    book = load_workbook(BytesIO(report.file.read()))
    names = {r[1] for r in book["Calls"].iter_rows(min_row=2, values_only=True)}
    assert names == {"Ирина Петрова"}
    assert "Administrators" not in book.sheetnames
    assert [r[3] for r in book["Period recommendations"].iter_rows(min_row=2, values_only=True)] == ["Только для Ирины"]


def test_report_request_is_validated(client_for, clinic_a, clinic_b):
    client = client_for(clinic_a)
    foreign_admin = AdministratorFactory(clinic=clinic_b)
    response = client.post("/api/reports/", {**PERIOD, "kind": "pdf", "administrator": foreign_admin.pk}, format="json")
    assert response.status_code == 400 and "administrator" in response.json()["error"]["fields"]
    response = client.post("/api/reports/", {"kind": "docx", "date_from": "2026-11-20", "date_to": "2026-11-01"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()["error"]["fields"]
    response = client.post("/api/reports/", {"kind": "pdf", "date_from": "2025-01-01", "date_to": "2026-11-01"}, format="json")
    assert response.status_code == 400 and "date_to" in response.json()["error"]["fields"]
    assert not Report.objects.exists()


def test_a_failed_build_records_the_error_and_can_be_retried(clinic_a, calls, monkeypatch, queued, django_capture_on_commit_callbacks):
    report = services.report_request(clinic=clinic_a, kind="pdf", date_from=DAY, date_to=DAY, enqueue=False)

    def broken(data, path):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr("reports.builders.pdf.build_pdf", broken)
        assert services.report_build(report.pk) == "failed"
    report.refresh_from_db()
    assert (report.status, report.error) == ("failed", "disk full")
    assert not OutboxEvent.objects.filter(kind=OutboxEvent.Kind.REPORT_READY).exists()
    assert services.report_build(report.pk) == "not_claimed"

    with django_capture_on_commit_callbacks(execute=True):
        assert services.report_requeue(report)
    assert queued == [("reports.tasks.build_report", (report.pk,))]
    assert services.report_build(report.pk) == "done"


def test_building_refreshes_dirty_days_first(clinic_a, admin_a):
    make_call(clinic_a, administrator=admin_a, call_type="repeat", overall=9)
    services.rollups.rollup_mark_dirty(clinic_id=clinic_a.pk, day=DAY)
    report = services.report_request(clinic=clinic_a, kind="xlsx", date_from=DAY, date_to=DAY, enqueue=False)
    assert services.report_build(report.pk) == "done"
    report.refresh_from_db()
    book = load_workbook(BytesIO(report.file.read()))
    assert {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r}["Calls"] == 1


def test_make_report_command_writes_the_file_and_prints_its_path(clinic_a, admin_a, calls, tmp_path):
    out = StringIO()
    call_command("make_report", "alpha", "--kind", "xlsx", "--from", "2026-11-16", "--to", "2026-11-22", stdout=out)
    path = Path(out.getvalue().strip())
    assert path.exists() and path.suffix == ".xlsx"
    assert Report.objects.get().requested_via == "command"

    out = StringIO()
    call_command(
        "make_report", "alpha", "--administrator", str(admin_a.pk), "--from", "2026-11-16", "--to", "2026-11-22",
        "--output", str(tmp_path), stdout=out,
    )
    copied = Path(out.getvalue().strip())
    assert copied.parent == tmp_path and copied.read_bytes().startswith(b"%PDF")

    with pytest.raises(CommandError, match="No clinic"):
        call_command("make_report", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="before the first day"):
        call_command("make_report", "alpha", "--from", "2026-11-22", "--to", "2026-11-16", stdout=StringIO())


def test_rebuild_rollups_command(clinic_a, calls):
    from reports.models import CallDetail

    out = StringIO()
    call_command("rebuild_rollups", "--clinic", "alpha", stdout=out, verbosity=0)
    assert "6 call(s)" in out.getvalue() and CallDetail.objects.count() == 6
    out = StringIO()
    call_command("rebuild_rollups", "--dirty", stdout=out, verbosity=0)
    assert "day(s) recomputed" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("rebuild_rollups", "--clinic", "nope", stdout=StringIO(), verbosity=0)


def test_a_rebuild_replaces_the_file_and_a_stale_worker_loses(clinic_a, calls, monkeypatch, django_capture_on_commit_callbacks):
    from django.utils import timezone

    report = services.report_request(clinic=clinic_a, kind="xlsx", date_from=DAY, date_to=DAY, enqueue=False)
    assert services.report_build(report.pk) == "done"
    first = Report.objects.get(pk=report.pk).file.name
    Report.objects.filter(pk=report.pk).update(status="queued")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.report_build(report.pk) == "done"
    second = Report.objects.get(pk=report.pk).file
    assert second.name != first and not second.storage.exists(first)

    # A worker whose claim went stale (another one took the report over) discards its file.
    Report.objects.filter(pk=report.pk).update(status="queued")
    real_render = services.report_render

    def render_then_lose_the_claim(*, report, path):
        real_render(report=report, path=path)
        Report.objects.filter(pk=report.pk).update(started_at=timezone.now() + timedelta(seconds=5))

    monkeypatch.setattr(services, "report_render", render_then_lose_the_claim)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.report_build(report.pk) == "lost_claim"
    kept = Report.objects.get(pk=report.pk).file
    assert kept.name == second.name and kept.storage.exists(kept.name)
    assert len(list((Path(kept.storage.location) / "reports" / str(clinic_a.pk)).iterdir())) == 1

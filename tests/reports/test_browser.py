"""Headless Chromium opens the admin dashboard and a call page, and saves screenshots.

Skipped cleanly where Playwright or Chromium is missing. Playwright's own browser download is not
used: point CHROMIUM_PATH at a system Chromium (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from analysis.models import Analysis
from calls.models import Transcript
from reports import rollups
from tests.factories import AdministratorFactory, UserFactory
from tests.reports.conftest import DAY, criterion, make_call

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def live_server(transactional_db, settings):
    """pytest-django's live server, started per test after MEDIA_URL is set.

    MEDIA_URL is None on purpose (media is never public), but Django's live server wraps a media
    handler that needs a string (it reads it when the thread starts, hence not the session-wide
    fixture). Nothing in this test is served from it.
    """
    from pytest_django.live_server_helper import LiveServer

    settings.MEDIA_URL = "/live-server-media/"
    server = LiveServer("localhost:0")
    yield server
    server.stop()
    # The server's request threads can leave a database session behind, and PostgreSQL then
    # refuses to drop the test database ("being accessed by other users"): end them here.
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def browser_page(live_server):
    """Depends on the server so that it closes first: open keep-alive connections would keep
    the server's request threads (and their database sessions) alive past the test."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (set CHROMIUM_PATH)")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                else None,
            )
            page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.problems = problems
            yield page
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def demo_data(transactional_db):
    from tests.factories import ClinicFactory

    clinic = ClinicFactory(name="Стоматология «Улыбка»", slug="smile")
    anna = AdministratorFactory(clinic=clinic, name="Анна Смирнова")
    oleg = AdministratorFactory(clinic=clinic, name="Олег Кузнецов")
    calls = []
    for n in range(40):
        calls.append(make_call(
            clinic,
            administrator=[anna, oleg][n % 2],
            day=DAY + timedelta(days=n % 12),
            hour=9 + n % 9,
            call_type=["first_contact", "repeat", "callback", "confirmation", "other"][n % 5],
            overall=None if n % 5 == 4 else 3 + (n * 7) % 8,
            booked=n % 3 == 0,
            interest=["high", "medium", "low"][n % 3],
            source=["Сайт", "2ГИС", "Яндекс.Директ"][n % 3],
            criteria=[criterion("greeting", 10, title="Приветствие"), criterion("price", (n * 3) % 11, title="Озвучена стоимость")],
            recommendations=["Назовите стоимость приёма"],
        ))
    call = calls[0]
    Transcript.objects.create(
        call=call,
        utterances=[
            {"speaker": "A", "role": "administrator", "start": 0.0, "end": 3.0, "text": "Стоматология «Улыбка», Анна, здравствуйте!"},
            {"speaker": "B", "role": "patient", "start": 3.5, "end": 6.0, "text": "Здравствуйте, хочу записаться на чистку."},
        ],
        roles={"A": "administrator", "B": "patient"},
    )
    Analysis.objects.filter(call=call).update(summary="Пациент записался на чистку.")
    rollups.rollups_rebuild()
    user = UserFactory(username="manager")
    clinic.members.add(user)
    return {"call": call, "user": user}


def _login(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "pass-1234-word")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_dashboard_and_call_page_render(browser_page, live_server, demo_data):
    page = browser_page
    _login(page, live_server)
    assert page.locator('a[href="/admin/reports/dashboard/"]').count() >= 1

    last = DAY + timedelta(days=13)
    page.goto(f"{live_server.url}/admin/reports/dashboard/?date_from={DAY.isoformat()}&date_to={last.isoformat()}")
    page.wait_for_function(
        "['chart-funnel','chart-days','chart-weeks','chart-leaders'].every(id => document.getElementById(id).chart)"
    )
    # Every chart drew something (a blank canvas would mean the data or the script is broken).
    for chart_id in ("chart-funnel", "chart-days", "chart-weeks", "chart-leaders"):
        painted = page.evaluate(
            """id => { const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n; }""",
            chart_id,
        )
        assert painted > 500, chart_id
    assert "Анна Смирнова" in page.inner_text("#dashboard-leaderboard")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    call = demo_data["call"]
    page.goto(f"{live_server.url}/admin/calls/call/{call.pk}/change/")
    assert "Стоматология «Улыбка», Анна, здравствуйте!" in page.content()
    page.screenshot(path=str(SCREENSHOTS / "call.png"), full_page=True)
    assert page.problems == []

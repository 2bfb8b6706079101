import json
from datetime import timedelta

import pytest

from reports import rollups
from reports.models import Report
from tests.factories import AdministratorFactory
from tests.reports.conftest import DAY, make_call

pytestmark = pytest.mark.django_db

URL = "/admin/reports/dashboard/"
PERIOD = {"date_from": DAY.isoformat(), "date_to": (DAY + timedelta(days=6)).isoformat()}


@pytest.fixture
def two_clinics(clinic_a, clinic_b, admin_a):
    admin_b = AdministratorFactory(clinic=clinic_b, name="Чужой Администратор")
    make_call(clinic_a, administrator=admin_a, call_type="first_contact", overall=8, booked=True)
    make_call(clinic_a, administrator=admin_a, call_type="repeat", overall=6, day=DAY + timedelta(days=2))
    make_call(clinic_b, administrator=admin_b, call_type="repeat", overall=2)
    rollups.rollups_rebuild()
    return admin_b


def _charts(response):
    html = response.content.decode()
    start = html.index('<script id="dashboard-data" type="application/json">') + len('<script id="dashboard-data" type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])


def test_dashboard_is_linked_from_the_index_and_renders_for_clinic_staff(client, staff_of, clinic_a, two_clinics):
    client.force_login(staff_of(clinic_a))
    assert URL.encode() in client.get("/admin/").content
    response = client.get(URL, PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ирина Петрова" in html and "Чужой Администратор" not in html
    assert "reports/chart.umd.js" in html
    charts = _charts(response)
    assert charts["funnel"]["values"] == [2, 2, 1, 1]
    assert charts["days"]["calls"] == [1, 0, 1, 0, 0, 0, 0]
    assert charts["leaders"]["labels"] == ["Ирина Петрова"]
    assert charts["weeks"]["quality"] == [70.0]


def test_dashboard_is_scoped_even_when_asked_for_another_clinic(client, staff_of, clinic_a, clinic_b, two_clinics):
    client.force_login(staff_of(clinic_a))
    response = client.get(URL, {**PERIOD, "clinic": clinic_b.pk, "administrator": two_clinics.pk})
    assert response.status_code == 200
    assert _charts(response)["funnel"]["values"][0] == 2  # the foreign clinic is not a valid choice
    assert "Чужой Администратор" not in response.content.decode()


def test_superuser_sees_every_clinic_and_can_filter(client, clinic_a, clinic_b, two_clinics, admin_user):
    client.force_login(admin_user)
    assert _charts(client.get(URL, PERIOD))["funnel"]["values"][0] == 3
    assert _charts(client.get(URL, {**PERIOD, "clinic": clinic_b.pk}))["funnel"]["values"][0] == 1


def test_dashboard_is_hidden_from_staff_without_clinics(client, staff_of, two_clinics):
    client.force_login(staff_of())
    assert client.get(URL).status_code in {403, 404}
    assert URL.encode() not in client.get("/admin/").content


def test_admin_requests_and_downloads_a_report(client, staff_of, clinic_a, clinic_b, two_clinics, monkeypatch, django_capture_on_commit_callbacks):
    from reports import services

    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append(args))
    client.force_login(staff_of(clinic_a))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/reports/report/add/",
            {"clinic": clinic_a.pk, "kind": "xlsx", "date_from": PERIOD["date_from"], "date_to": PERIOD["date_to"]},
        )
    assert response.status_code == 302
    report = Report.objects.get()
    assert (report.requested_via, report.status, sent) == ("admin", "queued", [(report.pk,)])
    assert services.report_build(report.pk) == "done"
    listing = client.get("/admin/reports/report/")
    assert f"/admin/reports/report/{report.pk}/download/" in listing.content.decode()
    download = client.get(f"/admin/reports/report/{report.pk}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].endswith('.xlsx"')

    # Another clinic's staff can neither see nor request it.
    client.force_login(staff_of(clinic_b))
    assert client.get(f"/admin/reports/report/{report.pk}/download/").status_code == 404
    response = client.post(
        "/admin/reports/report/add/",
        {"clinic": clinic_a.pk, "kind": "pdf", "date_from": PERIOD["date_from"], "date_to": PERIOD["date_to"]},
    )
    assert response.status_code == 200 and Report.objects.count() == 1  # form error: not a valid choice

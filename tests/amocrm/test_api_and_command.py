"""POST /api/sync/ (202, background run, tenancy, who may), the admin pages and ``manage.py amocrm_sync``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from calls.amocrm import tasks
from calls.models import Call
from clinics.models import CrmConnection
from clinics.services import api_key_create
from tests.amocrm.conftest import DAY, make_connection
from tests.factories import ClinicFactory, UserFactory

RANGE = {"date_from": "2026-11-16", "date_to": "2026-11-16"}


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: sent.append(args))
    return sent


def test_an_api_key_syncs_its_clinic_in_the_background(key_client, connection, fake, queued, django_capture_on_commit_callbacks):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY)

    with django_capture_on_commit_callbacks(execute=True):
        response = key_client.post("/api/sync/", RANGE, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["clinic"] == connection.clinic_id and body["run"]["status"] == "queued"
    assert body["status_url"].endswith(f"/api/sync/{connection.clinic_id}/") and response["Location"] == body["status_url"]
    [(task, connection_id, run_id)] = queued
    assert (task, connection_id, run_id) == ("calls.amocrm.tasks.sync_range", connection.pk, body["run"]["id"])
    assert not Call.objects.exists()  # nothing happened in the request

    result = tasks.sync_range(connection_id, run_id)  # what the worker runs

    assert result["created"] == 1
    status = key_client.get(body["status_url"]).json()
    assert status["run"]["status"] == "succeeded" and status["run"]["result"]["created"] == 1
    assert status["run"]["progress"]["phase"] == "ingest"
    assert "access_token" not in str(status) and connection.access_token not in str(status)


def test_a_second_request_while_one_runs_is_a_conflict(key_client, connection, queued):
    assert key_client.post("/api/sync/", RANGE, format="json").status_code == 202
    again = key_client.post("/api/sync/", RANGE, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "busy"


def test_a_run_whose_worker_died_reads_as_failed_and_can_be_restarted(key_client, connection, queued):
    key_client.post("/api/sync/", RANGE, format="json")
    run = CrmConnection.objects.get(pk=connection.pk).sync_run
    stale = {**run, "status": "running", "queued_at": (timezone.now() - timedelta(hours=2)).isoformat()}
    CrmConnection.objects.filter(pk=connection.pk).update(sync_run=stale, sync_lease_until=timezone.now() - timedelta(minutes=1))

    assert key_client.get(f"/api/sync/{connection.clinic_id}/").json()["run"]["status"] == "failed"
    assert key_client.post("/api/sync/", RANGE, format="json").status_code == 202


def test_tenant_isolation(api_client, connection, fake, queued):
    other = ClinicFactory()
    make_connection(other, fake)
    _key, raw = api_key_create(clinic=other, name="other")
    api_client.credentials(HTTP_X_API_KEY=raw)

    assert api_client.post("/api/sync/", {**RANGE, "clinic": connection.clinic_id}, format="json").status_code == 404
    assert api_client.get(f"/api/sync/{connection.clinic_id}/").status_code == 404
    assert [row["clinic"] for row in api_client.get("/api/sync/").json()["results"]] == [other.pk]
    assert api_client.post("/api/sync/", RANGE, format="json").status_code == 202  # its own clinic
    assert CrmConnection.objects.get(clinic=other).sync_run["status"] == "queued"
    assert CrmConnection.objects.get(pk=connection.pk).sync_run == {}


def test_staff_members_may_sync_other_members_only_watch(api_client, connection, queued):
    member = UserFactory(is_staff=False)
    member.clinics.add(connection.clinic)
    api_client.force_authenticate(member)
    assert api_client.post("/api/sync/", RANGE, format="json").status_code == 403
    assert api_client.get(f"/api/sync/{connection.clinic_id}/").status_code == 200

    staff = UserFactory(is_staff=True)
    staff.clinics.add(connection.clinic)
    api_client.force_authenticate(staff)
    assert api_client.post("/api/sync/", RANGE, format="json").status_code == 202

    superuser = UserFactory(is_superuser=True)
    api_client.force_authenticate(superuser)
    assert api_client.post("/api/sync/", RANGE, format="json").status_code == 400  # which clinic?


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"date_from": "2026-11-16", "date_to": "2026-11-15"}, 400),
        ({"date_from": "2026-09-01", "date_to": "2026-11-16"}, 400),
        ({"date_from": "16.11.2026", "date_to": "2026-11-16"}, 400),
    ],
)
def test_bad_ranges(key_client, connection, payload, code):
    assert key_client.post("/api/sync/", payload, format="json").status_code == code


def test_without_a_working_connection_the_answer_is_409(key_client, clinic, fake):
    response = key_client.post("/api/sync/", RANGE, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_connected"
    make_connection(clinic, fake, authorise=False)
    assert key_client.post("/api/sync/", RANGE, format="json").status_code == 409


def test_unauthenticated_callers_are_refused(api_client, connection):
    assert api_client.post("/api/sync/", RANGE, format="json").status_code in (401, 403)


# --- admin -------------------------------------------------------------------------------------------
def test_admin_change_page_connect_link_and_conversion_override(client, connection):
    admin_user = UserFactory(is_superuser=True)
    client.force_login(admin_user)
    url = reverse("admin:clinics_crmconnection_change", args=[connection.pk])

    page = client.get(url).content.decode()
    assert reverse("amocrm:connect", args=[connection.pk]) in page
    assert reverse("amocrm:sync", args=[connection.pk]) in page
    assert connection.access_token not in page and connection.client_secret not in page

    conversion = '{"auto": true, "primary": {"pipeline_id": 5, "booked_status_ids": [51]}, "secondary": null}'
    response = client.post(
        url,
        {
            "clinic": connection.clinic_id,
            "base_url": connection.base_url,
            "client_id": connection.client_id,
            "client_secret": "",  # kept
            "redirect_uri": connection.redirect_uri,
            "source_field": "Источник",
            "speed_field": "",
            "conversion": conversion,
            "write_back": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = CrmConnection.objects.get(pk=connection.pk)
    assert saved.conversion["auto"] is False and saved.conversion["primary"]["booked_status_ids"] == [51]
    assert saved.client_secret == connection.client_secret and saved.access_token == connection.access_token

    bad = client.post(url, {"clinic": connection.clinic_id, "base_url": connection.base_url, "client_id": "x",
                            "redirect_uri": connection.redirect_uri, "conversion": '{"primary": {"pipeline_id": "five"}}'})
    assert bad.status_code == 200 and "pipeline_id" in bad.content.decode()


def test_admin_range_sync_form_queues_a_run(client, connection, queued, django_capture_on_commit_callbacks):
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("amocrm:sync", args=[connection.pk])
    assert client.get(url).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, RANGE)

    assert response.status_code == 302
    assert queued and queued[0][0] == "calls.amocrm.tasks.sync_range"
    assert CrmConnection.objects.get(pk=connection.pk).sync_run["requested_by"]


# --- the command ----------------------------------------------------------------------------------
def test_command_syncs_a_range(connection, fake):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY)
    out = StringIO()

    call_command("amocrm_sync", clinic=connection.clinic.slug, date_from="2026-11-16", date_to="2026-11-16", stdout=out, verbosity=0)
    call_command("amocrm_sync", "--clinic", connection.clinic.slug, "--from", "2026-11-16", stdout=out, verbosity=0)

    assert Call.objects.count() == 1
    assert "created: 1" in out.getvalue() and "created: 0" in out.getvalue()
    assert CrmConnection.objects.get(pk=connection.pk).sync_lease_until is None


def test_command_refuses_what_it_cannot_do(clinic, fake):
    with pytest.raises(CommandError, match="no amoCRM connection"):
        call_command("amocrm_sync", clinic=clinic.slug, date_from="2026-11-16")
    make_connection(clinic, fake, authorise=False)
    with pytest.raises(CommandError, match="Waiting"):
        call_command("amocrm_sync", clinic=clinic.slug, date_from="2026-11-16")


def test_command_without_dates_runs_the_incremental_sync(connection, fake):
    out = StringIO()
    call_command("amocrm_sync", clinic=connection.clinic.slug, stdout=out)
    assert "created: 0" in out.getvalue()
    assert CrmConnection.objects.get(pk=connection.pk).sync_cursor is not None

"""Connecting amoCRM: the OAuth redirect, token refresh under a lock, broken connections."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from calls.amocrm import connection as services
from calls.amocrm.connection import AmoSession, CrmUnavailable, connection_access_token, connection_state
from calls.amocrm.sync import amocrm_sync_incremental
from calls.amocrm.tasks import sync_due_connections
from clinics.models import CrmConnection, OutboxEvent
from tests.amocrm.conftest import make_connection
from tests.factories import ClinicFactory, UserFactory
from tests.fakes.amocrm import FakeAmoCRM


def callback(client, **params):
    return client.get(reverse("amocrm:callback"), params)


# --- the OAuth redirect -----------------------------------------------------------------------------
def test_valid_state_and_code_connect_the_clinic(client, clinic, fake):
    connection = make_connection(clinic, fake, authorise=False)

    response = callback(client, code=fake.issue_code(), state=connection_state(connection), referer="127.0.0.1")

    assert response.status_code == 200
    assert "amoCRM" in response.content.decode() and clinic.name in response.content.decode()
    assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ACTIVE
    assert connection.access_token and connection.refresh_token and connection.expires_at > timezone.now()
    with db_connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT access_token, refresh_token FROM clinics_crmconnection WHERE id = %s", [connection.pk])
        raw_access, raw_refresh = cursor.fetchone()
    assert connection.access_token not in raw_access and connection.refresh_token not in raw_refresh
    assert connection.access_token not in response.content.decode()


@pytest.mark.parametrize("state", ["", "forged", "eyJjIjoxfQ:1vXyZ:bad-signature"])
def test_missing_or_invalid_state_is_rejected(client, clinic, fake, state):
    connection = make_connection(clinic, fake, authorise=False)
    response = callback(client, code=fake.issue_code(), **({"state": state} if state else {}))
    assert response.status_code == 400
    assert "state" in response.content.decode()
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.PENDING
    assert not fake.requests_to("POST", "/oauth2/access_token")  # nothing was exchanged


def test_expired_state_and_a_changed_integration_are_rejected(client, clinic, fake, monkeypatch):
    connection = make_connection(clinic, fake, authorise=False)
    state = connection_state(connection)
    monkeypatch.setattr(services, "STATE_MAX_AGE", -1)
    assert callback(client, code=fake.issue_code(), state=state).status_code == 400
    monkeypatch.undo()
    CrmConnection.objects.filter(pk=connection.pk).update(client_id="another-integration")
    assert callback(client, code=fake.issue_code(), state=state).status_code == 400


def test_refused_code_denied_access_and_another_account_show_a_failure_page(client, clinic, fake):
    connection = make_connection(clinic, fake, authorise=False)
    state = connection_state(connection)

    refused = callback(client, code="code-never-issued", state=state)
    assert refused.status_code == 400 and "secret key" in refused.content.decode()
    denied = callback(client, error="access_denied", state=state)
    assert denied.status_code == 400
    other = callback(client, code=fake.issue_code(), state=state, referer="someone-else.amocrm.ru")
    assert other.status_code == 400 and "someone-else.amocrm.ru" in other.content.decode()
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.PENDING


def test_connect_link_sends_staff_to_amocrm_with_a_signed_state(client, clinic, fake):
    connection = make_connection(clinic, fake, authorise=False)
    operator = UserFactory(is_superuser=True)
    client.force_login(operator)

    response = client.get(reverse("amocrm:connect", args=[connection.pk]))

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{fake.url}/oauth"
    query = parse_qs(target.query)
    assert query["client_id"] == [fake.client_id]
    assert services.connection_from_state(query["state"][0]) == connection


def test_connect_link_is_scoped_to_the_staff_members_clinics(client, clinic, fake):
    connection = make_connection(clinic, fake, authorise=False)
    outsider = UserFactory()
    outsider.clinics.add(ClinicFactory())
    client.force_login(outsider)
    assert client.get(reverse("amocrm:connect", args=[connection.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("amocrm:connect", args=[connection.pk])).status_code == 302  # to the admin login
    assert "/admin/login/" in client.get(reverse("amocrm:connect", args=[connection.pk]))["Location"]


def test_authorize_url_uses_amocrms_grant_page_for_real_accounts(clinic, fake):
    connection = make_connection(clinic, fake, authorise=False)
    connection.base_url = "https://myclinic.amocrm.ru"
    assert services.connection_authorize_url(connection=connection).startswith("https://www.amocrm.ru/oauth?client_id=")


# --- tokens --------------------------------------------------------------------------------------
def test_a_token_about_to_expire_is_refreshed_and_the_rotation_saved(connection, fake):
    old_refresh = connection.refresh_token
    CrmConnection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() + timedelta(minutes=5))

    with AmoSession(CrmConnection.objects.get(pk=connection.pk)) as session:
        assert session.run(lambda c: c.account()).subdomain == "clinic"

    assert fake.refresh_count == 1
    connection.refresh_from_db()
    assert connection.refresh_token != old_refresh
    assert connection.expires_at > timezone.now() + timedelta(hours=23)


def test_two_workers_holding_the_same_stale_token_refresh_once(connection, fake):
    """The re-check after the lock, without threads (SQLite-safe)."""
    stale = connection.access_token
    first = connection_access_token(connection_id=connection.pk, stale_token=stale)
    second = connection_access_token(connection_id=connection.pk, stale_token=stale)
    assert first == second != stale
    assert fake.refresh_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_threads_refresh_an_expired_token_once():
    clinic = ClinicFactory()
    with FakeAmoCRM() as fake:
        connection = make_connection(clinic, fake)
        CrmConnection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        fake.latency = 0.2  # a slow token endpoint widens the race
        tokens, errors = [], []
        barrier = threading.Barrier(6)

        def worker():
            try:
                barrier.wait()
                tokens.append(connection_access_token(connection_id=connection.pk))
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert not errors
        assert fake.refresh_count == 1
        connection.refresh_from_db()
        assert set(tokens) == {connection.access_token}


def test_a_401_refreshes_once_and_retries_once(connection, fake):
    fake.revoke_access_tokens()  # amoCRM dropped the token before its expiry
    with AmoSession(connection) as session:
        users = session.run(lambda c: c.users())
    assert users == [] and fake.refresh_count == 1
    assert len(fake.requests_to("GET", "/api/v4/users")) == 2


def test_a_401_with_a_fresh_token_marks_the_connection_broken(connection, fake):
    fake.fail_next("GET", "/api/v4/users", times=2, status=401)
    with AmoSession(connection) as session, pytest.raises(CrmUnavailable):
        session.run(lambda c: c.users())
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.BROKEN
    assert OutboxEvent.objects.filter(kind=OutboxEvent.Kind.CRM_BROKEN).count() == 1


# --- broken connections ----------------------------------------------------------------------------
def test_a_revoked_refresh_token_breaks_the_connection_once_without_a_crash_loop(connection, fake, monkeypatch):
    CrmConnection.objects.filter(pk=connection.pk).update(
        refresh_token="refresh-revoked-by-the-owner", expires_at=timezone.now() - timedelta(minutes=1)
    )

    first = amocrm_sync_incremental(connection_id=connection.pk)
    second = amocrm_sync_incremental(connection_id=connection.pk)

    assert "broken" in first["error"] and second == {"skipped": "broken"}
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.BROKEN and "refresh_token" in connection.last_error
    assert "refresh-revoked" not in connection.last_error
    [alert] = OutboxEvent.objects.filter(kind=OutboxEvent.Kind.CRM_BROKEN)
    assert alert.clinic == connection.clinic and alert.payload["connection_id"] == connection.pk
    assert len(fake.requests_to("POST", "/oauth2/access_token")) == 2  # the code exchange and one refresh
    assert connection.sync_lease_until is None

    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: queued.append(args))
    assert sync_due_connections() == {"queued": 0}  # the scheduler skips it until it is reconnected
    with pytest.raises(CrmUnavailable):
        AmoSession(connection)


def test_reconnecting_a_broken_connection_makes_it_active_and_a_new_break_alerts_again(client, connection, fake):
    services.connection_mark_broken(connection_id=connection.pk, error="HTTP 400")
    assert not services.connection_mark_broken(connection_id=connection.pk, error="HTTP 400 again")

    response = callback(client, code=fake.issue_code(), state=connection_state(connection))
    assert response.status_code == 200
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (CrmConnection.Status.ACTIVE, "")

    assert services.connection_mark_broken(connection_id=connection.pk, error="HTTP 401")
    assert OutboxEvent.objects.filter(kind=OutboxEvent.Kind.CRM_BROKEN).count() == 2


def test_the_scheduler_queues_one_sync_per_working_connection(clinic, fake, monkeypatch):
    active = make_connection(clinic, fake)
    make_connection(ClinicFactory(), fake, authorise=False)  # pending
    broken = make_connection(ClinicFactory(), fake)
    CrmConnection.objects.filter(pk=broken.pk).update(status=CrmConnection.Status.BROKEN)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: queued.append(args))

    assert sync_due_connections() == {"queued": 1}
    assert queued == [("calls.amocrm.tasks.sync_connection", active.pk)]


def test_the_amocrm_sync_is_in_the_schedules():
    from calls.schedules import SCHEDULES

    [task] = [t for t in SCHEDULES if t.name == "amocrm-sync"]
    assert task.func == "calls.amocrm.tasks.sync_due_connections" and task.minutes == 5 and task.cron is None

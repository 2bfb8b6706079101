"""Contract tests of the amoCRM client against the fake amoCRM server (no network, no database)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from medai.http import ChokepointTransport, HttpPolicy, ProviderResponseError, TemporaryHttpError
from medai.integrations.amocrm import (
    AmoAccessDenied,
    AmoAuthRevoked,
    AmoClient,
    AmoOAuth,
    AmoUnauthorized,
    CallStatus,
    parse_processing_speed,
)
from medai.integrations.amocrm.client import EVENTS_PAGE, ID_BATCH
from medai.integrations.amocrm.transport import normalize_base_url
from tests.fakes.amocrm import FakeAmoCRM

FAST = 10_000  # requests/s for tests that are not about the rate limit
DAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def fake():
    with FakeAmoCRM() as server:
        yield server


@pytest.fixture
def client(fake):
    with AmoClient(fake.url, fake.access_token, rate_per_second=FAST) as amo:
        yield amo


def oauth_for(fake: FakeAmoCRM, **overrides: str) -> AmoOAuth:
    options = {"client_id": fake.client_id, "client_secret": fake.client_secret, "redirect_uri": fake.redirect_uri}
    options.update(overrides)
    return AmoOAuth(fake.url, **options)


def client_with_fake_sleep(fake: FakeAmoCRM, sleeps: list[float], retries: int = 4) -> AmoClient:
    policy = HttpPolicy(retries=retries, backoff_base=0.01, max_retry_after=30)
    http = httpx.Client(transport=ChokepointTransport(policy, sleep=sleeps.append))
    return AmoClient(fake.url, fake.access_token, http=http)


# -- OAuth ---------------------------------------------------------------------------------------
def test_exchange_code_then_refresh_rotates_the_refresh_token(fake):
    with oauth_for(fake) as oauth:
        first = oauth.exchange_code(fake.issue_code())
        assert first.expires_at.tzinfo is not None
        assert timedelta(hours=23) < first.expires_at - datetime.now(UTC) <= timedelta(hours=24)
        assert first.access_token not in repr(first) and first.refresh_token not in repr(first)  # not in logs

        second = oauth.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token
        assert fake.refresh_count == 1

        # The old refresh token was single-use.
        with pytest.raises(AmoAuthRevoked) as revoked:
            oauth.refresh(first.refresh_token)
        assert revoked.value.status == 400
        assert fake.refresh_count == 1

    sent = fake.requests_to("POST", "/oauth2/access_token")[1].json()
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"] == first.refresh_token
    assert sent["redirect_uri"] == fake.redirect_uri
    # The new access token works against the API.
    with AmoClient(fake.url, second.access_token, rate_per_second=FAST) as amo:
        assert amo.account().subdomain == "clinic"


def test_used_code_and_wrong_client_secret_are_revoked(fake):
    code = fake.issue_code()
    with oauth_for(fake) as oauth:
        oauth.exchange_code(code)
        with pytest.raises(AmoAuthRevoked):
            oauth.exchange_code(code)
    with oauth_for(fake, client_secret="wrong") as oauth, pytest.raises(AmoAuthRevoked) as revoked:
        oauth.refresh("anything")
    assert revoked.value.status == 401


def test_token_endpoint_is_not_retried_in_process(fake):
    fake.fail_next("POST", "/oauth2/access_token", status=503)
    with oauth_for(fake) as oauth, pytest.raises(TemporaryHttpError):
        oauth.exchange_code(fake.issue_code())
    assert len(fake.requests_to("POST", "/oauth2/access_token")) == 1


# -- reference data ------------------------------------------------------------------------------
def test_account_users_pipelines_and_custom_fields(fake, client):
    admin = fake.add_user("Мария", "maria@clinic.example")
    pipeline = fake.add_pipeline("Первичные", ["Записан", "Пришёл"])
    speed = fake.add_custom_field("Скорость обработки", enums=["0 мин", "5-10 мин"])

    assert client.account().current_user_id == admin
    [user] = client.users()
    assert (user.id, user.name, user.email) == (admin, "Мария", "maria@clinic.example")

    [main] = client.pipelines()
    assert (main.id, main.is_main) == (pipeline, True)
    assert [s.name for s in main.statuses] == [
        "Неразобранное",
        "Записан",
        "Пришёл",
        "Успешно реализовано",
        "Закрыто и не реализовано",
    ]
    assert main.statuses[0].type == 1 and all(s.pipeline_id == pipeline for s in main.statuses)

    [field] = client.lead_custom_fields()
    assert field.id == speed and sorted(field.enums.values()) == ["0 мин", "5-10 мин"]


def test_custom_fields_are_paged_within_the_documented_limit(fake, client):
    for n in range(120):
        fake.add_custom_field(f"Поле {n}", type="text")
    assert len(client.lead_custom_fields()) == 120
    requests = fake.requests_to("GET", "/api/v4/leads/custom_fields")
    assert len(requests) == 3 and {r.query["limit"][0] for r in requests} == {"50"}


# -- events and notes ----------------------------------------------------------------------------
def test_call_events_span_pages_and_notes_come_in_batches(fake, client):
    lead = fake.add_lead()
    calls = [
        fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=n), direction=("inbound", "outbound")[n % 2])
        for n in range(250)
    ]
    events = list(client.iter_call_events(DAY, DAY + timedelta(days=1)))

    assert len(events) == 250
    assert {e.note_id for e in events} == {c.note_id for c in calls}
    assert {e.type for e in events} == {"incoming_call", "outgoing_call"}
    event_requests = fake.requests_to("GET", "/api/v4/events")
    assert len(event_requests) == math.ceil(250 / EVENTS_PAGE)
    # Both call types go in one query.
    assert sorted(event_requests[0].query["filter[type][]"]) == ["incoming_call", "outgoing_call"]

    notes = client.notes_by_ids("lead", [e.note_id for e in events])
    assert len(notes) == 250
    note_requests = fake.requests_to("GET", "/api/v4/leads/notes")
    assert len(note_requests) == math.ceil(250 / ID_BATCH)
    assert all(len(r.query["filter[id][]"]) <= ID_BATCH for r in note_requests)
    assert sorted(note_requests[0].query["filter[note_type][]"]) == ["call_in", "call_out"]

    first = notes[calls[0].note_id]
    assert (first.direction, first.entity_type, first.entity_id) == ("inbound", "lead", lead)
    assert first.duration == 60 and first.call_status == CallStatus.TALKED
    assert first.link.endswith(".mp3") and first.uniq
    assert notes[calls[1].note_id].direction == "outbound"


def test_call_event_window_is_half_open_and_timestamps_are_utc(fake, client):
    lead = fake.add_lead()
    moscow = timezone(timedelta(hours=3))
    start = datetime(2026, 3, 2, 9, 0, tzinfo=moscow)
    end = start + timedelta(hours=1)
    inside = fake.add_call(entity_id=lead, created_at=start)
    fake.add_call(entity_id=lead, created_at=end)  # belongs to the next window
    fake.add_call(entity_id=lead, created_at=start - timedelta(seconds=1))

    [event] = client.iter_call_events(start, end)
    assert event.event_id == inside.event_id
    assert event.created_at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert event.created_at.utcoffset() == timedelta(0) and event.created_at.tzinfo is UTC
    assert event.entity_type == "lead" and event.entity_id == lead and event.direction == "inbound"

    query = fake.requests_to("GET", "/api/v4/events")[0].query
    assert query["filter[created_at][from]"] == [str(int(start.timestamp()))]
    with pytest.raises(ValueError):
        list(client.iter_call_events(datetime(2026, 3, 2), datetime(2026, 3, 3)))


def test_status_changes_filter_by_lead_in_batches_of_ten(fake, client):
    pipeline = fake.add_pipeline(statuses=["Первичный", "Записан"])
    booked = fake.statuses_of(pipeline)["Записан"]
    leads = [fake.add_lead() for _ in range(12)]
    for lead in leads:
        fake.add_status_change(lead_id=lead, status_id=booked, pipeline_id=pipeline, created_at=DAY)
    other = fake.add_lead()
    fake.add_status_change(lead_id=other, status_id=142, pipeline_id=pipeline, created_at=DAY)

    changes = list(client.iter_status_changes(DAY, DAY + timedelta(hours=1), lead_ids=leads))
    assert sorted(c.lead_id for c in changes) == sorted(leads)
    assert all(c.status_id == booked and c.pipeline_id == pipeline for c in changes)
    assert all(c.old_status_id == fake.statuses_of(pipeline)["Первичный"] for c in changes)
    assert all(c.old_pipeline_id == pipeline and c.created_at == DAY for c in changes)
    assert len(fake.requests_to("GET", "/api/v4/events")) == 2  # 12 ids → 10 + 2

    everything = list(client.iter_status_changes(DAY, DAY + timedelta(hours=1)))
    assert len(everything) == 13 and any(c.status_id == 142 for c in everything)


def test_leads_in_batches_with_contacts_and_custom_fields(fake, client):
    pipeline = fake.add_pipeline(statuses=["Первичный"])
    speed = fake.add_custom_field("Скорость обработки", enums=["5-10 мин", "1-3 часа"])
    source = fake.add_custom_field("Источник", type="text", code="SOURCE")
    patient = fake.add_contact("Иванова Анна", phones=["+79991234567"])
    relative = fake.add_contact("Иванов")
    ids = [
        fake.add_lead(
            f"Сделка {n}",
            custom_fields={speed: "1-3 часа", source: "Яндекс"},
            contact_ids=[patient, relative],
            created_at=DAY,
        )
        for n in range(120)
    ]

    leads = client.leads_by_ids([*ids, ids[0]])  # duplicates are asked for once
    assert sorted(leads) == sorted(ids)
    lead = leads[ids[0]]
    assert lead.contact_ids == [patient, relative]
    assert lead.custom_fields[speed] == ["1-3 часа"] and lead.custom_fields["SOURCE"] == ["Яндекс"]
    assert parse_processing_speed(lead.custom_fields[speed][0]) == 60
    assert lead.created_at == DAY and lead.updated_at == DAY
    assert (lead.pipeline_id, lead.status_id) == (pipeline, fake.statuses_of(pipeline)["Первичный"])
    requests = fake.requests_to("GET", "/api/v4/leads")
    assert len(requests) == math.ceil(120 / ID_BATCH)
    assert all(r.query["with"] == ["contacts"] for r in requests)

    contacts = client.contacts_by_ids([patient, relative])
    assert contacts[patient].phones == ["+79991234567"] and contacts[relative].phones == []


def test_empty_lists_answer_204(fake, client):
    assert list(client.iter_call_events(DAY, DAY + timedelta(days=1))) == []
    assert client.leads_by_ids([404]) == {}
    assert client.notes_by_ids("leads", [1, 2]) == {}
    assert client.pipelines() == [] and client.users() == []
    assert client.leads_by_ids([]) == {} and client.contacts_by_ids([]) == {}
    # Empty id lists cost no request.
    assert len(fake.requests_to("GET", "/api/v4/leads")) == 1
    assert not fake.requests_to("GET", "/api/v4/contacts")


def test_add_lead_note(fake, client):
    lead = fake.add_lead()
    note_id = client.add_lead_note(lead, "Итог звонка: записан на 12:00")
    [stored] = fake.added_notes
    assert stored["id"] == note_id and stored["entity_id"] == lead
    assert stored["params"]["text"] == "Итог звонка: записан на 12:00"


def test_add_lead_note_is_not_retried_after_a_server_error(fake, client):
    lead = fake.add_lead()
    fake.fail_next("POST", "/api/v4/leads/notes", status=502)
    with pytest.raises(TemporaryHttpError):
        client.add_lead_note(lead, "текст")
    assert len(fake.requests_to("POST", "/api/v4/leads/notes")) == 1


# -- failures ------------------------------------------------------------------------------------
def test_429_storm_is_survived_honouring_retry_after(fake):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY)
    fake.fail_next("GET", "/api/v4/events", times=3, status=429, headers={"Retry-After": "2"})
    sleeps: list[float] = []
    with client_with_fake_sleep(fake, sleeps) as amo:
        events = list(amo.iter_call_events(DAY, DAY + timedelta(days=1)))
    assert len(events) == 1
    assert sleeps == [2.0, 2.0, 2.0]
    assert len(fake.requests_to("GET", "/api/v4/events")) == 4


def test_429_beyond_the_retries_is_temporary(fake):
    fake.fail_next("GET", "/api/v4/account", times=3, status=429, headers={"Retry-After": "1"})
    with client_with_fake_sleep(fake, [], retries=2) as amo, pytest.raises(TemporaryHttpError) as error:
        amo.account()
    assert error.value.status == 429 and error.value.retry_after == 1.0


def test_invalid_token_is_unauthorized_then_refresh_and_retry_once(fake):
    with oauth_for(fake) as oauth:
        tokens = oauth.exchange_code(fake.issue_code())
        fake.revoke_access_tokens()
        with AmoClient(fake.url, tokens.access_token, rate_per_second=FAST) as amo:
            with pytest.raises(AmoUnauthorized) as unauthorized:
                amo.account()
            assert unauthorized.value.status == 401
            assert tokens.access_token not in str(unauthorized.value)
            amo.set_access_token(oauth.refresh(tokens.refresh_token).access_token)
            assert amo.account().id == fake.account["id"]
    assert fake.requests_to("GET", "/api/v4/account")[0].headers["authorization"] == f"Bearer {tokens.access_token}"


def test_blocked_ip_and_malformed_body(fake, client):
    fake.fail_next(
        "GET", "/api/v4/users", status=403, body={"title": "Forbidden", "status": 403, "detail": "IP is blocked"}
    )
    with pytest.raises(AmoAccessDenied):
        client.users()
    fake.fail_next("GET", "/api/v4/account", kind="malformed")
    with pytest.raises(ProviderResponseError):
        client.account()


def test_rate_limiter_keeps_under_seven_per_second(fake):
    fake.max_rps = 7
    started = time.monotonic()
    with AmoClient(fake.url, fake.access_token) as amo:
        for _ in range(15):
            amo.account()
    elapsed = time.monotonic() - started
    assert fake.rate_limited == 0
    assert len(fake.requests_to("GET", "/api/v4/account")) == 15
    assert elapsed >= 1.8


def test_fake_enforces_the_limit_when_the_client_does_not(fake):
    fake.max_rps = 7
    with httpx.Client() as raw:
        statuses = [
            raw.get(f"{fake.url}/api/v4/account", headers={"Authorization": f"Bearer {fake.access_token}"}).status_code
            for _ in range(10)
        ]
    assert statuses.count(429) >= 1 and fake.rate_limited >= 1


@pytest.mark.parametrize(
    ("given", "base_url"),
    [
        ("clinic", "https://clinic.amocrm.ru"),
        ("Clinic", "https://clinic.amocrm.ru"),
        ("clinic.kommo.com", "https://clinic.kommo.com"),
        ("https://clinic.amocrm.ru/", "https://clinic.amocrm.ru"),
        ("https://clinic.amocrm.ru/api/v4", "https://clinic.amocrm.ru"),
    ],
)
def test_base_url_from_subdomain_or_url(given, base_url):
    assert normalize_base_url(given) == base_url


@pytest.mark.parametrize("given", ["", "bad subdomain", "ftp://clinic.amocrm.ru"])
def test_bad_base_url_is_refused(given):
    with pytest.raises(ValueError):
        normalize_base_url(given)


# -- helpers -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        ("0 мин", 0),
        ("5-10 мин", 5),
        ("10–30 мин", 10),
        ("1-3 часа", 60),
        ("1-3 дня", 1440),
        ("более 3 дней", 4320),
        ("до 5 мин", 0),
        ("5-10 min", 5),
        ("1-3 hours", 60),
        ("1-3 days", 1440),
        ("More than 3 days", 4320),
        ("", None),
        (None, None),
        ("быстро", None),
        ("5-10", None),
    ],
)
def test_parse_processing_speed(value, minutes):
    assert parse_processing_speed(value) == minutes

"""Call sync against the fake amoCRM: batching, idempotency, clinic days, 429s, fields, administrators."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest

from calls.amocrm import sync
from calls.amocrm.sync import amocrm_sync_incremental, amocrm_sync_range
from calls.models import Call
from clinics.models import Administrator, CrmConnection
from medai.integrations.amocrm import CallStatus
from tests.amocrm.conftest import DAY, api_requests
from tests.factories import AdministratorFactory, WorkScheduleFactory

MOSCOW_DAY = date(2026, 11, 16)


def run_range(connection, first=MOSCOW_DAY, last=None):
    return amocrm_sync_range(connection=connection, date_from=first, date_to=last or first)


def test_calls_are_stored_with_everything_the_note_and_lead_know(fake, connection):
    maria = fake.add_user("Мария Иванова", "maria@clinic.example")
    source = fake.add_custom_field("Источник", enums=["Яндекс", "Сайт"])
    speed = fake.add_custom_field("Скорость обработки", enums=["0 мин", "5-10 мин", "1-3 часа"])
    patient = fake.add_contact("Анна", phones=["+79991234567"])
    lead = fake.add_lead(custom_fields={source: "Яндекс", speed: "5-10 мин"}, contact_ids=[patient], responsible_user_id=maria)
    answered = fake.add_call(entity_id=lead, created_at=DAY, duration=95, phone="8 (999) 123-45-67", responsible_user_id=maria)
    outbound = fake.add_call(entity_id=lead, created_at=DAY + timedelta(hours=1), direction="outbound", call_status=CallStatus.BUSY, duration=0)
    missed = fake.add_call(entity_id=lead, created_at=DAY + timedelta(hours=2), call_status=CallStatus.NOT_GOT_THROUGH, duration=0)

    stats = run_range(connection)

    assert (stats.events, stats.created) == (3, 3)
    call = Call.objects.get(external_id=f"amocrm-note-{answered.note_id}")
    assert call.source == Call.Source.AMOCRM and call.clinic == connection.clinic
    assert (call.direction, call.status, call.duration_seconds) == ("inbound", "answered", 95)
    assert call.phone == "+79991234567"
    assert call.recording_url == f"https://records.example/call-{answered.note_id}.mp3"
    assert (call.crm_lead_id, call.crm_contact_id, call.crm_responsible_user_id) == (lead, patient, maria)
    assert call.administrator.name == "Мария Иванова" and call.administrator.crm_user_id == maria
    assert (call.traffic_source, call.lead_processing_minutes) == ("Яндекс", 5)
    assert call.started_at == DAY and call.local_date == MOSCOW_DAY
    assert Call.objects.get(external_id=f"amocrm-note-{outbound.note_id}").status == "busy"
    assert Call.objects.get(external_id=f"amocrm-note-{outbound.note_id}").direction == "outbound"
    assert Call.objects.get(external_id=f"amocrm-note-{missed.note_id}").status == "missed"


def test_syncing_twice_creates_nothing_new_and_fetches_no_note_twice(fake, connection):
    lead = fake.add_lead()
    for n in range(30):
        fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=n))

    first = run_range(connection)
    notes_after_first = len(fake.requests_to("GET", "/api/v4/leads/notes"))
    second = run_range(connection)

    assert (first.created, second.created, second.existing) == (30, 0, 30)
    assert Call.objects.count() == 30
    assert len(fake.requests_to("GET", "/api/v4/leads/notes")) == notes_after_first  # not fetched again
    assert len(fake.requests_to("GET", "/api/v4/leads")) == 1  # leads only for new calls


def test_request_count_proves_batching(fake, connection):
    fake.add_user("Мария")
    fake.add_pipeline("Первичные", ["Первичный контакт", "Записан"])
    leads = [fake.add_lead() for _ in range(120)]
    for n in range(300):
        fake.add_call(entity_id=leads[n % 120], created_at=DAY + timedelta(seconds=30 * n))

    stats = run_range(connection)

    assert stats.created == 300
    per_path = Counter(r.path for r in api_requests(fake))
    assert per_path["/api/v4/events"] == 3 + 1  # 300 calls / 100 per page, plus the status changes
    assert per_path["/api/v4/leads/notes"] == 3  # 100 ids per request
    assert per_path["/api/v4/leads"] == 2  # 120 leads / 100
    assert sum(per_path.values()) <= 20, per_path  # not 300+


def test_a_call_late_in_the_utc_evening_belongs_to_the_next_moscow_day(fake, connection):
    lead = fake.add_lead()
    late = fake.add_call(entity_id=lead, created_at=datetime(2026, 11, 15, 23, 30, tzinfo=UTC))  # 02:30 on the 16th
    before_midnight = fake.add_call(entity_id=lead, created_at=datetime(2026, 11, 15, 20, 59, tzinfo=UTC))  # 23:59 on the 15th

    assert run_range(connection, date(2026, 11, 16)).created == 1
    call = Call.objects.get()
    assert call.external_id == f"amocrm-note-{late.note_id}"
    assert call.local_date == date(2026, 11, 16)

    assert run_range(connection, date(2026, 11, 15)).created == 1
    assert Call.objects.get(external_id=f"amocrm-note-{before_midnight.note_id}").local_date == date(2026, 11, 15)
    # The range asked amoCRM for Moscow midnight to midnight, i.e. 21:00 UTC to 21:00 UTC.
    asked = fake.requests_to("GET", "/api/v4/events")[0].query
    assert asked["filter[created_at][from]"] == [str(int(datetime(2026, 11, 15, 21, tzinfo=UTC).timestamp()))]


def test_a_429_storm_is_survived(fake, connection):
    lead = fake.add_lead()
    for n in range(120):
        fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=n))
    storm = {"status": 429, "headers": {"Retry-After": "0"}}
    fake.fail_next("GET", "/api/v4/events", times=3, **storm)
    fake.fail_next("GET", "/api/v4/leads/notes", times=2, **storm)
    fake.fail_next("GET", "/api/v4/leads", times=2, **storm)
    fake.fail_next("GET", "/api/v4/users", times=1, **storm)

    assert run_range(connection).created == 120
    assert Call.objects.count() == 120


def test_a_storm_past_the_retries_leaves_the_cursor_and_the_next_run_catches_up(fake, connection):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY)
    connection.sync_cursor = DAY - timedelta(hours=1)
    connection.save()
    fake.fail_next("GET", "/api/v4/events", times=10, status=429, headers={"Retry-After": "0"})

    result = amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(hours=1))

    assert "429" in result["error"]
    connection.refresh_from_db()
    assert connection.status == CrmConnection.Status.ACTIVE and "429" in connection.last_error
    assert connection.sync_cursor == DAY - timedelta(hours=1) and connection.sync_lease_until is None
    fake._faults.clear()
    result = amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(hours=1))
    assert result["created"] == 1
    connection.refresh_from_db()
    assert connection.sync_cursor == DAY + timedelta(hours=1) and connection.last_error == ""


def test_the_rate_limit_is_respected_against_an_enforcing_server(fake, connection, settings):
    settings.AMOCRM_RATE_PER_SECOND = 7
    fake.max_rps = 7
    leads = [fake.add_lead() for _ in range(60)]
    for n in range(250):
        fake.add_call(entity_id=leads[n % 60], created_at=DAY + timedelta(minutes=n))

    assert run_range(connection).created == 250
    assert fake.rate_limited == 0


def test_incremental_sync_moves_the_cursor_with_an_overlap(fake, connection, settings):
    settings.AMOCRM_SYNC_OVERLAP_MINUTES = 10
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY - timedelta(minutes=30))
    connection.sync_cursor = DAY - timedelta(hours=1)
    connection.save()

    first = amocrm_sync_incremental(connection_id=connection.pk, now=DAY)
    assert first["created"] == 1
    # A note amoCRM logged late, inside the overlap, is still picked up by the next run.
    fake.add_call(entity_id=lead, created_at=DAY - timedelta(minutes=5))
    second = amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(minutes=5))
    assert (second["created"], second["existing"]) == (1, 0)
    call_queries = [r.query for r in fake.requests_to("GET", "/api/v4/events") if "incoming_call" in r.query["filter[type][]"]]
    asked = call_queries[-1]  # the second run's
    assert asked["filter[created_at][from]"] == [str(int((DAY - timedelta(minutes=10)).timestamp()))]
    connection.refresh_from_db()
    assert connection.sync_cursor == DAY + timedelta(minutes=5) and connection.last_synced_at is not None


def test_a_new_connection_starts_from_the_start_of_yesterday_in_clinic_time(connection, settings):
    settings.AMOCRM_SYNC_INITIAL_DAYS = 1
    now = datetime(2026, 11, 16, 22, 0, tzinfo=UTC)  # already the 17th in Moscow
    with time_machine_at(now):
        start, end = sync.incremental_window(connection, now)
    assert start == datetime(2026, 11, 15, 21, 0, tzinfo=UTC) - sync.overlap()  # 16th 00:00 MSK
    assert end == now


def time_machine_at(moment):
    import time_machine

    return time_machine.travel(moment, tick=False)


def test_busy_lease_skips_the_scheduled_run(connection):
    assert sync.lease_acquire(connection.pk)
    assert amocrm_sync_incremental(connection_id=connection.pk) == {"skipped": "busy"}
    sync.lease_release(connection.pk)


def test_an_unusable_phone_is_dropped_not_the_call(fake, connection):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY, phone="not a number")
    fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=1), phone="")

    stats = run_range(connection)

    assert (stats.created, stats.phones_dropped) == (2, 1)
    assert set(Call.objects.values_list("phone", flat=True)) == {""}


def test_calls_on_contacts_and_events_without_notes(fake, connection):
    contact = fake.add_contact("Пётр", phones=["+79990001122"])
    on_contact = fake.add_call(entity_id=contact, entity_type="contact", created_at=DAY)
    lead = fake.add_lead()
    gone = fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=1))
    del fake.notes["leads"][gone.note_id]  # deleted in amoCRM since

    stats = run_range(connection)

    assert (stats.created, stats.notes_missing) == (1, 1)
    call = Call.objects.get()
    assert call.external_id == f"amocrm-note-{on_contact.note_id}"
    assert (call.crm_lead_id, call.crm_contact_id) == (None, contact)
    assert fake.requests_to("GET", "/api/v4/contacts/notes")


def test_numeric_speed_and_field_codes(fake, connection):
    connection.source_field = "UTM_SOURCE"
    connection.speed_field = "Минуты до ответа"
    connection.save()
    source = fake.add_custom_field("utm_source", type="text", code="UTM_SOURCE")
    minutes = fake.add_custom_field("Минуты до ответа", type="numeric")
    lead = fake.add_lead(custom_fields={source: "google", minutes: "17"})
    fake.add_call(entity_id=lead, created_at=DAY)

    run_range(connection)

    call = Call.objects.get()
    assert (call.traffic_source, call.lead_processing_minutes) == ("google", 17)


# --- administrators -------------------------------------------------------------------------------
def test_users_become_administrators_and_link_to_hand_made_ones(fake, connection):
    existing = AdministratorFactory(clinic=connection.clinic, name="Ольга")
    olga = fake.add_user("Ольга")
    fake.add_user("Мария")
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY, responsible_user_id=olga)

    run_range(connection)
    run_range(connection)

    existing.refresh_from_db()
    assert existing.crm_user_id == olga
    assert sorted(Administrator.objects.filter(clinic=connection.clinic).values_list("name", flat=True)) == ["Мария", "Ольга"]
    assert Call.objects.get().administrator == existing


def test_without_a_responsible_user_the_schedule_decides(fake, connection):
    shift = WorkScheduleFactory(
        administrator=AdministratorFactory(clinic=connection.clinic, name="Дежурная"),
        date=MOSCOW_DAY,
        start_time=time(9),
        end_time=time(18),
    )
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY)  # 12:00 Moscow

    run_range(connection)

    assert Call.objects.get().administrator == shift.administrator


def test_a_resync_never_clears_an_administrator_and_fills_gaps(fake, connection):
    lead = fake.add_lead()
    stranger = 777_001
    first = fake.add_call(entity_id=lead, created_at=DAY, responsible_user_id=stranger)
    manual = fake.add_call(entity_id=lead, created_at=DAY + timedelta(minutes=5))
    run_range(connection)
    assert Call.objects.get(external_id=f"amocrm-note-{first.note_id}").administrator is None
    chosen = AdministratorFactory(clinic=connection.clinic, name="Назначена вручную")
    Call.objects.filter(external_id=f"amocrm-note-{manual.note_id}").update(administrator=chosen)

    fake.add_user("Новый сотрудник", id=stranger)  # the user appears in amoCRM later
    stats = run_range(connection)

    assert stats.administrators_filled == 1
    assert Call.objects.get(external_id=f"amocrm-note-{first.note_id}").administrator.crm_user_id == stranger
    assert Call.objects.get(external_id=f"amocrm-note-{manual.note_id}").administrator == chosen


@pytest.mark.parametrize(
    ("call_status", "duration", "expected"),
    [
        (CallStatus.TALKED, 30, "answered"),
        (CallStatus.NOT_GOT_THROUGH, 0, "missed"),
        (CallStatus.BUSY, 0, "busy"),
        (CallStatus.LEFT_MESSAGE, 12, "missed"),
        (None, 40, "answered"),
        (None, 0, "missed"),
        (CallStatus.CALL_BACK_LATER, 25, "answered"),
    ],
)
def test_call_status_mapping(fake, connection, call_status, duration, expected):
    lead = fake.add_lead()
    fake.add_call(entity_id=lead, created_at=DAY, call_status=call_status, duration=duration)
    run_range(connection)
    assert Call.objects.get().status == expected


def test_new_calls_are_queued_for_the_pipeline_in_batches(fake, connection, monkeypatch):
    lead = fake.add_lead()
    for n in range(sync.INGEST_BATCH + 10):
        fake.add_call(entity_id=lead, created_at=DAY + timedelta(seconds=n))
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: sent.append(args))

    run_range(connection)

    assert [(task, len(ids)) for task, ids in sent] == [
        ("calls.amocrm.tasks.queue_pipeline", sync.INGEST_BATCH),
        ("calls.amocrm.tasks.queue_pipeline", 10),
    ]
    steps = []
    monkeypatch.setattr("calls.pipeline.enqueue_step", lambda call_id, step: steps.append((call_id, step)))
    from calls.amocrm.tasks import queue_pipeline

    assert queue_pipeline(sent[1][1]) == 10
    assert {step for _id, step in steps} == {"fetch_audio"} and len(steps) == 10

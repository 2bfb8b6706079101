"""Conversion: "booked" statuses detected from names (or set by an operator), booking from status changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from calls.amocrm.conversion import (
    BOOKING_GRACE,
    Candidate,
    ConversionConfig,
    attribute_bookings,
    conversion_detect,
    is_booked_status_name,
)
from calls.amocrm.sync import amocrm_sync_incremental, amocrm_sync_range
from calls.models import Call
from medai.integrations.amocrm import STATUS_WON, Pipeline, Status
from tests.amocrm.conftest import DAY

MOSCOW_DAY = date(2026, 11, 16)


@pytest.mark.parametrize(
    ("name", "booked"),
    [
        ("Записан", True),
        ("Запись", True),
        ("Записался на приём", True),
        ("Booked", True),
        ("Appointment scheduled", True),
        ("Не записан", False),
        ("Отказ от записи", False),
        ("Запись отменена", False),
        ("Первичный контакт", False),
        ("Успешно реализовано", False),
    ],
)
def test_booked_status_names(name, booked):
    assert is_booked_status_name(name) is booked


def _pipeline(pipeline_id, name, statuses, *, main=False):
    return Pipeline(pipeline_id, name, main, [Status(sid, sname, pipeline_id, 0) for sid, sname in statuses])


def test_detection_takes_the_main_pipeline_first_then_a_secondary_one():
    pipelines = [
        _pipeline(2, "Повторные", [(21, "Новый"), (22, "Записался")]),
        _pipeline(1, "Первичные", [(11, "Новый"), (12, "Записан"), (STATUS_WON, "Успешно реализовано")], main=True),
        _pipeline(3, "HR", [(31, "Собеседование")]),
    ]
    config = conversion_detect(pipelines)
    assert config["primary"]["pipeline_id"] == 1 and config["primary"]["booked_status_ids"] == [12]
    assert config["secondary"]["pipeline_id"] == 2 and config["secondary"]["booked_statuses"] == ["Записался"]


def test_detection_falls_back_to_the_won_status():
    config = conversion_detect([_pipeline(1, "Воронка", [(11, "Новый"), (STATUS_WON, "Успешно реализовано")], main=True)])
    assert config["primary"]["booked_status_ids"] == [STATUS_WON] and config["secondary"] is None
    assert ConversionConfig.from_json(config).is_booked(1, STATUS_WON)


def test_a_booking_belongs_to_the_last_answered_call_before_it_on_that_clinic_day():
    morning, noon, evening = (DAY - timedelta(hours=3), DAY, DAY + timedelta(hours=6))
    candidates = [
        Candidate("morning", 1, morning, True),
        Candidate("noon", 1, noon, True),
        Candidate("missed", 1, noon + timedelta(minutes=2), False),
        Candidate("evening", 1, evening, True),
        Candidate("other-lead", 2, noon, True),
    ]
    # Moved to "booked" during the noon call, before its note (and event) was written.
    booked = attribute_bookings({1: [noon + timedelta(minutes=3) - BOOKING_GRACE + timedelta(minutes=1)]}, candidates, "Europe/Moscow")
    assert booked == {"noon"}
    # A booking on another clinic day books nothing of this one.
    assert attribute_bookings({1: [DAY + timedelta(days=1)]}, candidates, "Europe/Moscow") == set()


@pytest.fixture
def booked_pipeline(fake):
    pipeline = fake.add_pipeline("Первичные", ["Первичный контакт", "Записан"])
    return pipeline, fake.statuses_of(pipeline)


def test_sync_sets_crm_booking_from_status_changes(fake, connection, booked_pipeline):
    pipeline, statuses = booked_pipeline
    booked_lead, other_lead = fake.add_lead(pipeline_id=pipeline), fake.add_lead(pipeline_id=pipeline)
    booking_call = fake.add_call(entity_id=booked_lead, created_at=DAY)
    fake.add_status_change(lead_id=booked_lead, status_id=statuses["Записан"], pipeline_id=pipeline, created_at=DAY + timedelta(minutes=4))
    plain_call = fake.add_call(entity_id=other_lead, created_at=DAY + timedelta(minutes=10))

    stats = amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)

    assert (stats.booked, stats.not_booked) == (1, 1)
    booked = Call.objects.get(external_id=f"amocrm-note-{booking_call.note_id}")
    assert (booked.booked, booked.booked_source) == (True, "crm")
    plain = Call.objects.get(external_id=f"amocrm-note-{plain_call.note_id}")
    assert (plain.booked, plain.booked_source) == (False, "crm")
    connection.refresh_from_db()
    assert connection.conversion["auto"] is True
    assert connection.conversion["primary"]["booked_status_ids"] == [statuses["Записан"]]
    # One events request for the whole window's status changes, not one per call.
    changes = [r for r in fake.requests_to("GET", "/api/v4/events") if r.query["filter[type][]"] == ["lead_status_changed"]]
    assert len(changes) == 1 and "filter[entity_id][]" not in changes[0].query


def test_a_booking_made_after_the_call_was_synced_is_picked_up_later(fake, connection, booked_pipeline):
    pipeline, statuses = booked_pipeline
    lead = fake.add_lead(pipeline_id=pipeline)
    fake.add_call(entity_id=lead, created_at=DAY)
    connection.sync_cursor = DAY - timedelta(minutes=30)
    connection.save()
    amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(minutes=1))
    assert Call.objects.get().booked is False

    fake.add_status_change(lead_id=lead, status_id=statuses["Записан"], pipeline_id=pipeline, created_at=DAY + timedelta(minutes=20))
    result = amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(minutes=25))

    assert result["booked"] == 1
    assert (Call.objects.get().booked, Call.objects.get().booked_source) == (True, "crm")
    # A later run that no longer sees the change leaves the booking alone.
    amocrm_sync_incremental(connection_id=connection.pk, now=DAY + timedelta(hours=2))
    assert Call.objects.get().booked is True


def test_an_operators_override_is_kept_and_used(fake, connection, booked_pipeline):
    pipeline, statuses = booked_pipeline
    confirmed = fake.statuses_of(pipeline)["Первичный контакт"]
    connection.conversion = {
        "auto": False,
        "primary": {"pipeline_id": pipeline, "booked_status_ids": [confirmed]},
        "secondary": None,
        "confirmation_field": "",
    }
    connection.save()
    lead = fake.add_lead(pipeline_id=pipeline)
    fake.add_call(entity_id=lead, created_at=DAY)
    fake.add_status_change(lead_id=lead, status_id=confirmed, pipeline_id=pipeline, old_status_id=statuses["Записан"], created_at=DAY + timedelta(minutes=1))

    amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)

    connection.refresh_from_db()
    assert connection.conversion["auto"] is False and connection.conversion["primary"]["booked_status_ids"] == [confirmed]
    assert Call.objects.get().booked is True


def test_a_confirmation_field_books_the_days_call(fake, connection, booked_pipeline):
    pipeline, _statuses = booked_pipeline
    field = fake.add_custom_field("Запись подтверждена", type="checkbox")
    connection.conversion = {"auto": True, "confirmation_field": "Запись подтверждена"}
    connection.save()
    lead = fake.add_lead(pipeline_id=pipeline, custom_fields={field: True}, updated_at=DAY + timedelta(minutes=3))
    fake.add_call(entity_id=lead, created_at=DAY)

    amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)

    assert Call.objects.get().booked is True
    connection.refresh_from_db()
    assert connection.conversion["confirmation_field"] == "Запись подтверждена"


def test_leads_outside_the_configured_pipelines_get_no_crm_verdict(fake, connection, booked_pipeline):
    hr = fake.add_pipeline("HR", ["Собеседование"], is_main=False)
    lead = fake.add_lead(pipeline_id=hr)
    fake.add_call(entity_id=lead, created_at=datetime(2026, 11, 16, 10, tzinfo=UTC))

    amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)

    assert (Call.objects.get().booked, Call.objects.get().booked_source) == (None, "")


def test_a_later_booking_does_not_override_an_operators_correction(fake, connection, booked_pipeline):
    pipeline, statuses = booked_pipeline
    lead = fake.add_lead(pipeline_id=pipeline)
    fake.add_call(entity_id=lead, created_at=DAY)
    amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)
    Call.objects.update(booked=False, booked_source="manual")

    fake.add_status_change(lead_id=lead, status_id=statuses["Записан"], pipeline_id=pipeline, created_at=DAY + timedelta(minutes=5))
    amocrm_sync_range(connection=connection, date_from=MOSCOW_DAY, date_to=MOSCOW_DAY)

    assert (Call.objects.get().booked, Call.objects.get().booked_source) == (False, "manual")

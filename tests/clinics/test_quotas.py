import threading
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection

from clinics.models import OutboxEvent, QuotaLedger, QuotaPeriod
from clinics.quotas import (
    current_periods,
    quota_release,
    quota_reserve,
    quota_reset,
    quota_set_limits,
    quota_settle,
    quota_top_up,
    quota_usage,
)
from tests.factories import ClinicFactory


@pytest.mark.django_db
def test_reserve_settle_moves_reserved_into_used_in_both_periods():
    clinic = ClinicFactory(monthly_limit_minutes=100, weekly_limit_minutes=10)
    reservation = quota_reserve(clinic=clinic, call_id=1, seconds=119.2)
    assert reservation.seconds == 120
    periods = current_periods(clinic)
    assert {p.reserved_seconds for p in periods.values()} == {120}
    quota_settle(reservation=reservation, billed_seconds=100.4)
    for period in current_periods(clinic).values():
        assert (period.reserved_seconds, period.used_seconds) == (0, 101)
    entries = list(QuotaLedger.objects.filter(call_id=1).values_list("entry", flat=True))
    assert sorted(entries) == ["reserve", "reserve", "settle", "settle"]


@pytest.mark.django_db
def test_settle_and_release_are_idempotent_and_reserve_reuses_open_reservation():
    clinic = ClinicFactory()
    first = quota_reserve(clinic=clinic, call_id=7, seconds=60)
    again = quota_reserve(clinic=clinic, call_id=7, seconds=60)
    assert again == first
    quota_release(reservation=first)
    quota_release(reservation=first)
    quota_settle(reservation=first, billed_seconds=60)
    for period in current_periods(clinic).values():
        assert (period.reserved_seconds, period.used_seconds) == (0, 0)


@pytest.mark.django_db
def test_reservation_refused_when_either_period_is_full():
    clinic = ClinicFactory(monthly_limit_minutes=100, weekly_limit_minutes=1)
    assert quota_reserve(clinic=clinic, call_id=1, seconds=50) is not None
    assert quota_reserve(clinic=clinic, call_id=2, seconds=20) is None  # week: 50 + 20 > 60
    month = current_periods(clinic)[QuotaPeriod.Kind.MONTH]
    assert month.reserved_seconds == 50  # the month was not touched by the refused attempt
    assert QuotaLedger.objects.filter(call_id=2).count() == 0


@pytest.mark.django_db
def test_top_up_and_limits_make_room_and_are_ledgered():
    clinic = ClinicFactory(monthly_limit_minutes=1, weekly_limit_minutes=1)
    assert quota_reserve(clinic=clinic, call_id=1, seconds=90) is None
    quota_top_up(clinic=clinic, kind="week", minutes=5, actor="op")
    assert quota_reserve(clinic=clinic, call_id=1, seconds=90) is None  # month still 1 min
    quota_set_limits(clinic=clinic, monthly_minutes=10, actor="op")
    assert quota_reserve(clinic=clinic, call_id=1, seconds=90) is not None
    clinic.refresh_from_db()
    assert clinic.monthly_limit_minutes == 10
    assert set(QuotaLedger.objects.exclude(call_id=1).values_list("entry", "actor")) == {("top_up", "op"), ("limit", "op")}


@pytest.mark.django_db
def test_reset_zeroes_usage_but_keeps_reservations():
    clinic = ClinicFactory(weekly_limit_minutes=2)
    done = quota_reserve(clinic=clinic, call_id=1, seconds=60)
    quota_settle(reservation=done, billed_seconds=60)
    quota_reserve(clinic=clinic, call_id=2, seconds=30)
    week = quota_reset(clinic=clinic, kind="week", actor="op")
    assert (week.used_seconds, week.reserved_seconds) == (0, 30)
    assert QuotaLedger.objects.get(entry="reset").seconds == -60


@pytest.mark.django_db
def test_thresholds_emit_one_event_each():
    clinic = ClinicFactory(monthly_limit_minutes=1000, weekly_limit_minutes=10)
    quota_settle(reservation=quota_reserve(clinic=clinic, call_id=1, seconds=7 * 60), billed_seconds=7 * 60)
    assert not OutboxEvent.objects.exists()
    quota_settle(reservation=quota_reserve(clinic=clinic, call_id=2, seconds=60), billed_seconds=60)
    quota_settle(reservation=quota_reserve(clinic=clinic, call_id=3, seconds=30), billed_seconds=30)
    events = list(OutboxEvent.objects.values_list("kind", "payload__percent", "payload__period"))
    assert events == [("quota_threshold", 80, "week")]
    quota_settle(reservation=quota_reserve(clinic=clinic, call_id=4, seconds=90), billed_seconds=90)
    assert sorted(OutboxEvent.objects.values_list("payload__percent", flat=True)) == [80, 100]


@pytest.mark.django_db
def test_week_rolls_at_monday_midnight_moscow_not_utc():
    clinic = ClinicFactory(time_zone="Europe/Moscow")
    # Sunday 23:59 in Moscow is Sunday 20:59 UTC.
    with time_machine.travel(datetime(2026, 11, 22, 20, 59, tzinfo=UTC), tick=False):
        before = current_periods(clinic)
        assert before["week"].start == date(2026, 11, 16)
        quota_settle(reservation=quota_reserve(clinic=clinic, call_id=1, seconds=60), billed_seconds=60)
    # Monday 00:00 in Moscow is still Sunday (21:00) in UTC — the new week has begun.
    with time_machine.travel(datetime(2026, 11, 22, 21, 0, tzinfo=UTC), tick=False):
        after = current_periods(clinic)
        assert after["week"].start == date(2026, 11, 23)
        assert after["week"].used_seconds == 0
        assert after["month"].pk == before["month"].pk
        assert after["month"].used_seconds == 60


@pytest.mark.django_db
def test_month_rolls_on_the_first_in_clinic_time():
    clinic = ClinicFactory(time_zone="Asia/Vladivostok")  # UTC+10
    with time_machine.travel(datetime(2026, 11, 30, 14, 0, tzinfo=UTC), tick=False):  # 1 Dec 00:00 local
        assert current_periods(clinic)["month"].start == date(2026, 12, 1)


@pytest.mark.django_db
def test_usage_report_in_minutes():
    clinic = ClinicFactory(monthly_limit_minutes=3000, weekly_limit_minutes=750)
    quota_settle(reservation=quota_reserve(clinic=clinic, call_id=1, seconds=90), billed_seconds=90)
    usage = quota_usage(clinic)
    assert usage["month"]["used_minutes"] == 1.5
    assert usage["week"]["available_minutes"] == 748.5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_reservations_against_a_limit_for_ten():
    """Real parallel workers on PostgreSQL: the limit fits exactly 10 one-minute calls."""
    clinic = ClinicFactory(monthly_limit_minutes=10, weekly_limit_minutes=100)
    current_periods(clinic)  # create the rows first, as the pipeline would have
    barrier = threading.Barrier(20)
    results = []
    errors = []

    def worker(call_id):
        try:
            barrier.wait()
            results.append(quota_reserve(clinic=clinic, call_id=call_id, seconds=60))
        except Exception as exc:  # pragma: no cover - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    granted = [r for r in results if r is not None]
    assert len(granted) == 10
    month = current_periods(clinic)["month"]
    assert month.reserved_seconds == 600
    assert QuotaLedger.objects.filter(entry="reserve", period=month).count() == 10


@pytest.mark.django_db
def test_quota_api_read_and_staff_only_changes(api_client, key_client, clinic):
    from tests.factories import UserFactory

    usage = key_client.get("/api/quota/").json()
    assert [row["clinic"] for row in usage] == [clinic.pk]
    assert usage[0]["month"]["limit_minutes"] == 3000
    # An API key cannot change limits.
    denied = key_client.post(f"/api/quota/{clinic.pk}/top-up/", {"period": "week", "minutes": 10}, format="json")
    assert denied.status_code == 403
    staff = UserFactory()
    clinic.members.add(staff)
    api_client.force_authenticate(staff)
    response = api_client.post(f"/api/quota/{clinic.pk}/top-up/", {"period": "week", "minutes": 10}, format="json")
    assert response.status_code == 200
    assert response.json()["week"]["topped_up_minutes"] == 10
    bad = api_client.post(f"/api/quota/{clinic.pk}/top-up/", {"period": "year", "minutes": 10}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    assert api_client.post(f"/api/quota/{clinic.pk}/limits/", {"weekly_minutes": 5}, format="json").status_code == 200
    assert api_client.post(f"/api/quota/{clinic.pk}/reset/", {"period": "month"}, format="json").status_code == 200
    ledger = api_client.get(f"/api/quota/{clinic.pk}/ledger/").json()
    assert {row["entry"] for row in ledger} == {"top_up", "limit", "reset"}
    other = ClinicFactory()
    assert api_client.post(f"/api/quota/{other.pk}/reset/", {"period": "month"}, format="json").status_code == 404

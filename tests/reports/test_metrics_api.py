from datetime import timedelta

import pytest

from calls.models import Call
from reports import rollups
from tests.factories import AdministratorFactory
from tests.reports.conftest import DAY, make_call

pytestmark = pytest.mark.django_db

FUNNEL = "/api/metrics/funnel/"
SUMMARY = "/api/metrics/summary/"
PERIOD = {"date_from": DAY.isoformat(), "date_to": (DAY + timedelta(days=6)).isoformat()}


@pytest.fixture
def traffic(clinic_a, admin_a):
    """Inbound: 4 calls, 3 answered, 2 interested, 1 booked. Outbound: 2 calls, 2 answered, 1 interested, 1 booked."""
    other_admin = AdministratorFactory(clinic=clinic_a, name="Олег")
    make_call(clinic_a, administrator=admin_a, call_type="first_contact", overall=8, booked=True, source="Сайт", duration=200)
    make_call(clinic_a, administrator=admin_a, call_type="first_contact", overall=4, interest="medium", source="Сайт", duration=100)
    make_call(clinic_a, administrator=other_admin, call_type="repeat", overall=6, interest="low", source="2ГИС", duration=60)
    make_call(clinic_a, administrator=other_admin, status=Call.Status.MISSED, duration=0, day=DAY + timedelta(days=1))
    make_call(clinic_a, direction=Call.Direction.OUTBOUND, call_type="confirmation", overall=10, booked=True, duration=30)
    make_call(clinic_a, direction=Call.Direction.OUTBOUND, call_type="callback", overall=2, duration=50)
    rollups.rollups_rebuild(clinic_ids=[clinic_a.pk])
    return other_admin


def test_funnel_by_direction(client_for, clinic_a, traffic):
    client = client_for(clinic_a)
    both = client.get(FUNNEL, PERIOD).json()
    assert [s["count"] for s in both["steps"]] == [6, 5, 3, 2]
    assert [s["key"] for s in both["steps"]] == ["calls", "answered", "interested", "booked"]
    assert both["direction"] == "both"
    assert both["talk_rate"] == pytest.approx(83.33)
    assert both["interest_rate"] == 60.0
    assert both["booking_rate"] == 40.0
    assert both["duration_avg_s"] == pytest.approx(88.0)
    assert both["steps"][1]["rate"] == pytest.approx(83.33) and both["steps"][0]["rate"] is None

    inbound = client.get(FUNNEL, {**PERIOD, "direction": "inbound"}).json()
    assert (inbound["calls"], inbound["answered"], inbound["interested"], inbound["booked"]) == (4, 3, 2, 1)
    assert inbound["talk_rate"] == 75.0
    outbound = client.get(FUNNEL, {**PERIOD, "direction": "outbound"}).json()
    assert (outbound["calls"], outbound["answered"], outbound["interested"], outbound["booked"]) == (2, 2, 1, 1)
    assert outbound["booking_rate"] == 50.0


def test_funnel_filters_and_groups(client_for, clinic_a, admin_a, traffic):
    client = client_for(clinic_a)
    body = client.get(FUNNEL, {**PERIOD, "administrator": admin_a.pk}).json()
    assert (body["calls"], body["booked"]) == (2, 1)
    assert client.get(FUNNEL, {**PERIOD, "source": "2ГИС"}).json()["calls"] == 1
    assert client.get(FUNNEL, {**PERIOD, "call_type": "first_contact"}).json()["calls"] == 2
    grouped = client.get(FUNNEL, {**PERIOD, "group_by": "administrator"}).json()["groups"]
    by_label = {g["label"]: g for g in grouped}
    assert by_label["Ирина Петрова"]["calls"] == 2 and by_label["Олег"]["calls"] == 2
    days = client.get(FUNNEL, {**PERIOD, "group_by": "day"}).json()["groups"]
    assert [(g["key"], g["calls"]) for g in days] == [(DAY.isoformat(), 5), ((DAY + timedelta(days=1)).isoformat(), 1)]


def test_summary_kpis(client_for, clinic_a, traffic):
    body = client_for(clinic_a).get(SUMMARY, {**PERIOD, "group_by": "call_type"}).json()
    totals = body["totals"]
    assert totals["scored"] == 5
    assert totals["quality_pct"] == 60.0  # (8 + 4 + 6 + 10 + 2) / 5 × 10
    assert totals["good_calls_pct"] == 40.0  # 8 and 10
    assert totals["conversion_pct"] == 40.0
    groups = {g["key"]: g for g in body["groups"]}
    assert groups[""]["label"] == "" and groups[""]["calls"] == 1
    assert groups["first_contact"]["quality_pct"] == 60.0


def test_tenant_isolation(client_for, clinic_a, clinic_b, traffic):
    make_call(clinic_b, call_type="repeat", overall=1)
    rollups.rollups_rebuild(clinic_ids=[clinic_b.pk])
    client_b = client_for(clinic_b)
    assert client_b.get(FUNNEL, PERIOD).json()["calls"] == 1
    assert client_b.get(SUMMARY, PERIOD).json()["totals"]["quality_pct"] == 10.0
    response = client_b.get(FUNNEL, {**PERIOD, "clinic": clinic_a.pk})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = client_b.get(FUNNEL, {**PERIOD, "administrator": traffic.pk})
    assert response.status_code == 400
    assert "administrator" in response.json()["error"]["fields"]


def test_errors_have_one_shape(client_for, clinic_a, api_client):
    client = client_for(clinic_a)
    response = client.get(FUNNEL, {"date_from": "2026-11-20", "date_to": "2026-11-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "date_to" in error["fields"]
    response = client.get(SUMMARY, {"direction": "sideways", "group_by": "moon"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"direction", "group_by"}
    assert client.get(FUNNEL, {"date_from": "yesterday"}).status_code == 400
    anonymous = api_client.get(FUNNEL)
    assert anonymous.status_code in {401, 403} and "error" in anonymous.json()


def test_funnel_default_period_is_the_last_30_clinic_days(client_for, clinic_a, time_machine):
    from datetime import UTC, datetime

    time_machine.move_to(datetime(2026, 11, 30, 22, 0, tzinfo=UTC), tick=False)  # 1 December in Moscow
    body = client_for(clinic_a).get(FUNNEL).json()
    assert (body["date_from"], body["date_to"]) == ("2026-11-02", "2026-12-01")


def test_funnel_query_count_does_not_grow_with_data(client_for, clinic_a, traffic, django_assert_max_num_queries):
    client = client_for(clinic_a)
    client.get(FUNNEL, PERIOD)  # the key's last-used stamp is written once a minute
    with django_assert_max_num_queries(2):
        assert client.get(FUNNEL, {**PERIOD, "group_by": "source"}).status_code == 200
    for n in range(20):
        make_call(clinic_a, call_type="repeat", overall=n % 10, day=DAY + timedelta(days=n % 7))
    rollups.rollups_rebuild(clinic_ids=[clinic_a.pk])
    with django_assert_max_num_queries(2):
        assert client.get(FUNNEL, {**PERIOD, "group_by": "source"}).json()["calls"] == 26

"""Helpers for the reports tests: calls with analyses on given clinic days, and API clients."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analysis.models import Analysis
from calls.models import Call, Recording
from tests.factories import AdministratorFactory, CallFactory, ClinicFactory, UserFactory

DAY = date(2026, 11, 16)  # a Monday


def criterion(key: str, score: int | None, *, applicable: bool = True, title: str = "") -> dict:
    return {"key": key, "title": title or key, "score": score, "applicable": applicable, "comment": ""}


def make_call(
    clinic,
    *,
    day: date = DAY,
    hour: int = 10,
    administrator=None,
    direction: str = Call.Direction.INBOUND,
    status: str = Call.Status.ANSWERED,
    duration: int = 120,
    source: str = "",
    booked: bool | None = None,
    call_type: str | None = None,
    overall: str | float | None = None,
    interest: str = Analysis.Interest.UNKNOWN,
    criteria: list | None = None,
    recommendations: list | None = None,
    recording: bool = False,
    stage: str = "done",
) -> Call:
    """A call at ``hour`` clinic time on ``day``; with an analysis when ``call_type`` is given."""
    local = datetime.combine(day, time(hour, 0), tzinfo=ZoneInfo(clinic.time_zone))
    call = CallFactory(
        clinic=clinic,
        started_at=local.astimezone(UTC),
        administrator=administrator,
        direction=direction,
        status=status,
        duration_seconds=duration,
        traffic_source=source,
        booked=booked,
        stage=stage,
    )
    if call_type is not None:
        Analysis.objects.create(
            call=call,
            engine="rules",
            call_type=call_type,
            overall_score=None if overall is None else Decimal(str(overall)),
            interest=interest,
            criteria=criteria or [],
            recommendations=recommendations or [],
            summary=f"Звонок {call.external_id}",
        )
    if recording:
        from django.core.files.base import ContentFile

        record = Recording(call=call, mime="audio/mpeg", size_bytes=4)
        record.file.save("a.mp3", ContentFile(b"ID3\x00"), save=False)
        record.save()
    return call


@pytest.fixture(autouse=True)
def _english(settings):
    """Assertions below read English labels; reports are built in LANGUAGE_CODE."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Клиника Альфа", slug="alpha")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Клиника Бета", slug="beta")


@pytest.fixture
def admin_a(clinic_a):
    return AdministratorFactory(clinic=clinic_a, name="Ирина Петрова")


@pytest.fixture
def client_for():
    """An API client authenticated with a fresh key of the given clinic."""
    from rest_framework.test import APIClient

    from clinics.services import api_key_create

    def build(clinic):
        _key, raw = api_key_create(clinic=clinic, name="reports-test")
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        return client

    return build


@pytest.fixture
def staff_of():
    def build(*clinics, **fields):
        user = UserFactory(**fields)
        for clinic in clinics:
            clinic.members.add(user)
        return user

    return build


def week_days(start: date = DAY) -> list[date]:
    return [start + timedelta(days=n) for n in range(7)]

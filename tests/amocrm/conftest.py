from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calls.amocrm.connection import connection_complete_oauth, connection_state
from clinics.models import CrmConnection
from tests.fakes.amocrm import FakeAmoCRM

DAY = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


@pytest.fixture(autouse=True)
def _fast_amocrm(settings):
    settings.AMOCRM_RATE_PER_SECOND = 10_000  # tests that are about the rate limit set it back


@pytest.fixture
def fake():
    with FakeAmoCRM() as server:
        yield server


def make_connection(clinic, fake: FakeAmoCRM, *, authorise: bool = True, **fields) -> CrmConnection:
    connection = CrmConnection.objects.create(
        clinic=clinic,
        base_url=fake.url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        redirect_uri=fake.redirect_uri,
        **fields,
    )
    if authorise:
        connection_complete_oauth(state=connection_state(connection), code=fake.issue_code())
        connection.refresh_from_db()
    return connection


@pytest.fixture
def connection(clinic, fake) -> CrmConnection:
    return make_connection(clinic, fake)


def api_requests(fake: FakeAmoCRM) -> list:
    return [r for r in fake.requests if r.path.startswith("/api/v4/")]

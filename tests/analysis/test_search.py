"""Transcript search: the API's ``q`` and the admin's search box (SQLite fallback, PostgreSQL FTS)."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from calls.selectors import call_search
from tests.factories import AdministratorFactory, CallFactory, TranscriptFactory, UserFactory

pytestmark = pytest.mark.django_db


def transcribed(clinic, text, **fields):
    call = CallFactory(clinic=clinic, **fields)
    TranscriptFactory(call=call, utterances=[{"speaker": "A", "role": "patient", "start": 0, "end": 5, "text": text}])
    return call


@pytest.fixture
def calls(clinic):
    vera = AdministratorFactory(clinic=clinic, name="Вера Смирнова")
    return {
        "implant": transcribed(clinic, "Хочу записаться на консультацию по имплантации.", phone="+79161234567"),
        "whitening": transcribed(clinic, "Записала вас на отбеливание в субботу.", administrator=vera),
        "price": transcribed(clinic, "Сколько стоит профессиональная гигиена?", phone="+79250000000",
                             started_at=datetime(2026, 11, 20, 9, tzinfo=UTC)),
    }


def ids(response):
    return {row["id"] for row in response.json()["results"]}


def test_api_q_searches_transcripts_phone_and_administrator(key_client, calls):
    assert ids(key_client.get("/api/calls/?q=имплантации")) == {calls["implant"].pk}
    # Another word form: "записаться" finds "Записала" too (stems on SQLite, the Russian dictionary on PostgreSQL).
    assert ids(key_client.get("/api/calls/?q=записаться")) == {calls["implant"].pk, calls["whitening"].pk}
    assert ids(key_client.get('/api/calls/?q="профессиональная гигиена"')) == {calls["price"].pk}
    assert ids(key_client.get("/api/calls/?q=8 (916) 123-45-67")) == {calls["implant"].pk}
    assert ids(key_client.get("/api/calls/?q=смирнова")) == {calls["whitening"].pk}
    assert ids(key_client.get("/api/calls/?q=брекеты")) == set()
    # Combined with the other filters (date, administrator).
    assert ids(key_client.get("/api/calls/?q=гигиена&date_from=2026-11-20")) == {calls["price"].pk}
    assert ids(key_client.get("/api/calls/?q=гигиена&date_to=2026-11-19")) == set()


def test_search_never_crosses_clinics(key_client, calls):
    from tests.factories import ClinicFactory

    transcribed(ClinicFactory(), "Хочу записаться на консультацию по имплантации.")
    assert ids(key_client.get("/api/calls/?q=имплантации")) == {calls["implant"].pk}


def test_admin_search_box_uses_the_same_search(client, clinic, calls):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    page = client.get("/admin/calls/call/", {"q": "записаться"}).content.decode()
    assert f"/admin/calls/call/{calls['implant'].pk}/change/" in page
    assert f"/admin/calls/call/{calls['price'].pk}/change/" not in page
    page = client.get("/admin/calls/call/", {"q": "+7 925 000-00-00"}).content.decode()
    assert f"/admin/calls/call/{calls['price'].pk}/change/" in page


def test_blank_query_returns_everything(calls):
    from calls.models import Call

    assert call_search(Call.objects.all(), "   ").count() == 3


@pytest.mark.postgres
def test_russian_full_text_search_on_postgresql(calls, clinic):
    from calls.models import Call

    qs = Call.objects.filter(clinic=clinic)
    # Russian morphology: other forms of the same words, and "-word" exclusion (websearch syntax).
    assert set(call_search(qs, "имплантация").values_list("pk", flat=True)) == {calls["implant"].pk}
    assert set(call_search(qs, "записала").values_list("pk", flat=True)) == {calls["implant"].pk, calls["whitening"].pk}
    assert set(call_search(qs, "записаться -отбеливание").values_list("pk", flat=True)) == {calls["implant"].pk}
    assert set(call_search(qs, "гигиены").values_list("pk", flat=True)) == {calls["price"].pk}
    # The GIN index from analysis migration 0003 serves the query.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'calls_transcript_text_fts_ru'")
        assert "to_tsvector('russian'::regconfig" in cursor.fetchone()[0]
        cursor.execute("SET enable_seqscan = off")
        sql, params = call_search(qs, "имплантация").query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "calls_transcript_text_fts_ru" in plan

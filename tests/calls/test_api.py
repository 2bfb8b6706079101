import io
import wave
from datetime import UTC, datetime

import pytest

from calls.models import Call, Stage
from clinics.services import api_key_create
from tests.factories import AdministratorFactory, CallFactory, ClinicFactory, UserFactory

TRANSCRIPT = [
    {"speaker": "A", "start": 0.0, "end": 3.0, "text": "Стоматология «Улыбка», администратор Анна, здравствуйте!"},
    {"speaker": "B", "start": 3.5, "end": 6.0, "text": "Здравствуйте, хочу записаться на чистку зубов."},
    {"speaker": "A", "start": 6.5, "end": 9.0, "text": "Конечно, как к вам обращаться?"},
]


def wav_bytes(seconds=8.0, rate=8000):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate))
    return buffer.getvalue()


def upload(client, **data):
    payload = {"started_at": "2026-11-16T10:00:00+03:00", "transcript": TRANSCRIPT, **data}
    return client.post("/api/calls/", payload, format="json")


# --- authentication and tenancy -------------------------------------------------------------------
@pytest.mark.django_db
def test_no_key_gets_401_in_the_error_shape(api_client):
    response = api_client.get("/api/calls/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "X-API-Key"


@pytest.mark.django_db
def test_wrong_or_revoked_key_gets_401(api_client, clinic):
    key, raw = api_key_create(clinic=clinic, name="k")
    api_client.credentials(HTTP_X_API_KEY=raw + "x")
    assert api_client.get("/api/calls/").status_code == 401
    key.revoke()
    api_client.credentials(HTTP_X_API_KEY=raw)
    response = api_client.get("/api/calls/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_key_of_clinic_a_never_sees_clinic_b(key_client, clinic):
    mine = CallFactory(clinic=clinic)
    theirs = CallFactory(clinic=ClinicFactory())
    listing = key_client.get("/api/calls/").json()
    assert [row["id"] for row in listing["results"]] == [mine.pk]
    assert key_client.get(f"/api/calls/{theirs.pk}/").status_code == 404
    assert key_client.post(f"/api/calls/{theirs.pk}/reprocess/", {"stage": "analyse"}).status_code == 404
    assert key_client.get(f"/api/calls/{mine.pk}/").status_code == 200


@pytest.mark.django_db
def test_key_cannot_write_into_another_clinic(key_client, clinic):
    other = ClinicFactory()
    response = upload(key_client, clinic=other.pk)
    assert response.status_code == 404
    assert not Call.objects.filter(clinic=other).exists()


@pytest.mark.django_db
def test_jwt_staff_sees_only_member_clinics(api_client):
    user = UserFactory()
    member, stranger = ClinicFactory(), ClinicFactory()
    member.members.add(user)
    CallFactory(clinic=member)
    CallFactory(clinic=stranger)
    token = api_client.post("/api/auth/token/", {"username": user.username, "password": "pass-1234-word"}).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    rows = api_client.get("/api/calls/").json()["results"]
    assert {row["clinic"] for row in rows} == {member.pk}


@pytest.mark.django_db
def test_user_without_clinics_is_forbidden(api_client):
    user = UserFactory()
    api_client.force_authenticate(user)
    response = api_client.get("/api/calls/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


# --- listing -----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_date_filter_uses_the_clinics_day(key_client, clinic):
    # 2026-11-15 22:30 UTC is already Monday 16th 01:30 in Moscow.
    late = CallFactory(clinic=clinic, started_at=datetime(2026, 11, 15, 22, 30, tzinfo=UTC))
    CallFactory(clinic=clinic, started_at=datetime(2026, 11, 15, 12, 0, tzinfo=UTC))
    rows = key_client.get("/api/calls/?date_from=2026-11-16&date_to=2026-11-16").json()["results"]
    assert [row["id"] for row in rows] == [late.pk]


@pytest.mark.django_db
def test_filters_and_bad_filter_values(key_client, clinic):
    admin = AdministratorFactory(clinic=clinic)
    hit = CallFactory(clinic=clinic, direction="outbound", administrator=admin, booked=True, stage=Stage.DONE)
    CallFactory(clinic=clinic, direction="inbound")
    query = f"/api/calls/?direction=outbound&administrator={admin.pk}&booked=true&stage=done"
    assert [row["id"] for row in key_client.get(query).json()["results"]] == [hit.pk]
    response = key_client.get("/api/calls/?date_from=yesterday")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "date_from" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_list_is_paginated_with_constant_queries(key_client, clinic, django_assert_max_num_queries):
    for _ in range(30):
        CallFactory(clinic=clinic, administrator=AdministratorFactory(clinic=clinic))
    with django_assert_max_num_queries(6):
        body = key_client.get("/api/calls/?page_size=25").json()
    assert body["count"] == 30 and len(body["results"]) == 25


# --- upload ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_upload_transcript_is_idempotent(key_client, clinic):
    first = upload(key_client, external_id="crm-1", phone="8 (916) 123-45-67")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["phone"] == "+79161234567"
    assert body["transcript"]["utterances"][0]["role"] == "administrator"
    again = upload(key_client, external_id="crm-1")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert Call.objects.filter(clinic=clinic).count() == 1


@pytest.mark.django_db
def test_upload_without_external_id_is_idempotent_by_content(key_client, clinic):
    assert upload(key_client).status_code == 201
    assert upload(key_client).status_code == 200
    assert Call.objects.count() == 1


@pytest.mark.django_db
def test_upload_elevenlabs_words(key_client):
    words = {
        "language_code": "rus",
        "text": "Здравствуйте клиника Улыбка. Добрый день.",
        "words": [
            {"text": "Здравствуйте,", "start": 0.0, "end": 0.6, "type": "word", "speaker_id": "speaker_0"},
            {"text": " ", "start": 0.6, "end": 0.7, "type": "spacing", "speaker_id": "speaker_0"},
            {"text": "клиника", "start": 0.7, "end": 1.1, "type": "word", "speaker_id": "speaker_0"},
            {"text": "Улыбка.", "start": 1.2, "end": 1.6, "type": "word", "speaker_id": "speaker_0"},
            {"text": "Добрый", "start": 2.5, "end": 2.9, "type": "word", "speaker_id": "speaker_1"},
            {"text": "день.", "start": 3.0, "end": 3.3, "type": "word", "speaker_id": "speaker_1"},
        ],
    }
    response = upload(key_client, transcript=words)
    assert response.status_code == 201, response.json()
    utterances = response.json()["transcript"]["utterances"]
    assert [u["speaker"] for u in utterances] == ["speaker_0", "speaker_1"]


@pytest.mark.parametrize(
    "transcript, message",
    [
        ([], "non-empty"),
        ([{"speaker": "A", "start": 0, "end": 1}], "'speaker' and 'text' are required"),
        ([{"speaker": "A", "start": "x", "end": 1, "text": "hi"}], "must be numbers"),
        ([{"speaker": "A", "start": 5, "end": 1, "text": "hi"}], "start <= end"),
        ([{"speaker": "A", "start": 0, "end": 1, "text": "hi", "role": "boss"}], "role must be one of"),
    ],
)
@pytest.mark.django_db
def test_invalid_transcript_is_rejected_clearly(key_client, transcript, message):
    response = upload(key_client, transcript=transcript)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert Call.objects.count() == 0


@pytest.mark.django_db
def test_upload_audio_file_is_validated_and_stored(key_client):
    audio = io.BytesIO(wav_bytes(8.0))
    audio.name = "call.wav"
    response = key_client.post(
        "/api/calls/", {"started_at": "2026-11-16T10:00:00+03:00", "audio": audio, "phone": "+7 916 000-11-22"}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["duration_seconds"] == 8
    assert body["recording"]["mime"].startswith("audio/")
    # The signed link serves the file without authentication.
    from django.test import Client

    link = body["recording"]["url"].replace("http://127.0.0.1:8000", "")
    served = Client().get(link)
    assert served.status_code == 200
    assert b"".join(served.streaming_content)[:4] == b"RIFF"


@pytest.mark.django_db
def test_non_audio_upload_is_rejected_before_anything_is_stored(key_client):
    fake = io.BytesIO(b"this is not audio at all, just text" * 10)
    fake.name = "call.mp3"
    response = key_client.post("/api/calls/", {"started_at": "2026-11-16T10:00:00+03:00", "audio": fake}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert Call.objects.count() == 0


@pytest.mark.django_db
def test_upload_needs_something_to_process(key_client):
    response = key_client.post("/api/calls/", {"started_at": "2026-11-16T10:00:00+03:00"}, format="json")
    assert response.status_code == 400
    assert "audio" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_upload_rejects_bad_phone_and_naive_time(key_client):
    assert upload(key_client, phone="12").status_code == 400
    response = upload(key_client, started_at="2026-11-16T10:00:00")
    assert response.status_code in (201, 400)  # DRF makes naive times aware in the current zone


@pytest.mark.django_db
def test_tampered_signed_link_is_404(client):
    assert client.get("/files/recording/not-a-token/").status_code == 404


# --- reprocess ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_reprocess_endpoint(key_client, clinic):
    call = CallFactory(clinic=clinic, stage=Stage.FAILED, failed_stage=Stage.TRANSCRIBED, last_error="x")
    response = key_client.post(f"/api/calls/{call.pk}/reprocess/", {"stage": "analyse"}, format="json")
    assert response.status_code == 202
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED
    bad = key_client.post(f"/api/calls/{call.pk}/reprocess/", {"stage": "bogus"}, format="json")
    assert bad.status_code == 400


@pytest.mark.django_db
def test_reprocess_range_endpoint(key_client, clinic):
    inside = CallFactory(clinic=clinic, stage=Stage.DONE, started_at=datetime(2026, 11, 16, 9, tzinfo=UTC))
    outside = CallFactory(clinic=clinic, stage=Stage.DONE, started_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
    response = key_client.post(
        "/api/calls/reprocess/", {"date_from": "2026-11-16", "date_to": "2026-11-17", "stage": "analyse"}, format="json"
    )
    assert response.status_code == 202 and response.json() == {"restarted": 1}
    inside.refresh_from_db()
    outside.refresh_from_db()
    assert (inside.stage, outside.stage) == (Stage.TRANSCRIBED, Stage.DONE)


# --- docs and health ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_health_checks_database_and_queue(api_client):
    body = api_client.get("/api/health/").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["queue"]["ok"]


@pytest.mark.django_db
def test_health_reports_a_broken_queue(api_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = api_client.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["queue"]["ok"] is False


@pytest.mark.django_db
def test_openapi_schema_and_swagger(api_client):
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/calls/{id}/reprocess/" in schema.content
    assert api_client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_unknown_api_url_is_json_404(client):
    response = client.get("/api/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

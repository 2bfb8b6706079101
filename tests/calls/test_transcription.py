"""The audio → transcription → analysis path against real fake servers on 127.0.0.1."""

import io
import wave
from datetime import UTC, datetime

import pytest

from calls import pipeline
from calls.models import Call, CallEvent, Stage
from calls.services import call_ingest, calls_resume_quota_skipped
from clinics.models import QuotaLedger
from clinics.quotas import current_periods, quota_top_up
from tests.factories import ClinicFactory
from tests.fakes.base import FakeServer, Response
from tests.fakes.elevenlabs import STT_PATH, FakeElevenLabs


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x10\x00" * int(seconds * rate))
    return buffer.getvalue()


class Telephony(FakeServer):
    """Serves recordings like a PBX or amoCRM's telephony host does."""

    def setup_routes(self):
        self.files = {"/rec/good.wav": wav_bytes(30), "/rec/corrupt.mp3": b"ID3" + b"\x00garbage" * 50}
        self.route("GET", "/rec/{name}", lambda r: Response(200, self.files[r.path], {"Content-Type": "audio/wav"}))


@pytest.fixture
def telephony():
    with Telephony() as server:
        yield server


@pytest.fixture
def scribe(settings):
    with FakeElevenLabs() as server:
        settings.ELEVENLABS_API_KEY = server.api_key
        settings.ELEVENLABS_BASE_URL = server.url
        settings.HTTP_BACKOFF_BASE = 0.01
        settings.HTTP_RETRIES = 1
        server.script = [
            ("speaker_0", "Стоматология Улыбка, администратор Анна, здравствуйте!"),
            ("speaker_1", "Здравствуйте, хочу записаться на чистку зубов, сколько это стоит?"),
            ("speaker_0", "Профессиональная гигиена стоит 6000 рублей. Как к вам обращаться?"),
            ("speaker_1", "Ольга. Давайте на пятницу."),
            ("speaker_0", "Записала вас на пятницу в 10:00, ждём вас по адресу улица Лесная 12."),
        ]
        yield server


def ingest(clinic, url, **kwargs):
    return call_ingest(
        clinic=clinic,
        started_at=datetime(2026, 11, 16, 9, tzinfo=UTC),
        recording_url=url,
        enqueue=False,
        **kwargs,
    ).call


@pytest.mark.django_db
def test_recording_is_fetched_transcribed_with_roles_and_billed(telephony, scribe):
    clinic = ClinicFactory(name="Стоматология Улыбка", transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    assert pipeline.drive(call.pk) == "succeeded"
    call.refresh_from_db()
    assert call.stage == Stage.DONE, call.last_error
    transcript = call.transcript
    assert transcript.provider == "elevenlabs"
    assert transcript.roles == {"speaker_0": "administrator", "speaker_1": "patient"}
    assert transcript.utterances[0]["role"] == "administrator"
    assert transcript.billed_seconds > 0 and transcript.cost > 0
    assert call.recording.duration_seconds == pytest.approx(30, abs=0.1)
    # The provider got the file with diarization on.
    fields, files = scribe.requests_to("POST", STT_PATH)[0].form()
    assert fields["diarize"] == "true" and files["file"][1][:4] == b"RIFF"
    # Quota: reserved the 30 s estimate, settled to what was billed.
    week = current_periods(clinic)["week"]
    assert week.reserved_seconds == 0
    assert week.used_seconds == pytest.approx(transcript.billed_seconds, abs=1)
    event = CallEvent.objects.get(call=call, stage="transcribe")
    assert event.provider_request_id == scribe.last_request_id
    assert call.analysis.call_type == "first_contact"


@pytest.mark.django_db
def test_corrupt_audio_fails_before_any_money_is_spent(telephony, scribe):
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/corrupt.mp3")
    assert pipeline.drive(call.pk) == "failed"
    call.refresh_from_db()
    assert call.failed_stage == Stage.INGESTED
    assert "Recording rejected" in call.last_error
    assert scribe.requests == []
    assert not QuotaLedger.objects.exists()


@pytest.mark.django_db
def test_missing_recording_url_404_fails_with_reason(telephony, scribe):
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/nope/x.wav")
    assert pipeline.drive(call.pk) == "failed"
    call.refresh_from_db()
    assert "404" in call.last_error


@pytest.mark.parametrize(
    "status, duration, expected",
    [("missed", 0, "missed"), ("busy", 0, "busy"), ("answered", 4, "too_short")],
)
@pytest.mark.django_db
def test_unbillable_calls_are_skipped_without_any_request(telephony, scribe, status, duration, expected):
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav", status=status, duration_seconds=duration)
    pipeline.drive(call.pk)
    call.refresh_from_db()
    assert (call.stage, call.skip_reason) == (Stage.SKIPPED, expected)
    assert telephony.requests == [] and scribe.requests == []


@pytest.mark.django_db
def test_short_audio_discovered_after_download_is_skipped_before_transcription(telephony, scribe):
    telephony.files["/rec/short.wav"] = wav_bytes(3)
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/short.wav")
    pipeline.drive(call.pk)
    call.refresh_from_db()
    assert (call.stage, call.skip_reason) == (Stage.SKIPPED, "too_short")
    assert scribe.requests == []


@pytest.mark.django_db
def test_no_provider_configured_skips_with_reason(telephony, settings):
    settings.ELEVENLABS_API_KEY = ""
    settings.OPENAI_API_KEY = ""
    clinic = ClinicFactory()
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    pipeline.drive(call.pk)
    call.refresh_from_db()
    assert (call.stage, call.skip_reason) == (Stage.SKIPPED, "no_transcriber")


@pytest.mark.django_db
def test_malformed_provider_json_fails_the_call_and_releases_the_quota(telephony, scribe):
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    scribe.fail_next("POST", STT_PATH, kind="malformed")
    assert pipeline.drive(call.pk) == "failed"
    call.refresh_from_db()
    assert call.failed_stage == Stage.AUDIO_FETCHED
    assert "elevenlabs" in call.last_error.lower()
    week = current_periods(clinic)["week"]
    assert (week.reserved_seconds, week.used_seconds) == (0, 0)
    assert set(QuotaLedger.objects.values_list("entry", flat=True)) == {"reserve", "release"}


@pytest.mark.django_db
def test_invalid_key_is_permanent_and_not_retried(telephony, scribe, settings):
    settings.ELEVENLABS_API_KEY = "wrong"
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    assert pipeline.drive(call.pk) == "failed"
    call.refresh_from_db()
    assert "401" in call.last_error
    assert len(scribe.requests) == 1


@pytest.mark.django_db
def test_long_retry_after_becomes_a_pipeline_retry_no_earlier_than_asked(telephony, scribe, settings):
    settings.HTTP_MAX_RETRY_AFTER = 1
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    scribe.fail_next("POST", STT_PATH, status=429, headers={"Retry-After": "300"}, body={"detail": {"status": "too_many_concurrent_requests", "message": "busy"}})
    assert pipeline.drive(call.pk) == "retry"
    call.refresh_from_db()
    assert call.stage == Stage.AUDIO_FETCHED
    assert (call.retry_at - datetime.now(UTC)).total_seconds() > 290
    assert len(scribe.requests) == 1  # not hammered in-process
    week = current_periods(clinic)["week"]
    assert week.reserved_seconds == 0  # released while waiting


@pytest.mark.django_db
def test_short_retry_after_is_honoured_in_process(telephony, scribe, settings, monkeypatch):
    slept = []
    monkeypatch.setattr("medai.http.time.sleep", lambda s: slept.append(s))
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    scribe.fail_next("POST", STT_PATH, status=429, headers={"Retry-After": "2"})
    assert pipeline.drive(call.pk) == "succeeded"
    assert 2.0 in slept
    assert len(scribe.requests) == 2


@pytest.mark.django_db
def test_quota_exhausted_waits_and_resumes_after_top_up(telephony, scribe):
    clinic = ClinicFactory(transcription_provider="elevenlabs", weekly_limit_minutes=0)
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    pipeline.drive(call.pk)
    call.refresh_from_db()
    assert (call.stage, call.skip_reason) == (Stage.SKIPPED, "quota")
    assert scribe.requests == []
    assert calls_resume_quota_skipped() == 0  # still no room
    quota_top_up(clinic=clinic, kind="week", minutes=5)
    with pipeline.inline_mode():
        assert calls_resume_quota_skipped() == 1
    pipeline.drive(call.pk)
    call.refresh_from_db()
    assert call.stage == Stage.DONE
    assert Call.objects.get(pk=call.pk).transcript.provider == "elevenlabs"


@pytest.mark.django_db
def test_recording_urls_to_private_addresses_are_refused_in_production(telephony, scribe, settings):
    settings.RECORDING_URL_ALLOW_PRIVATE = False
    clinic = ClinicFactory(transcription_provider="elevenlabs")
    call = ingest(clinic, f"{telephony.url}/rec/good.wav")
    assert pipeline.drive(call.pk) == "failed"
    call.refresh_from_db()
    assert "non-public address" in call.last_error
    assert telephony.requests == []

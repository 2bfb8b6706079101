"""ElevenLabs Scribe client against the fake server: wire format, retries, error classes."""

from __future__ import annotations

import pytest

from medai.http import (
    HttpPolicy,
    PermanentHttpError,
    ProviderResponseError,
    TemporaryHttpError,
    build_client,
)
from medai.integrations.elevenlabs import ElevenLabsTranscriber, result_from_elevenlabs
from medai.integrations.transcription_types import Transcriber, Word, words_from_elevenlabs
from tests.fakes.elevenlabs import STT_PATH, FakeElevenLabs

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt fake audio bytes"


@pytest.fixture
def fake():
    with FakeElevenLabs() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(fake, sleeps):
    """A transcriber whose chokepoint records its sleeps instead of sleeping."""
    clients = []

    def build(*, api_key: str = FakeElevenLabs.api_key, retries: int = 2, timeout: float = 5.0, **kwargs):
        policy = HttpPolicy(timeout=timeout, connect_timeout=timeout, retries=retries, backoff_base=0.01)
        http = build_client(policy=policy)
        http._transport.sleep = sleeps.append
        clients.append(http)
        return ElevenLabsTranscriber(api_key=api_key, base_url=fake.url, http_client=http, **kwargs)

    yield build
    for http in clients:
        http.close()


def transcribe(transcriber, audio: bytes = AUDIO, **kwargs):
    return transcriber.transcribe(audio, filename="call.wav", content_type="audio/wav", **kwargs)


def test_happy_path_sends_documented_fields_and_maps_the_response(fake, make):
    fake.script = [
        ("speaker_0", "Клиника Улыбка, здравствуйте!"),
        ("speaker_1", "(смех) Добрый день."),
    ]
    transcriber = make()
    assert isinstance(transcriber, Transcriber)

    result = transcribe(transcriber, language="ru", num_speakers=2)

    [request] = fake.requests_to("POST", STT_PATH)
    assert request.headers["xi-api-key"] == FakeElevenLabs.api_key
    fields, files = request.form()
    assert fields["model_id"] == "scribe_v1"
    assert fields["diarize"] == "true"
    assert fields["timestamps_granularity"] == "word"
    assert fields["tag_audio_events"] == "true"
    assert fields["num_speakers"] == "2"
    assert fields["language_code"] == "ru"
    assert files["file"] == ("call.wav", AUDIO)

    assert [(w.text, w.speaker, w.kind) for w in result.words] == [
        ("Клиника", "speaker_0", "word"),
        ("Улыбка,", "speaker_0", "word"),
        ("здравствуйте!", "speaker_0", "word"),
        ("(смех)", "speaker_1", "audio_event"),
        ("Добрый", "speaker_1", "word"),
        ("день.", "speaker_1", "word"),
    ]
    assert all(w.end > w.start for w in result.words)
    assert result.words[3].start - result.words[2].end == pytest.approx(fake.turn_pause)
    assert result.text == "Клиника Улыбка, здравствуйте! (смех) Добрый день."
    assert result.language == "ru"
    assert result.language_probability == pytest.approx(0.98)
    assert result.duration_seconds == pytest.approx(result.raw["audio_duration_secs"])
    assert result.provider == "elevenlabs"
    assert result.model == "scribe_v1"
    assert result.granularity == "word"
    assert result.request_id == fake.last_request_id
    assert result.speakers == ["speaker_0", "speaker_1"]


def test_optional_hints_are_not_sent_and_model_is_configurable(fake, make):
    transcribe(make(model="scribe_v2", tag_audio_events=False))
    fields, _ = fake.requests[-1].form()
    assert fields["model_id"] == "scribe_v2"
    assert fields["tag_audio_events"] == "false"
    assert "language_code" not in fields
    assert "num_speakers" not in fields


def test_429_is_retried_after_the_retry_after_delay(fake, make, sleeps):
    fake.fail_next("POST", STT_PATH, status=429, headers={"Retry-After": "2"})
    result = transcribe(make())
    assert len(fake.requests_to("POST", STT_PATH)) == 2
    assert sleeps == [2.0]
    assert result.words


def test_persistent_500_is_temporary_after_bounded_retries_and_sdk_does_not_retry(fake, make):
    fake.fail_next("POST", STT_PATH, status=500, times=10)
    with pytest.raises(TemporaryHttpError) as caught:
        transcribe(make(retries=2))
    # 1 + 2 chokepoint retries; the SDK's own retries (2 by default) would make it 9.
    assert len(fake.requests_to("POST", STT_PATH)) == 3
    assert caught.value.status == 500


def test_retry_after_too_long_to_wait_is_handed_to_the_pipeline(fake, make, sleeps):
    fake.fail_next("POST", STT_PATH, status=429, headers={"Retry-After": "120"})
    with pytest.raises(TemporaryHttpError) as caught:
        transcribe(make())
    assert caught.value.retry_after == 120
    assert len(fake.requests) == 1
    assert sleeps == []


def test_wrong_key_is_permanent_not_retried_and_not_leaked(fake, make):
    with pytest.raises(PermanentHttpError) as caught:
        transcribe(make(api_key="wrong-secret-key-123"))
    error = caught.value
    assert not isinstance(error, TemporaryHttpError)
    assert error.status == 401
    assert "invalid_api_key" in str(error)
    assert "wrong-secret-key-123" not in str(error)
    assert error.request_id == fake.last_request_id
    assert len(fake.requests) == 1


def test_validation_error_422_is_permanent_with_the_field_named(fake, make):
    with pytest.raises(PermanentHttpError) as caught:
        transcribe(make(), audio=b"")
    assert caught.value.status == 422
    assert "file" in str(caught.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [402, 403, 400])
def test_other_client_errors_are_permanent(fake, make, status):
    fake.fail_next(
        "POST", STT_PATH, status=status, body={"detail": {"status": "quota_exceeded", "message": "No credits"}}
    )
    with pytest.raises(PermanentHttpError) as caught:
        transcribe(make())
    assert caught.value.status == status
    assert "quota_exceeded: No credits" in str(caught.value)
    assert len(fake.requests) == 1


def test_malformed_json_is_a_provider_response_error(fake, make):
    fake.fail_next("POST", STT_PATH, kind="malformed")
    with pytest.raises(ProviderResponseError):
        transcribe(make())
    assert len(fake.requests) == 1


def test_json_of_the_wrong_shape_is_a_provider_response_error(fake, make):
    fake.fail_next("POST", STT_PATH, status=200, body={"text": "x", "words": [{"text": "x", "type": "word"}]})
    with pytest.raises(ProviderResponseError, match="timestamps"):
        transcribe(make())


def test_timeout_is_temporary(fake, make, sleeps):
    fake.timeout_sleep = 1.0
    fake.fail_next("POST", STT_PATH, kind="timeout", times=2)
    with pytest.raises(TemporaryHttpError, match="Timeout"):
        transcribe(make(retries=1, timeout=0.2))
    assert len(fake.requests) == 2
    assert len(sleeps) == 1  # one backoff between the two attempts


def test_dropped_connection_is_temporary(fake, make):
    fake.fail_next("POST", STT_PATH, kind="disconnect", times=3)
    with pytest.raises(TemporaryHttpError):
        transcribe(make(retries=2))


def test_empty_key_is_refused_up_front():
    with pytest.raises(ValueError, match="empty"):
        ElevenLabsTranscriber(api_key="")


# -- the ElevenLabs JSON parser used by the offline import path ------------------------------------


def test_imported_fake_response_round_trips(fake):
    fake.script = [("speaker_0", "Алло?"), ("speaker_1", "Здравствуйте (кашель) это клиника")]
    payload = fake.transcript({"diarize": "true"})
    result = result_from_elevenlabs(payload, request_id="import")
    assert [w.text for w in result.words] == ["Алло?", "Здравствуйте", "(кашель)", "это", "клиника"]
    assert result.words[2] == Word("(кашель)", result.words[2].start, result.words[2].end, "speaker_1", "audio_event")
    assert result.language == "rus"


def test_words_parser_drops_spacing_and_sorts():
    words = words_from_elevenlabs(
        {
            "words": [
                {"text": "мир", "start": 0.5, "end": 0.9, "type": "word", "speaker_id": "speaker_1"},
                {"text": " ", "start": 0.4, "end": 0.5, "type": "spacing"},
                {"text": "привет", "start": 0.0, "end": 0.4, "type": "word", "speaker_id": None},
            ]
        }
    )
    assert words == [Word("привет", 0.0, 0.4, None), Word("мир", 0.5, 0.9, "speaker_1")]


def test_words_parser_merges_channels_as_speakers():
    words = words_from_elevenlabs(
        {
            "transcripts": [
                {"channel_index": 0, "words": [{"text": "да", "start": 1.0, "end": 1.2, "type": "word"}]},
                {"channel_index": 1, "words": [{"text": "алло", "start": 0.1, "end": 0.5, "type": "word"}]},
            ]
        }
    )
    assert [(w.text, w.speaker) for w in words] == [("алло", "channel_1"), ("да", "channel_0")]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be a JSON object"),
        ({"text": "x"}, "words must be a list"),
        ({"words": ["x"]}, r"words\[0\] must be an object"),
        ({"words": [{"text": "a", "start": 0, "end": 1, "type": "noise"}]}, r"words\[0\]\.type"),
        ({"words": [{"text": 5, "start": 0, "end": 1, "type": "word"}]}, r"words\[0\]\.text"),
        ({"words": [{"text": "a", "start": "0", "end": 1, "type": "word"}]}, r"words\[0\]\.start must be a number"),
        ({"words": [{"text": "a", "start": 2, "end": 1, "type": "word"}]}, "ends .* before it starts"),
        ({"words": [{"text": "a", "start": -1, "end": 1, "type": "word"}]}, "must not be negative"),
        ({"words": [{"text": "a", "type": "word"}]}, "has no timestamps"),
        ({"words": [{"text": "a", "start": 0, "end": 1, "type": "word", "speaker_id": 3}]}, "speaker_id"),
        ({"transcripts": []}, "non-empty list"),
    ],
)
def test_words_parser_rejects_bad_input_with_a_clear_message(payload, message):
    with pytest.raises(ValueError, match=message):
        words_from_elevenlabs(payload)


def test_from_settings_builds_its_own_chokepoint_client(fake, settings):
    settings.ELEVENLABS_API_KEY = FakeElevenLabs.api_key
    settings.ELEVENLABS_BASE_URL = fake.url
    settings.ELEVENLABS_MODEL = "scribe_v1_experimental"
    settings.HTTP_RETRIES = 0
    with ElevenLabsTranscriber.from_settings() as transcriber:
        assert transcribe(transcriber).words
        fake.fail_next("POST", STT_PATH, status=503)
        with pytest.raises(TemporaryHttpError):
            transcribe(transcriber)
    assert fake.requests[0].form()[0]["model_id"] == "scribe_v1_experimental"
    assert len(fake.requests) == 2  # HTTP_RETRIES=0 reached the chokepoint

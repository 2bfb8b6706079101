"""OpenAI-compatible transcription against the fake server: both modes, retries, error classes."""

from __future__ import annotations

import pytest

from medai.http import HttpPolicy, PermanentHttpError, ProviderResponseError, TemporaryHttpError, build_client
from medai.integrations.openai_compat.transcription import OpenAITranscriber, result_from_verbose_json
from medai.integrations.transcription_types import Transcriber
from tests.fakes.openai_audio import TRANSCRIPTIONS_PATH, FakeOpenAIAudio, multipart_fields

AUDIO = b"ID3\x03\x00fake mp3 bytes"
WHISPER = "Systran/faster-whisper-small"


@pytest.fixture
def fake():
    with FakeOpenAIAudio() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(fake, sleeps):
    clients = []

    def build(*, api_key: str = FakeOpenAIAudio.api_key, retries: int = 2, timeout: float = 5.0, **kwargs):
        policy = HttpPolicy(timeout=timeout, connect_timeout=timeout, retries=retries, backoff_base=0.01)
        http = build_client(policy=policy, flavour="httpx2")
        http._transport.sleep = sleeps.append
        clients.append(http)
        return OpenAITranscriber(api_key=api_key, base_url=f"{fake.url}/v1", http_client=http, **kwargs)

    yield build
    for http in clients:
        http.close()


def transcribe(transcriber, audio: bytes = AUDIO, **kwargs):
    return transcriber.transcribe(audio, filename="call.mp3", content_type="audio/mpeg", **kwargs)


def test_diarized_mode_sends_documented_fields_and_maps_segments(fake, make):
    transcriber = make()
    assert isinstance(transcriber, Transcriber)
    assert transcriber.diarize

    result = transcribe(transcriber, language="ru", num_speakers=2)

    [request] = fake.requests_to("POST", TRANSCRIPTIONS_PATH)
    assert request.headers["authorization"] == f"Bearer {FakeOpenAIAudio.api_key}"
    fields = multipart_fields(request)
    assert fields["model"] == ["gpt-4o-transcribe-diarize"]
    assert fields["response_format"] == ["diarized_json"]
    assert fields["chunking_strategy"] == ["auto"]
    assert fields["language"] == ["ru"]
    assert "num_speakers" not in fields  # the API has no such hint
    assert request.form()[1]["file"] == ("call.mp3", AUDIO)

    assert result.granularity == "segment"
    assert [(w.speaker, w.text) for w in result.words] == [
        ("A", "Клиника Улыбка, здравствуйте!"),
        ("B", "Здравствуйте, сколько стоит чистка?"),
    ]
    assert result.words[1].start > result.words[0].end
    assert result.duration_seconds == pytest.approx(result.raw["duration"])
    assert result.request_id == fake.last_request_id
    assert result.provider == "openai"
    assert result.language is None  # diarized_json does not report it


def test_diarized_long_audio_is_accepted_because_chunking_is_sent(fake, make):
    fake.script = [(f"speaker_{i % 2}", "Очень длинная реплика из многих слов подряд") for i in range(12)]
    result = transcribe(make())
    assert result.duration_seconds > 30
    assert len(result.words) == 12


def test_whisper_mode_asks_for_word_timestamps_and_has_no_speakers(fake, make):
    transcriber = make(model=WHISPER, provider="whisper")
    assert not transcriber.diarize

    result = transcribe(transcriber)

    fields = multipart_fields(fake.requests[-1])
    assert fields["response_format"] == ["verbose_json"]
    assert fields["timestamp_granularities[]"] == ["word", "segment"]
    assert "chunking_strategy" not in fields
    assert result.granularity == "word"
    assert [w.text for w in result.words][:3] == ["Клиника", "Улыбка,", "здравствуйте!"]
    assert {w.speaker for w in result.words} == {None}
    assert result.speakers == []
    assert result.language == "russian"
    assert result.provider == "whisper"


def test_whisper_server_with_words_inside_segments(fake, make):
    fake.nest_words_in_segments = True
    result = transcribe(make(model=WHISPER))
    assert result.granularity == "word"
    assert [w.text for w in result.words] == [
        "Клиника",
        "Улыбка,",
        "здравствуйте!",
        "Здравствуйте,",
        "сколько",
        "стоит",
        "чистка?",
    ]


def test_whisper_server_with_segments_only_falls_back_to_segments(fake, make):
    fake.fail_next(
        "POST",
        TRANSCRIPTIONS_PATH,
        status=200,
        body={
            "text": "Алло. Да.",
            "language": "ru",
            "duration": 3.0,
            "segments": [
                {"id": 0, "start": 0.0, "end": 1.0, "text": " Алло."},
                {"id": 1, "start": 2, "end": 3, "text": " Да."},
            ],
        },
    )
    result = transcribe(make(model=WHISPER))
    assert result.granularity == "segment"
    assert [(w.text, w.start, w.end) for w in result.words] == [("Алло.", 0.0, 1.0), ("Да.", 2.0, 3.0)]


def test_diarize_can_be_forced_for_a_custom_model_name(fake, make):
    fake.fail_next("POST", TRANSCRIPTIONS_PATH, status=200, body={"text": "", "duration": 0, "segments": []})
    transcribe(make(model="my-diarizer", diarize=True))
    assert multipart_fields(fake.requests[-1])["response_format"] == ["diarized_json"]


def test_429_is_retried_after_the_retry_after_delay(fake, make, sleeps):
    fake.fail_next("POST", TRANSCRIPTIONS_PATH, status=429, headers={"Retry-After": "1"})
    assert transcribe(make()).words
    assert len(fake.requests) == 2
    assert sleeps == [1.0]


def test_persistent_500_is_temporary_and_the_sdk_does_not_retry(fake, make):
    fake.fail_next("POST", TRANSCRIPTIONS_PATH, status=500, times=10)
    with pytest.raises(TemporaryHttpError) as caught:
        transcribe(make(retries=2))
    assert caught.value.status == 500
    assert len(fake.requests) == 3


def test_wrong_key_is_permanent_and_not_retried(fake, make):
    with pytest.raises(PermanentHttpError) as caught:
        transcribe(make(api_key="sk-wrong-key-abcdefghijklmnop"))
    error = caught.value
    assert not isinstance(error, TemporaryHttpError)
    assert error.status == 401
    assert "invalid_api_key" in str(error)
    assert "sk-wrong-key" not in str(error)
    assert error.request_id == fake.last_request_id
    assert len(fake.requests) == 1


def test_bad_request_is_permanent(fake, make):
    with pytest.raises(PermanentHttpError) as caught:
        transcribe(make(), audio=b"")
    assert caught.value.status == 400
    assert "No file was uploaded" in str(caught.value)
    assert len(fake.requests) == 1


def test_incompatible_format_for_the_model_is_reported(fake, make):
    with pytest.raises(PermanentHttpError, match="not compatible"):
        transcribe(make(model="whisper-1", diarize=True))


def test_malformed_json_is_a_provider_response_error(fake, make):
    fake.fail_next("POST", TRANSCRIPTIONS_PATH, kind="malformed")
    with pytest.raises(ProviderResponseError):
        transcribe(make())
    assert len(fake.requests) == 1


def test_segments_without_speakers_in_diarized_mode_are_rejected(fake, make):
    fake.fail_next(
        "POST", TRANSCRIPTIONS_PATH, status=200, body={"text": "a", "segments": [{"start": 0, "end": 1, "text": "a"}]}
    )
    with pytest.raises(ProviderResponseError, match=r"segments\[0\]\.speaker"):
        transcribe(make())


def test_timeout_is_temporary(fake, make):
    fake.timeout_sleep = 1.0
    fake.fail_next("POST", TRANSCRIPTIONS_PATH, kind="timeout", times=2)
    with pytest.raises(TemporaryHttpError, match="timed out"):
        transcribe(make(retries=1, timeout=0.2))
    assert len(fake.requests) == 2


def test_refused_connection_is_temporary():
    transcriber = OpenAITranscriber(
        api_key="k", base_url="http://127.0.0.1:9/v1", policy=HttpPolicy(timeout=1, retries=0)
    )
    with pytest.raises(TemporaryHttpError):
        transcribe(transcriber)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("text", "must be a JSON object"),
        ({"text": "a", "words": {"word": "a"}}, "words must be a list"),
        ({"text": "a", "words": [{"word": "a", "start": 1, "end": 0}]}, "before it starts"),
        ({"text": "a", "words": [{"word": "a", "start": None, "end": 0}]}, r"words\[0\]\.start"),
        ({"words": []}, "text must be a string"),
    ],
)
def test_verbose_json_parser_rejects_bad_input(payload, message):
    with pytest.raises(ValueError, match=message):
        result_from_verbose_json(payload)


def test_from_settings_for_a_self_hosted_whisper_server(fake, settings):
    settings.OPENAI_API_KEY = FakeOpenAIAudio.api_key
    settings.OPENAI_BASE_URL = f"{fake.url}/v1"
    settings.OPENAI_TRANSCRIBE_MODEL = WHISPER
    with OpenAITranscriber.from_settings() as transcriber:
        result = transcribe(transcriber, language="ru")
    assert result.granularity == "word"
    assert multipart_fields(fake.requests[-1])["model"] == [WHISPER]

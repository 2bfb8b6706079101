"""Speech-to-text through ``POST /audio/transcriptions`` of OpenAI or any compatible server.

Two modes, chosen by the model (or ``diarize=``):

* **Diarizing** (``gpt-4o-transcribe-diarize``): ``response_format="diarized_json"`` with
  ``chunking_strategy="auto"`` (OpenAI refuses diarization of audio over 30 s without it). The answer
  has speaker-labelled segments (``A``, ``B``, ...) but no word timings, so each segment becomes one
  :class:`Word` and the result's ``granularity`` is ``"segment"``. The API has no speaker-count
  hint, so ``num_speakers`` is ignored.
* **Plain Whisper** (OpenAI ``whisper-1`` or a self-hosted faster-whisper/whisper.cpp server):
  ``response_format="verbose_json"`` with word and segment timestamps. There are no speakers:
  every word has ``speaker=None`` and role assignment treats the call as one undiarized speaker.
  Servers that nest words inside segments, or return segments only, are handled too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from medai.http import HttpPolicy, ProviderResponseError
from medai.integrations.openai_compat import DEFAULT_BASE_URL, http_error_from_openai, make_client
from medai.integrations.transcription_types import Granularity, TranscriptionResult, Word

DEFAULT_MODEL = "gpt-4o-transcribe-diarize"


class OpenAITranscriber:
    """:class:`~medai.integrations.transcription_types.Transcriber` for OpenAI-compatible servers."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        diarize: bool | None = None,
        provider: str = "openai",
        policy: HttpPolicy | None = None,
        proxy: str | None = None,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.model = model
        self.diarize = "diarize" in model.lower() if diarize is None else diarize
        self.provider = provider
        self._owns_client = http_client is None
        self._sdk = make_client(api_key=api_key, base_url=base_url, policy=policy, proxy=proxy, http_client=http_client)

    @classmethod
    def from_settings(cls, **overrides: Any) -> OpenAITranscriber:
        """Build from ``OPENAI_*`` settings; keyword arguments win."""
        from django.conf import settings

        options: dict[str, Any] = {
            "api_key": settings.OPENAI_API_KEY,
            "base_url": settings.OPENAI_BASE_URL,
            "model": settings.OPENAI_TRANSCRIBE_MODEL,
        }
        options.update(overrides)
        return cls(**options)

    def transcribe(
        self,
        audio: bytes,
        *,
        filename: str,
        content_type: str,
        language: str | None = None,
        num_speakers: int | None = None,
    ) -> TranscriptionResult:
        options: dict[str, Any] = {"language": language} if language else {}
        if self.diarize:
            options.update(response_format="diarized_json", chunking_strategy="auto")
        else:
            options.update(response_format="verbose_json", timestamp_granularities=["word", "segment"])
        try:
            response = self._sdk.audio.transcriptions.with_raw_response.create(
                model=self.model,
                file=(filename or "audio", audio, content_type or "application/octet-stream"),
                **options,
            )
            body = response.content
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise http_error_from_openai(exc, provider=self.provider) from exc

        request_id = response.request_id
        try:
            payload = json.loads(body)
            parse = result_from_diarized_json if self.diarize else result_from_verbose_json
            return parse(payload, provider=self.provider, model=self.model, request_id=request_id)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            raise ProviderResponseError(
                f"{self.provider}: unexpected transcription response: {exc}",
                status=response.status_code,
                request_id=request_id,
                body=body.decode(errors="replace"),
            ) from exc

    def close(self) -> None:
        if self._owns_client:
            self._sdk.close()

    def __enter__(self) -> OpenAITranscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- response parsing ------------------------------------------------------------------------------


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)


def _timed_unit(item: Any, where: str, text_key: str, speaker_key: str | None) -> Word | None:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object")
    text = item.get(text_key)
    if not isinstance(text, str):
        raise ValueError(f"{where}.{text_key} must be a string, got {text!r}")
    start, end = _seconds(item.get("start"), f"{where}.start"), _seconds(item.get("end"), f"{where}.end")
    if end < start:
        raise ValueError(f"{where} ends ({end}) before it starts ({start})")
    speaker = None
    if speaker_key is not None:
        speaker = item.get(speaker_key)
        if not isinstance(speaker, str) or not speaker:
            raise ValueError(f"{where}.{speaker_key} must be a non-empty string, got {speaker!r}")
    if not text.strip():
        return None
    return Word(text=text.strip(), start=start, end=end, speaker=speaker)


def _list(payload: Mapping[str, Any], key: str, *, required: bool) -> list[Any]:
    value = payload.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _build(
    payload: Mapping[str, Any],
    words: list[Word],
    *,
    granularity: Granularity,
    provider: str,
    model: str,
    request_id: str | None,
) -> TranscriptionResult:
    text = payload.get("text")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    duration = payload.get("duration")
    duration = _seconds(duration, "duration") if duration is not None else max((w.end for w in words), default=None)
    language = payload.get("language")
    return TranscriptionResult(
        words=sorted(words, key=lambda w: (w.start, w.end)),
        text=text.strip(),
        language=language if isinstance(language, str) and language else None,
        language_probability=None,  # neither format reports it
        duration_seconds=duration,
        provider=provider,
        model=model,
        request_id=request_id,
        raw=dict(payload),
        granularity=granularity,
    )


def result_from_diarized_json(
    payload: Any, *, provider: str = "openai", model: str = DEFAULT_MODEL, request_id: str | None = None
) -> TranscriptionResult:
    """``{"text", "duration", "segments": [{"speaker", "start", "end", "text", ...}]}`` → result."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"response must be a JSON object, got {type(payload).__name__}")
    words = []
    for index, segment in enumerate(_list(payload, "segments", required=True)):
        word = _timed_unit(segment, f"segments[{index}]", "text", "speaker")
        if word is not None:
            words.append(word)
    return _build(payload, words, granularity="segment", provider=provider, model=model, request_id=request_id)


def result_from_verbose_json(
    payload: Any, *, provider: str = "openai", model: str = "whisper-1", request_id: str | None = None
) -> TranscriptionResult:
    """Whisper ``verbose_json`` → result with ``speaker=None`` everywhere.

    Word timings come from top-level ``words`` (OpenAI), else from ``segments[].words`` (some
    self-hosted servers), else the segments themselves are the timed units.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"response must be a JSON object, got {type(payload).__name__}")
    segments = _list(payload, "segments", required=False)
    words: list[Word] = []
    granularity: Granularity = "word"
    top_level = _list(payload, "words", required=False)
    if top_level:
        units = [(item, f"words[{i}]") for i, item in enumerate(top_level)]
    else:
        units = [
            (item, f"segments[{s}].words[{i}]")
            for s, segment in enumerate(segments)
            if isinstance(segment, Mapping)
            for i, item in enumerate(segment.get("words") or [])
        ]
    for item, where in units:
        word = _timed_unit(item, where, "word", None)
        if word is not None:
            words.append(word)
    if not units:
        granularity = "segment"
        for index, segment in enumerate(segments):
            word = _timed_unit(segment, f"segments[{index}]", "text", None)
            if word is not None:
                words.append(word)
    return _build(payload, words, granularity=granularity, provider=provider, model=model, request_id=request_id)

"""ElevenLabs Scribe speech-to-text with speaker diarization.

Uses the official ``elevenlabs`` SDK for the request format, but hands it an ``httpx.Client`` from
:func:`medai.http.build_client`, so timeouts, retries (honouring ``Retry-After``), proxy and redacted
logging happen in our chokepoint. The SDK's own retry loop is switched off per request
(``max_retries=0``): otherwise one 429 would be retried up to 3 × 3 times with sleeps we do not control.

API: ``POST /v1/speech-to-text`` (multipart), header ``xi-api-key``; the answer carries a
``request-id`` header, recorded on the result and on errors for support tickets.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.parse_error import ParsingError

from medai.http import HttpError, HttpPolicy, ProviderResponseError, build_client, classify_transport_error
from medai.integrations.transcription_types import (
    TranscriptionResult,
    header_value,
    status_error,
    words_from_elevenlabs,
)

PROVIDER = "elevenlabs"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "scribe_v1"
_REQUEST_ID_HEADERS = ("request-id", "x-request-id")


class ElevenLabsTranscriber:
    """:class:`~medai.integrations.transcription_types.Transcriber` backed by ElevenLabs Scribe."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        tag_audio_events: bool = True,
        policy: HttpPolicy | None = None,
        proxy: str | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("ElevenLabs API key is empty")
        self.model = model
        self.tag_audio_events = tag_audio_events
        self._owns_client = http_client is None
        self._http = http_client or build_client(policy=policy, proxy=proxy)
        # The SDK sends its own per-request timeout (240 s unless told), overriding the client's.
        self._sdk = ElevenLabs(
            api_key=api_key, base_url=base_url.rstrip("/"), httpx_client=self._http, timeout=self._http.timeout.read
        )

    @classmethod
    def from_settings(cls, **overrides: Any) -> ElevenLabsTranscriber:
        """Build from ``ELEVENLABS_*`` settings; keyword arguments win (e.g. a clinic's own key)."""
        from django.conf import settings

        options: dict[str, Any] = {
            "api_key": settings.ELEVENLABS_API_KEY,
            "base_url": settings.ELEVENLABS_BASE_URL,
            "model": settings.ELEVENLABS_MODEL,
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
        """Transcribe ``audio`` with word timestamps, speakers and audio events (laughter, music)."""
        try:
            response = self._sdk.speech_to_text.with_raw_response.convert(
                model_id=self.model,
                file=(filename or "audio", audio, content_type or "application/octet-stream"),
                language_code=language or None,
                num_speakers=num_speakers,
                diarize=True,
                timestamps_granularity="word",
                tag_audio_events=self.tag_audio_events,
                request_options={"max_retries": 0},
            )
        except (ApiError, ParsingError) as exc:
            raise _error_from_sdk(exc) from exc
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc, provider=PROVIDER) from exc

        request_id = _request_id(response.headers)
        payload = _json_of(response, request_id)
        try:
            return result_from_elevenlabs(payload, model=self.model, request_id=request_id)
        except ValueError as exc:
            raise ProviderResponseError(
                f"{PROVIDER}: unexpected response: {exc}", status=response.status_code, request_id=request_id
            ) from exc

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> ElevenLabsTranscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def result_from_elevenlabs(
    payload: Any, *, model: str = DEFAULT_MODEL, request_id: str | None = None
) -> TranscriptionResult:
    """A :class:`TranscriptionResult` from an ElevenLabs response body (live or imported).

    Raises ``ValueError`` naming the field when the body is not the documented shape.
    """
    words = words_from_elevenlabs(payload)  # also checks that payload is an object
    text = payload.get("text")
    if text is None and "transcripts" in payload:
        text = " ".join(w.text for w in words if w.kind == "word")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    language = payload.get("language_code")
    if language is not None and not isinstance(language, str):
        raise ValueError(f"language_code must be a string, got {language!r}")
    probability = payload.get("language_probability")
    if probability is not None and (
        isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1
    ):
        raise ValueError(f"language_probability must be a number in 0..1, got {probability!r}")
    duration = payload.get("audio_duration_secs")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        duration = max((w.end for w in words), default=None)
    return TranscriptionResult(
        words=words,
        text=text,
        language=language,
        language_probability=float(probability) if probability is not None else None,
        duration_seconds=float(duration) if duration is not None else None,
        provider=PROVIDER,
        model=model,
        request_id=request_id,
        raw=dict(payload),
    )


def _request_id(headers: Any) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = header_value(headers, name)
        if value:
            return value
    return None


def _json_of(response: Any, request_id: str | None) -> Any:
    """The decoded body, read from the raw ``httpx.Response`` rather than the SDK's model.

    The SDK builds its model without validation (missing fields simply stay unset), so our own
    checks must see the JSON exactly as the server sent it.
    """
    raw = getattr(response, "_response", None)
    try:
        if raw is not None:
            return raw.json()
        return response.data.model_dump(mode="json", exclude_unset=True)  # pragma: no cover - SDK layout changed
    except ValueError as exc:
        raise ProviderResponseError(
            f"{PROVIDER}: malformed JSON in a {response.status_code} response",
            status=response.status_code,
            request_id=request_id,
        ) from exc


def _detail(body: Any) -> str:
    """The human-readable part of an ElevenLabs error body.

    Documented shapes: ``{"detail": {"status": "invalid_api_key", "message": "..."}}`` and, for
    validation errors (422), ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``.
    """
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        status, message = detail.get("status"), detail.get("message")
        return ": ".join(str(part) for part in (status, message) if part)
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts)
    return str(detail or "").strip()[:200]


def _error_from_sdk(exc: ApiError | ParsingError) -> HttpError:
    status = exc.status_code or 0
    headers = exc.headers or {}
    request_id = _request_id(headers)
    body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, ensure_ascii=False, default=str)
    if 200 <= status < 300 or isinstance(exc, ParsingError):
        return ProviderResponseError(
            f"{PROVIDER}: malformed response body (HTTP {status})", status=status, request_id=request_id, body=body
        )
    return status_error(PROVIDER, status, detail=_detail(exc.body), headers=headers, request_id=request_id, body=body)

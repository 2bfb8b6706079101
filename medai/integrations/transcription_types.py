"""The provider-neutral shape of a transcription, shared by every speech-to-text client.

The pipeline stores :class:`TranscriptionResult` and builds utterances and roles from its words, so
it never needs to know which provider (or which offline import) produced them. The parser for
ElevenLabs-shaped JSON lives here rather than in the client because the offline import path reads
such files without any API key or SDK.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from medai.http import RETRY_STATUSES, HttpError, PermanentHttpError, TemporaryHttpError, parse_retry_after

WordKind = Literal["word", "audio_event"]
Granularity = Literal["word", "segment"]


@dataclass(frozen=True)
class Word:
    """The smallest timed unit a provider returns.

    Usually one word. Providers that give no word timings (OpenAI's diarizing model, Whisper servers
    without word timestamps) return whole segments, one ``Word`` each; the result's ``granularity``
    says which. ``speaker`` is ``None`` when the provider did not diarize.
    """

    text: str
    start: float
    end: float
    speaker: str | None = None
    kind: WordKind = "word"


@dataclass
class TranscriptionResult:
    words: list[Word]
    text: str
    language: str | None
    language_probability: float | None
    duration_seconds: float | None
    provider: str
    model: str
    request_id: str | None
    raw: dict[str, Any] = field(repr=False)
    # "segment" when ``words`` holds whole segments (see :class:`Word`).
    granularity: Granularity = "word"

    @property
    def speakers(self) -> list[str]:
        """Distinct speaker labels in order of first appearance."""
        seen: dict[str, None] = {}
        for word in self.words:
            if word.speaker is not None:
                seen.setdefault(word.speaker, None)
        return list(seen)


@runtime_checkable
class Transcriber(Protocol):
    """What the pipeline needs from a speech-to-text provider.

    Implementations raise :class:`medai.http.TemporaryHttpError` (retry later),
    :class:`medai.http.PermanentHttpError` (fail the call) or
    :class:`medai.http.ProviderResponseError` (the provider answered nonsense).
    """

    def transcribe(
        self,
        audio: bytes,
        *,
        filename: str,
        content_type: str,
        language: str | None = None,
        num_speakers: int | None = None,
    ) -> TranscriptionResult: ...


# -- error classification shared by the SDK-based clients ---------------------------------------


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup on the plain dicts SDK exceptions carry."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def status_error(
    provider: str,
    status: int,
    *,
    detail: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    body: str = "",
) -> HttpError:
    """Classify a provider's non-2xx answer the same way :func:`medai.http.raise_for_status` does.

    429 and every 5xx are temporary (the chokepoint has already retried them as far as policy
    allows, so the pipeline should retry later, honouring ``retry_after``); any other 4xx means the
    request itself is wrong (bad key, no credits, bad file) and retrying cannot help.
    """
    message = f"{provider}: HTTP {status}"
    if detail:
        message += f": {detail[:200]}"
    kwargs: dict[str, Any] = {
        "status": status,
        "retry_after": parse_retry_after(header_value(headers, "retry-after")),
        "request_id": request_id,
        "body": body,
    }
    if status in RETRY_STATUSES or status >= 500:
        return TemporaryHttpError(message, **kwargs)
    return PermanentHttpError(message, **kwargs)


# -- ElevenLabs-shaped JSON ------------------------------------------------------------------------

_ELEVENLABS_TYPES = frozenset({"word", "spacing", "audio_event"})


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{where} must not be negative, got {value!r}")
    return float(value)


def _word_from_elevenlabs(item: Any, where: str, default_speaker: str | None) -> Word | None:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object, got {type(item).__name__}")
    kind = item.get("type")
    if kind not in _ELEVENLABS_TYPES:
        raise ValueError(f"{where}.type must be one of word, spacing, audio_event; got {kind!r}")
    text = item.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}.text must be a string, got {text!r}")
    if kind == "spacing":
        return None  # whitespace between words; utterances re-join words with spaces
    if item.get("start") is None or item.get("end") is None:
        raise ValueError(f"{where} has no timestamps (transcribe with timestamps_granularity='word')")
    start = _number(item["start"], f"{where}.start")
    end = _number(item["end"], f"{where}.end")
    if end < start:
        raise ValueError(f"{where} ends ({end}) before it starts ({start})")
    speaker = item.get("speaker_id", default_speaker)
    if speaker is not None and not isinstance(speaker, str):
        raise ValueError(f"{where}.speaker_id must be a string or null, got {speaker!r}")
    if not text.strip():
        return None
    return Word(
        text=text.strip(),
        start=start,
        end=end,
        speaker=speaker or default_speaker,
        kind="audio_event" if kind == "audio_event" else "word",
    )


def _words_of_chunk(chunk: Any, where: str, default_speaker: str | None) -> list[Word]:
    if not isinstance(chunk, Mapping):
        raise ValueError(f"{where or 'transcript'} must be a JSON object, got {type(chunk).__name__}")
    items = chunk.get("words")
    if not isinstance(items, list):
        raise ValueError(f"{where + '.' if where else ''}words must be a list, got {type(items).__name__}")
    words = []
    for index, item in enumerate(items):
        word = _word_from_elevenlabs(item, f"{where + '.' if where else ''}words[{index}]", default_speaker)
        if word is not None:
            words.append(word)
    return words


def words_from_elevenlabs(payload: Any) -> list[Word]:
    """Words (and audio events) from an ElevenLabs speech-to-text response, in time order.

    Accepts the single-channel shape (``{"words": [...]}``) and the multichannel one
    (``{"transcripts": [{"channel_index": 0, "words": [...]}, ...]}``); in the latter a word without
    ``speaker_id`` is attributed to ``channel_<index>``, since telephony stereo puts one party per
    channel. ``spacing`` entries are dropped. Raises ``ValueError`` naming the offending field.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"transcript must be a JSON object, got {type(payload).__name__}")
    if "transcripts" in payload and "words" not in payload:
        chunks = payload["transcripts"]
        if not isinstance(chunks, list) or not chunks:
            raise ValueError("transcripts must be a non-empty list")
        words: list[Word] = []
        for index, chunk in enumerate(chunks):
            channel = chunk.get("channel_index", index) if isinstance(chunk, Mapping) else index
            words.extend(_words_of_chunk(chunk, f"transcripts[{index}]", f"channel_{channel}"))
        return sorted(words, key=lambda w: (w.start, w.end))
    return sorted(_words_of_chunk(payload, "", None), key=lambda w: (w.start, w.end))

"""Signed requests between our VoxEngine scenario and MedAI, and the call-result payload.

The scenario signs every request it makes to us (settings fetch, LLM turns, the final result) with
HMAC-SHA256 using VoxEngine's documented ``Crypto.hmac_sha256(key, data)`` and a secret it reads with
``VoxEngine.getSecretValue`` (Voximplant secret storage), so the secret never travels in custom data.

Headers::

    X-MedAI-Timestamp: 1718000000             unix seconds when the request was signed
    X-MedAI-Nonce:     3f0c…                  random, unique per request (VoxEngine ``uuidgen()``)
    X-MedAI-Signature: v1=<hex>               hex HMAC-SHA256 of  "v1:<timestamp>:<nonce>:" + content

``content`` is the raw request body; for a GET (no body) it is the URL path, e.g.
``/api/outbound/scenario/<token>/``, so a signature cannot be moved to another token. The scenario sends
ASCII-only JSON (non-ASCII escaped as ``\\uXXXX``) so both sides hash exactly the same bytes.

:func:`verify` rejects missing/malformed headers, bad signatures (constant-time compare), timestamps
outside ``tolerance`` seconds of ``now`` (either direction) and replays: ``seen(nonce)`` is called only
after the signature checks out and must atomically record the nonce and report whether it was already
recorded (e.g. ``cache.add(key, 1, timeout=2*tolerance)`` returning False, or a unique DB row).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

TIMESTAMP_HEADER = "X-MedAI-Timestamp"
NONCE_HEADER = "X-MedAI-Nonce"
SIGNATURE_HEADER = "X-MedAI-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300
MAX_BODY_BYTES = 1_000_000
MAX_SEGMENTS = 2000
MAX_TEXT = 10_000

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


class InvalidSignature(Exception):
    """The request is not a fresh, authentic request from our scenario. ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _message(timestamp: int, nonce: str, content: bytes) -> bytes:
    return f"{SCHEME}:{timestamp}:{nonce}:".encode() + content


def sign(secret: bytes, timestamp: int, body: bytes, *, nonce: str) -> str:
    """The ``X-MedAI-Signature`` value (``v1=<hex>``) for ``body`` (or the URL path of a GET)."""
    if not secret:
        raise ValueError("webhook secret is empty")
    digest = hmac.new(secret, _message(int(timestamp), nonce, body), hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: bytes, body: bytes, *, timestamp: int, nonce: str) -> dict[str, str]:
    """All three headers for a request (used by the fake Voximplant and by tests)."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, timestamp, body, nonce=nonce),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def verify(
    secret: bytes | Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    seen: Callable[[str], bool],
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Raise :class:`InvalidSignature` unless ``headers`` sign ``body`` freshly and for the first time.

    ``secret`` may be a list of secrets (current first) to rotate without downtime. ``headers`` is any
    mapping; lookup is case-insensitive (Django's ``request.headers`` works as is).
    """
    secrets = [secret] if isinstance(secret, (bytes, bytearray)) else list(secret)
    if not secrets or not all(secrets):
        raise ValueError("webhook secret is empty")  # a configuration error, not the caller's fault

    raw_ts = _header(headers, TIMESTAMP_HEADER)
    nonce = _header(headers, NONCE_HEADER)
    raw_sig = _header(headers, SIGNATURE_HEADER)
    if not raw_ts or not nonce or not raw_sig:
        missing = [
            n for n, v in ((TIMESTAMP_HEADER, raw_ts), (NONCE_HEADER, nonce), (SIGNATURE_HEADER, raw_sig)) if not v
        ]
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        raise InvalidSignature("malformed timestamp")
    if not _NONCE_RE.match(nonce):
        raise InvalidSignature("malformed nonce")
    scheme, _, digest = raw_sig.partition("=")
    if scheme != SCHEME or not _HEX_RE.match(digest.lower()):
        raise InvalidSignature("malformed signature (expected v1=<64 hex>)")

    timestamp = int(raw_ts)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("stale timestamp")

    message = _message(timestamp, nonce, body)
    provided = digest.lower().encode()
    valid = False
    for key in secrets:
        expected = hmac.new(bytes(key), message, hashlib.sha256).hexdigest().encode()
        valid |= hmac.compare_digest(expected, provided)
    if not valid:
        raise InvalidSignature("bad signature")
    if seen(nonce):
        raise InvalidSignature("replayed nonce")


# -- the result payload -------------------------------------------------------------------------------


class OutboundStatus(StrEnum):
    COMPLETED = "completed"  # a human answered and the conversation ran
    NO_ANSWER = "no_answer"  # rang out (408/480/487 or our ring timeout)
    BUSY = "busy"  # 486 busy / 603 declined
    VOICEMAIL = "voicemail"  # answered by a machine (AMD)
    FAILED = "failed"  # invalid number, no funds, scenario error …


class Speaker(StrEnum):
    AI = "ai"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class TranscriptSegment:
    speaker: Speaker
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class OutboundResult:
    call_token: str
    session_id: int
    status: OutboundStatus
    duration_seconds: float
    transcript: tuple[TranscriptSegment, ...] | None
    record_url: str | None
    error: str | None
    sip_code: int | None = None

    @property
    def answered(self) -> bool:
        return self.status == OutboundStatus.COMPLETED


_REQUIRED = {"call_token", "session_id", "status", "duration_seconds", "transcript", "record_url", "error"}
_OPTIONAL = {"sip_code"}


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return float(value)


def _segment(item: Any, index: int) -> TranscriptSegment:
    where = f"transcript[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object")
    unknown = set(item) - {"speaker", "start", "end", "text"}
    if unknown:
        raise ValueError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
    speaker = item.get("speaker")
    if speaker not in {s.value for s in Speaker}:
        raise ValueError(f"{where}.speaker must be 'ai' or 'customer', got {speaker!r}")
    start = _number(item.get("start"), f"{where}.start")
    end = _number(item.get("end"), f"{where}.end")
    if end < start:
        raise ValueError(f"{where}.end ({end}) is before start ({start})")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}.text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{where}.text is longer than {MAX_TEXT} characters")
    return TranscriptSegment(Speaker(speaker), start, end, text.strip())


def parse_result(body: bytes | str) -> OutboundResult:
    """Validate the scenario's result JSON strictly; ``ValueError`` says which field is wrong."""
    if isinstance(body, str):
        body = body.encode()
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    missing = _REQUIRED - set(data)
    if missing:
        raise ValueError(f"missing field(s): {', '.join(sorted(missing))}")
    unknown = set(data) - _REQUIRED - _OPTIONAL
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")

    token = data["call_token"]
    if not isinstance(token, str) or not 8 <= len(token) <= 128:
        raise ValueError("call_token must be a string of 8..128 characters")
    session_id = data["session_id"]
    if isinstance(session_id, bool) or not isinstance(session_id, int) or session_id <= 0:
        raise ValueError(f"session_id must be a positive integer, got {session_id!r}")
    status_raw = data["status"]
    if status_raw not in {s.value for s in OutboundStatus}:
        raise ValueError(f"status must be one of {', '.join(s.value for s in OutboundStatus)}, got {status_raw!r}")
    status = OutboundStatus(status_raw)
    duration = _number(data["duration_seconds"], "duration_seconds")

    transcript_raw = data["transcript"]
    transcript: tuple[TranscriptSegment, ...] | None = None
    if transcript_raw is not None:
        if not isinstance(transcript_raw, list):
            raise ValueError("transcript must be a list or null")
        if len(transcript_raw) > MAX_SEGMENTS:
            raise ValueError(f"transcript has more than {MAX_SEGMENTS} segments")
        transcript = tuple(_segment(item, i) for i, item in enumerate(transcript_raw))

    record_url = data["record_url"]
    if record_url is not None and (
        not isinstance(record_url, str) or not record_url.startswith(("https://", "http://"))
    ):
        raise ValueError("record_url must be an http(s) URL or null")
    error = data["error"]
    if error is not None and (not isinstance(error, str) or len(error) > 1000):
        raise ValueError("error must be a string (≤ 1000 characters) or null")
    sip_code = data.get("sip_code")
    if sip_code is not None and (
        isinstance(sip_code, bool) or not isinstance(sip_code, int) or not 100 <= sip_code <= 699
    ):
        raise ValueError(f"sip_code must be a SIP status code or null, got {sip_code!r}")

    if status == OutboundStatus.FAILED and not error:
        raise ValueError("status 'failed' requires an error message")
    if status in (OutboundStatus.NO_ANSWER, OutboundStatus.BUSY) and transcript:
        raise ValueError(f"status '{status}' cannot carry a transcript")
    return OutboundResult(
        call_token=token,
        session_id=session_id,
        status=status,
        duration_seconds=duration,
        transcript=transcript,
        record_url=record_url,
        error=error,
        sip_code=sip_code,
    )


def result_to_json(result: OutboundResult) -> bytes:
    """The wire form of a result, ASCII-only, exactly as the scenario sends it (used by the fake)."""
    payload: dict[str, Any] = {
        "call_token": result.call_token,
        "session_id": result.session_id,
        "status": result.status.value,
        "duration_seconds": result.duration_seconds,
        "transcript": None
        if result.transcript is None
        else [{"speaker": s.speaker.value, "start": s.start, "end": s.end, "text": s.text} for s in result.transcript],
        "record_url": result.record_url,
        "error": result.error,
    }
    if result.sip_code is not None:
        payload["sip_code"] = result.sip_code
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()

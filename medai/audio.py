"""Validating and fetching call recordings before anything pays to transcribe them.

:func:`probe_audio` trusts the bytes, never the file name or the declared content type: telephony
hosts serve HTML error pages with status 200 and ``.mp3`` names, and a paid transcription of such a
page fails late and costs money. The container is identified by magic bytes (``filetype``), the
duration is read from the container (``mutagen``; WebM/Matroska, which mutagen does not read, by a
small EBML walk here). :func:`download_audio` streams a recording through the HTTP chokepoint and stops
as soon as it is larger than allowed.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import filetype
import httpx
from mutagen import MutagenError
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis

from medai.http import (
    HttpPolicy,
    PermanentHttpError,
    TemporaryHttpError,
    build_client,
    classify_transport_error,
    raise_for_status,
)

DOWNLOAD_PROVIDER = "recording host"


class InvalidAudio(ValueError):
    """The bytes are not a usable recording; ``reason`` is readable by a clinic operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AudioInfo:
    mime: str
    extension: str
    duration_seconds: float
    size_bytes: int


# -- duration readers ------------------------------------------------------------------------------


def _mutagen_length(*classes: type) -> Callable[[bytes], float]:
    """A reader trying each mutagen class in turn (an Ogg file may hold Opus, Vorbis, FLAC or Speex)."""

    def read(data: bytes) -> float:
        errors = []
        for cls in classes:
            try:
                info = cls(io.BytesIO(data)).info
            except (MutagenError, struct.error, ValueError, EOFError, IndexError) as exc:
                errors.append(str(exc) or type(exc).__name__)
                continue
            if getattr(info, "sketchy", False):
                raise InvalidAudio("the file is corrupt: no run of valid MPEG audio frames found")
            return float(info.length or 0.0)
        raise InvalidAudio(f"the file is corrupt or cannot be decoded ({errors[0] if errors else 'unknown error'})")

    return read


def _mp4_length(data: bytes) -> float:
    """MP4/M4A duration of the sound track; a video-only file is refused.

    mutagen falls back to the movie's length when there is no sound track, so the handler types
    are checked here first: an ``hdlr`` box holds version/flags, 4 reserved bytes, then the type.
    """
    position = data.find(b"hdlr")
    while position != -1:
        if data[position + 12 : position + 16] == b"soun":
            return _read_mp4(data)
        position = data.find(b"hdlr", position + 4)
    raise InvalidAudio("the MP4 file has no audio track")


_read_mp4 = _mutagen_length(MP4)


def _wav_length(data: bytes) -> float:
    """Duration of a RIFF/WAVE file as data bytes / byte rate.

    Not mutagen's: it divides by the block size, which is wrong for the compressed formats telephony
    writes into WAV (GSM 6.10, IMA ADPCM). A data chunk longer than the file (an unfinished or
    truncated recording) or with a streaming placeholder size counts only the bytes present.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InvalidAudio("the WAV file is corrupt: no RIFF/WAVE header")
    byte_rate, pos = 0, 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and size >= 16 and pos + 24 <= len(data):
            byte_rate = struct.unpack("<I", data[pos + 16 : pos + 20])[0]
        elif chunk == b"data":
            if not byte_rate:
                raise InvalidAudio("the WAV file is corrupt: no usable format chunk before the data")
            present = len(data) - pos - 8
            return min(size, present) / byte_rate
        pos += 8 + size + (size & 1)
    raise InvalidAudio("the WAV file is corrupt: no audio data chunk")


# EBML element ids (with their length marker bits, as they appear in the file).
_SEGMENT, _INFO, _TRACKS, _TRACK_ENTRY, _CLUSTER, _BLOCK_GROUP = (
    0x18538067,
    0x1549A966,
    0x1654AE6B,
    0xAE,
    0x1F43B675,
    0xA0,
)
_TIMECODE_SCALE, _DURATION, _TRACK_TYPE, _CLUSTER_TIMECODE, _SIMPLE_BLOCK, _BLOCK = (
    0x2AD7B1,
    0x4489,
    0x83,
    0xE7,
    0xA3,
    0xA1,
)
_EBML_HEADER = 0x1A45DFA3
# Master elements walked into; every other element is skipped by its size.
_DESCEND = frozenset({_SEGMENT, _INFO, _TRACKS, _TRACK_ENTRY, _CLUSTER, _BLOCK_GROUP})
_AUDIO_TRACK = 2


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """Decode an EBML variable-length integer at ``pos``: (value, next position, all-ones)."""
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise ValueError("bad EBML integer")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    all_ones = value == (1 << (7 * length)) - 1
    return value, pos + length, all_ones and not keep_marker


def _matroska_length(data: bytes) -> float:
    """Duration of a WebM/Matroska file from Segment/Info/Duration, else from the last block
    (also when the file is cut short).

    Walks the element tree flat (masters are entered, leaves skipped), which also copes with the
    unknown-size Segment and Cluster elements that browsers' MediaRecorder writes; such recordings
    usually carry no Duration, so the last block's timestamp is the fallback.
    """
    scale, duration, cluster_time, last_block, has_audio, saw_segment = 1_000_000, None, 0, 0, False, False
    blocks, truncated = 0, False
    pos = 0
    try:
        while pos < len(data):
            element, pos, _ = _vint(data, pos, keep_marker=True)
            size, pos, unknown = _vint(data, pos, keep_marker=False)
            if element in _DESCEND:
                saw_segment = saw_segment or element == _SEGMENT
                continue
            if unknown or pos + size > len(data):
                truncated = True  # cut short: measure what arrived, not what the header promised
                break
            payload = data[pos : pos + size]
            pos += size
            if element == _TIMECODE_SCALE:
                scale = int.from_bytes(payload, "big") or scale
            elif element == _DURATION and size in (4, 8):
                duration = struct.unpack(">f" if size == 4 else ">d", payload)[0]
            elif element == _TRACK_TYPE:
                has_audio = has_audio or int.from_bytes(payload, "big") == _AUDIO_TRACK
            elif element == _CLUSTER_TIMECODE:
                cluster_time = int.from_bytes(payload, "big")
            elif element in (_SIMPLE_BLOCK, _BLOCK) and size >= 4:
                _, offset, _ = _vint(payload, 0, keep_marker=False)  # track number
                relative = struct.unpack(">h", payload[offset : offset + 2])[0]
                last_block = max(last_block, cluster_time + relative)
                blocks += 1
    except (ValueError, IndexError, struct.error) as exc:
        raise InvalidAudio("the WebM/Matroska file is corrupt") from exc
    if not saw_segment:
        raise InvalidAudio("the WebM/Matroska file is corrupt: no segment")
    if not has_audio:
        raise InvalidAudio("the WebM/Matroska file has no audio track")
    if not blocks:
        raise InvalidAudio("the WebM/Matroska file is corrupt: no audio data")
    ticks = duration if duration is not None and duration > 0 and not truncated else last_block
    return float(ticks) * scale / 1e9


# filetype's MIME → (our MIME, extension, duration reader). Only these containers are accepted.
_FORMATS: dict[str, tuple[str, str, Callable[[bytes], float]]] = {
    "audio/mpeg": ("audio/mpeg", "mp3", _mutagen_length(MP3)),
    "audio/x-wav": ("audio/wav", "wav", _wav_length),
    "audio/ogg": ("audio/ogg", "ogg", _mutagen_length(OggOpus, OggVorbis, OggFLAC, OggSpeex)),
    "audio/x-flac": ("audio/flac", "flac", _mutagen_length(FLAC)),
    "audio/mp4": ("audio/mp4", "m4a", _mp4_length),
    "video/mp4": ("audio/mp4", "m4a", _mp4_length),  # M4A often declares generic MP4 brands
    "video/webm": ("audio/webm", "webm", _matroska_length),
    "video/x-matroska": ("audio/x-matroska", "mka", _matroska_length),
}


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _limits(max_seconds: float | None, max_bytes: int | None) -> tuple[float, int]:
    if max_seconds is None or max_bytes is None:
        from django.conf import settings

        max_seconds = settings.MAX_AUDIO_SECONDS if max_seconds is None else max_seconds
        max_bytes = settings.MAX_AUDIO_BYTES if max_bytes is None else max_bytes
    return float(max_seconds), int(max_bytes)


def probe_audio(
    data: bytes,
    *,
    filename: str = "",
    max_seconds: float | None = None,
    max_bytes: int | None = None,
) -> AudioInfo:
    """Check that ``data`` is a playable recording within limits and measure it.

    ``filename`` only refines the extension of ambiguous containers (``.mp4`` vs ``.m4a``,
    ``.mkv`` vs ``.mka``); it never decides whether the bytes are audio and is never echoed in the
    reason (recording names often contain phone numbers). Limits default to
    ``settings.MAX_AUDIO_SECONDS`` / ``MAX_AUDIO_BYTES``.
    """
    max_seconds, max_bytes = _limits(max_seconds, max_bytes)
    size = len(data)
    if not size:
        raise InvalidAudio("the file is empty")
    if size > max_bytes:
        raise InvalidAudio(f"the file is too big: {_mb(size)}, the limit is {_mb(max_bytes)}")
    kind = filetype.guess(data)
    if kind is None or kind.mime not in _FORMATS:
        found = f" ({kind.mime})" if kind is not None else ""
        raise InvalidAudio(f"not an audio file{found}; accepted: MP3, WAV, OGG/Opus, M4A, FLAC, WebM/MKA")
    mime, extension, read_length = _FORMATS[kind.mime]
    duration = read_length(data)
    if not duration > 0:
        raise InvalidAudio("the recording has zero duration")
    if duration > max_seconds:
        raise InvalidAudio(
            f"the recording is too long: {duration / 60:.1f} min, the limit is {max_seconds / 60:.0f} min"
        )
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if (mime == "audio/mp4" and suffix in {"mp4", "m4a"}) or (
        kind.mime == "video/x-matroska" and suffix in {"mkv", "mka"}
    ):
        extension = suffix
    return AudioInfo(mime=mime, extension=extension, duration_seconds=round(duration, 3), size_bytes=size)


# -- download ------------------------------------------------------------------------------------


def _too_big(size: int, limit: int) -> InvalidAudio:
    return InvalidAudio(f"the recording is too big: over {_mb(size)}, the limit is {_mb(limit)}")


def download_audio(
    url: str,
    *,
    max_bytes: int | None = None,
    proxy: str | None = None,
    timeout: float | None = None,
    policy: HttpPolicy | None = None,
    allow_private: bool | None = None,
) -> bytes:
    """Fetch a recording, refusing it as soon as it exceeds ``max_bytes``.

    Recording URLs come from users and CRMs, so every request (redirects included) must go to a
    public address unless ``allow_private`` (default: settings.RECORDING_URL_ALLOW_PRIVATE, on only
    in development and tests): no fetching of internal
    services (SSRF). With a proxy the proxy resolves names, so only literal addresses are checked.

    The declared ``Content-Length`` is checked before reading; the body is then streamed and the
    connection dropped the moment the count passes the limit (a lying or absent length cannot make
    us buffer a huge file). ``proxy`` is e.g. ``socks5://user:pass@host:1080`` or
    ``http://host:3128``. Raises :class:`InvalidAudio` for oversize, :class:`medai.http.HttpError`
    subclasses for HTTP and network failures.
    """
    _, limit = _limits(0, max_bytes)
    if policy is None:
        policy = HttpPolicy.default(**({"timeout": timeout} if timeout else {}))
    try:
        client = build_client(policy=policy, proxy=proxy)
    except ValueError as exc:  # never echo the proxy URL: it may hold a password
        raise PermanentHttpError(f"{DOWNLOAD_PROVIDER}: invalid proxy URL ({type(exc).__name__})") from exc
    if allow_private is None:
        from django.conf import settings

        allow_private = settings.RECORDING_URL_ALLOW_PRIVATE
    if not allow_private:
        client.event_hooks["request"].append(lambda request: ensure_public_host(request.url.host, resolve=not proxy))
    with client:
        try:
            with client.stream("GET", url) as response:
                if not response.is_success:
                    _read_error_body(response)
                    raise_for_status(response, provider=DOWNLOAD_PROVIDER)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_big(int(declared), limit)
                chunks, total = [], 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > limit:
                        raise _too_big(total, limit)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc, provider=DOWNLOAD_PROVIDER) from exc
    return b"".join(chunks)


def ensure_public_host(host: str, *, resolve: bool = True) -> None:
    """Raise PermanentHttpError if ``host`` is (or resolves to) a loopback, private or reserved address."""
    import ipaddress
    import socket

    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        if not resolve:
            return
        try:
            infos = socket.getaddrinfo(host, None)
        except socket.gaierror as exc:
            raise TemporaryHttpError(f"{DOWNLOAD_PROVIDER}: cannot resolve the recording host") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise PermanentHttpError(
                f"{DOWNLOAD_PROVIDER}: recording URL points to a non-public address; refused"
            )


def _read_error_body(response: httpx.Response, limit: int = 64 * 1024) -> None:
    """Load a small error body so the raised error can quote it; skip big ones."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= limit:
        response.read()

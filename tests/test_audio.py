"""Audio validation with real, tiny files built in the test (no fixtures on disk, no network)."""

from __future__ import annotations

import inspect
import io
import random
import struct
import threading
import time
import wave

import pytest

from medai.audio import AudioInfo, InvalidAudio, download_audio, probe_audio
from medai.http import HttpPolicy, PermanentHttpError, TemporaryHttpError
from tests.fakes.base import FakeServer, Response

# -- tiny real files ----------------------------------------------------------------------------


def make_wav(seconds: float, *, rate: int = 8000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(rate * seconds) * channels)
    return buffer.getvalue()


def make_gsm_wav(blocks: int) -> bytes:
    """GSM 6.10 in WAV, as telephony writes it: 65-byte blocks of 320 samples at 8 kHz."""
    fmt = struct.pack("<HHIIHHHH", 0x31, 1, 8000, 1625, 65, 0, 2, 320)
    data = bytes(65 * blocks)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_mp3(frames: int) -> bytes:
    """MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames of 1152 samples (silence)."""
    return (bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)) * frames


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(payload: bytes, *, granule: int, sequence: int, flags: int) -> bytes:
    lacing = bytes([255] * (len(payload) // 255) + [len(payload) % 255])
    header = (
        b"OggS" + struct.pack("<BBqIII", 0, flags, granule, 0x4D454441, sequence, 0) + bytes([len(lacing)]) + lacing
    )
    page = header + payload
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def make_ogg_opus(seconds: float, *, pre_skip: int = 312) -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 8000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    audio = bytes([0xF8, 0xFF, 0xFE])  # one tiny Opus packet; only the granule position matters here
    return (
        _ogg_page(head, granule=0, sequence=0, flags=0x02)
        + _ogg_page(tags, granule=0, sequence=1, flags=0)
        + _ogg_page(audio, granule=int(48000 * seconds) + pre_skip, sequence=2, flags=0x04)
    )


def make_flac(seconds: float, *, rate: int = 16000) -> bytes:
    samples = int(rate * seconds)
    bits = (rate << 44) | (0 << 41) | (15 << 36) | samples  # rate(20) channels-1(3) bps-1(5) samples(36)
    info = struct.pack(">HH", 4096, 4096) + (0).to_bytes(3, "big") * 2 + bits.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def _ebml(element_id: int, payload: bytes, *, unknown_size: bool = False) -> bytes:
    ident = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    if unknown_size:
        size = b"\x01\xff\xff\xff\xff\xff\xff\xff"
    elif len(payload) < 127:
        size = bytes([0x80 | len(payload)])
    else:
        size = (0x10000000 | len(payload)).to_bytes(4, "big")
    return ident + size + payload


def make_matroska(
    *, doctype: bytes = b"webm", duration_ms: float | None = 3500.0, block_ms: int = 0, track_type: int = 2
) -> bytes:
    header = _ebml(0x1A45DFA3, _ebml(0x4282, doctype))
    info = _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
    if duration_ms is not None:
        info += _ebml(0x4489, struct.pack(">d", duration_ms))
    tracks = _ebml(0x1654AE6B, _ebml(0xAE, _ebml(0xD7, b"\x01") + _ebml(0x83, bytes([track_type]))))
    clusters = b""
    for start in (0, 1000):  # two clusters, like MediaRecorder writes them (unknown size)
        blocks = b"".join(
            _ebml(0xA3, b"\x81" + struct.pack(">h", rel) + b"\x80" + bytes(8)) for rel in range(0, block_ms + 1, 20)
        )
        clusters += _ebml(0x1F43B675, _ebml(0xE7, start.to_bytes(2, "big")) + blocks, unknown_size=True)
    return header + _ebml(0x18538067, _ebml(0x1549A966, info) + tracks + clusters, unknown_size=True)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def make_mp4(seconds: float, *, handler: bytes = b"soun", brand: bytes = b"M4A ") -> bytes:
    """ftyp + moov/trak/mdia with mdhd (timescale 8000) and hdlr; enough for the container checks."""
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"isommp42")
    mvhd = _box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, int(seconds * 1000)) + bytes(80))
    mdhd = _box(b"mdhd", bytes(4) + bytes(8) + struct.pack(">II", 8000, int(seconds * 8000)) + bytes(4))
    hdlr = _box(b"hdlr", bytes(4) + bytes(4) + handler + bytes(12) + b"handler\x00")
    moov = _box(b"moov", mvhd + _box(b"trak", _box(b"mdia", mdhd + hdlr)))
    return ftyp + moov + _box(b"mdat", bytes(256))


# -- probe_audio: accepted -----------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "rate", "channels"), [(2.5, 8000, 1), (1.25, 44100, 2)])
def test_wav_is_accepted_with_its_duration(seconds, rate, channels):
    data = make_wav(seconds, rate=rate, channels=channels)
    info = probe_audio(data, filename="79161234567.wav", max_seconds=60, max_bytes=10**7)
    assert info == AudioInfo(mime="audio/wav", extension="wav", duration_seconds=seconds, size_bytes=len(data))


def test_gsm_wav_duration_uses_the_byte_rate():
    # 250 blocks × 320 samples / 8000 Hz = 10 s (dividing by the block size would say 2 s).
    assert probe_audio(make_gsm_wav(250), max_seconds=60, max_bytes=10**7).duration_seconds == 10.0


def test_truncated_wav_counts_only_the_bytes_present():
    data = make_wav(4.0)[: 44 + 16000]  # header says 4 s, 1 s of samples arrived
    assert probe_audio(data, max_seconds=60, max_bytes=10**7).duration_seconds == 1.0


def test_mp3_is_accepted_with_its_duration():
    info = probe_audio(make_mp3(200), max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.extension) == ("audio/mpeg", "mp3")
    assert info.duration_seconds == pytest.approx(200 * 1152 / 44100, abs=0.05)


def test_ogg_opus_is_accepted_with_its_duration():
    info = probe_audio(make_ogg_opus(7.5), max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.extension, info.duration_seconds) == ("audio/ogg", "ogg", 7.5)


def test_flac_is_accepted_with_its_duration():
    info = probe_audio(make_flac(3.0), max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.duration_seconds) == ("audio/flac", 3.0)


@pytest.mark.parametrize(("brand", "name", "extension"), [(b"M4A ", "call.m4a", "m4a"), (b"mp42", "call.mp4", "mp4")])
def test_m4a_and_mp4_audio_are_accepted(brand, name, extension):
    info = probe_audio(make_mp4(4.0, brand=brand), filename=name, max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.extension, info.duration_seconds) == ("audio/mp4", extension, 4.0)


def test_webm_duration_from_the_segment_info():
    info = probe_audio(make_matroska(), max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.extension, info.duration_seconds) == ("audio/webm", "webm", 3.5)


def test_webm_without_duration_uses_the_last_block():
    # MediaRecorder output: no Duration element; last block at cluster 1000 ms + 600 ms.
    info = probe_audio(make_matroska(duration_ms=None, block_ms=600), max_seconds=60, max_bytes=10**7)
    assert info.duration_seconds == 1.6


def test_truncated_webm_counts_only_the_blocks_present():
    data = make_matroska(block_ms=600)[:-5]  # cut inside the last block (at 1600 ms)
    assert probe_audio(data, max_seconds=60, max_bytes=10**7).duration_seconds == 1.58


def test_matroska_audio_keeps_the_extension_from_the_name():
    info = probe_audio(make_matroska(doctype=b"matroska"), filename="call.mka", max_seconds=60, max_bytes=10**7)
    assert (info.mime, info.extension) == ("audio/x-matroska", "mka")


def test_limits_default_to_settings(settings):
    settings.MAX_AUDIO_SECONDS = 2
    with pytest.raises(InvalidAudio, match="too long"):
        probe_audio(make_wav(2.5))
    settings.MAX_AUDIO_SECONDS = 10
    settings.MAX_AUDIO_BYTES = 1024
    with pytest.raises(InvalidAudio, match="too big"):
        probe_audio(make_wav(2.5))


# -- probe_audio: rejected -----------------------------------------------------------------------


def _random_bytes() -> bytes:
    data = random.Random(42).randbytes(4096)
    assert data[:2] != b"\xff\xfb" and data[:4] not in (b"RIFF", b"OggS", b"fLaC")
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (_random_bytes(), "not an audio file"),
        ("Привет, это не аудио".encode(), "not an audio file"),
        (b"<html><body>Recording not found</body></html>", "not an audio file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), r"not an audio file \(image/png\)"),
        (make_wav(0), "zero duration"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "corrupt"),
        (make_wav(1)[:40], "corrupt"),
        (bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(range(256)) * 4, "corrupt"),
        (make_ogg_opus(0), "zero duration"),
        (b"OggS" + bytes(60), "corrupt"),
        (make_matroska(track_type=1), "no audio track"),
        (make_mp4(3.0, handler=b"vide", brand=b"mp42"), "no audio track"),
        (make_matroska()[:60], "corrupt"),
    ],
    ids=[
        "empty",
        "random",
        "text",
        "html",
        "png",
        "zero-wav",
        "corrupt-wav",
        "truncated-header",
        "fake-mp3-sync",
        "zero-opus",
        "corrupt-ogg",
        "video-only-webm",
        "video-only-mp4",
        "truncated-webm",
    ],
)
def test_bad_input_is_rejected_with_a_readable_reason(data, reason):
    with pytest.raises(InvalidAudio, match=reason) as caught:
        probe_audio(data, filename="+7 916 123-45-67.mp3", max_seconds=60, max_bytes=10**7)
    assert isinstance(caught.value, ValueError)
    assert "916" not in caught.value.reason  # the file name (often a phone number) is never echoed


def test_too_long_is_rejected():
    with pytest.raises(InvalidAudio, match="too long"):
        probe_audio(make_wav(2.5), max_seconds=2, max_bytes=10**7)


def test_too_big_is_rejected_before_parsing():
    with pytest.raises(InvalidAudio, match="too big"):
        probe_audio(make_wav(1.0), max_seconds=60, max_bytes=1024)


# -- download_audio ------------------------------------------------------------------------------

FAST = HttpPolicy(timeout=2.0, retries=2, backoff_base=0.001)


class Recordings(FakeServer):
    """Serves recordings; a generator body is sent chunked without Content-Length."""

    def __init__(self) -> None:
        self.chunks_sent = 0
        self.stream_done = threading.Event()
        super().__init__()

    def setup_routes(self) -> None:
        self.route("GET", "/rec.wav", lambda r: Response(200, make_wav(1.0), {"Content-Type": "audio/wav"}))
        self.route("GET", "/big.mp3", lambda r: Response(200, bytes(2 * 1024 * 1024)))
        self.route("GET", "/endless.mp3", lambda r: Response(200, self._endless()))

    def _endless(self):
        for _ in range(1000):  # 64 MB if nobody stops reading
            self.chunks_sent += 1
            yield bytes(64 * 1024)

    def _send(self, handler, response: Response) -> None:
        if not inspect.isgenerator(response.body):
            return FakeServer._send(handler, response)
        try:
            handler.send_response(response.status)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in response.body:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.stream_done.set()


@pytest.fixture
def recordings():
    with Recordings() as server:
        yield server


def test_download_returns_the_body(recordings):
    data = download_audio(f"{recordings.url}/rec.wav", max_bytes=10**6, policy=FAST)
    assert probe_audio(data, max_seconds=60, max_bytes=10**6).duration_seconds == 1.0


def test_download_refuses_a_declared_oversize_body(recordings):
    with pytest.raises(InvalidAudio, match=r"too big: over 2\.0 MB"):
        download_audio(f"{recordings.url}/big.mp3", max_bytes=1024 * 1024, policy=FAST)


def test_download_stops_streaming_as_soon_as_the_limit_is_crossed(recordings):
    started = time.monotonic()
    with pytest.raises(InvalidAudio, match="too big"):
        download_audio(f"{recordings.url}/endless.mp3", max_bytes=256 * 1024, policy=FAST)
    assert recordings.stream_done.wait(5)
    assert recordings.chunks_sent < 500, "the client kept reading after the limit"
    assert time.monotonic() - started < 5


def test_download_not_found_is_permanent(recordings):
    with pytest.raises(PermanentHttpError) as caught:
        download_audio(f"{recordings.url}/missing.wav?token=secret123", max_bytes=10**6, policy=FAST)
    assert caught.value.status == 404
    assert "secret123" not in str(caught.value)


def test_download_retries_server_errors_then_succeeds(recordings):
    recordings.fail_next("GET", "/rec.wav", status=503, times=2)
    assert download_audio(f"{recordings.url}/rec.wav", max_bytes=10**6, policy=FAST)
    assert len(recordings.requests_to("GET", "/rec.wav")) == 3


def test_download_persistent_server_error_is_temporary(recordings):
    recordings.fail_next("GET", "/rec.wav", status=502, times=5)
    with pytest.raises(TemporaryHttpError):
        download_audio(f"{recordings.url}/rec.wav", max_bytes=10**6, policy=FAST)


def test_download_timeout_is_temporary(recordings):
    recordings.timeout_sleep = 1.0
    recordings.fail_next("GET", "/rec.wav", kind="timeout", times=3)
    with pytest.raises(TemporaryHttpError):
        download_audio(f"{recordings.url}/rec.wav", max_bytes=10**6, policy=HttpPolicy(timeout=0.2, retries=0))


def test_download_goes_through_an_http_proxy(recordings):
    # The fake answers as a forward proxy would: the absolute URL names a host that does not exist.
    data = download_audio("http://recordings.invalid/rec.wav", max_bytes=10**6, proxy=recordings.url, policy=FAST)
    assert data[:4] == b"RIFF"
    assert recordings.requests[-1].headers["host"] == "recordings.invalid"


def test_download_through_an_unreachable_socks_proxy_is_temporary_and_hides_the_password():
    with pytest.raises(TemporaryHttpError) as caught:
        download_audio(
            "http://recordings.invalid/rec.wav",
            max_bytes=10**6,
            proxy="socks5://user:hunter2@127.0.0.1:9",
            policy=HttpPolicy(timeout=1.0, retries=0),
        )
    assert "hunter2" not in str(caught.value)


def test_download_with_a_bad_proxy_url_is_permanent():
    with pytest.raises(PermanentHttpError, match="invalid proxy"):
        download_audio("http://x.invalid/a.wav", max_bytes=10, proxy="ftp://user:hunter2@host:21", policy=FAST)

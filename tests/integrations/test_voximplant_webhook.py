"""HMAC signing of scenario → MedAI requests and strict parsing of the call result."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from medai.integrations.voximplant_webhook import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    OutboundResult,
    OutboundStatus,
    Speaker,
    TranscriptSegment,
    parse_result,
    result_to_json,
    sign,
    signed_headers,
    verify,
)

SECRET = b"4f1c2b0e9d8a7f6e5d4c3b2a19080706"
NOW = 1_718_000_000
NONCE = "5c9a4e1e-7f7b-4f0e-9a57-0d3f4c2b1a90"


class Nonces:
    def __init__(self) -> None:
        self.recorded: list[str] = []

    def __call__(self, nonce: str) -> bool:
        if nonce in self.recorded:
            return True
        self.recorded.append(nonce)
        return False


def result_body(**overrides) -> dict:
    body = {
        "call_token": "tok_3Jr8x0q5M2aa",
        "session_id": 4202753936,
        "status": "completed",
        "duration_seconds": 48.2,
        "transcript": [
            {"speaker": "ai", "start": 0.4, "end": 5.1, "text": "Здравствуйте! Это клиника «Улыбка»."},
            {"speaker": "customer", "start": 5.8, "end": 7.0, "text": "Да, слушаю."},
        ],
        "record_url": "https://storage.voximplant.com/records/1.mp3",
        "error": None,
    }
    body.update(overrides)
    return body


def encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=True).encode()


# -- signing ----------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_documented_string():
    body = b'{"a":1}'
    expected = hmac.new(SECRET, f"v1:{NOW}:{NONCE}:".encode() + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, body, nonce=NONCE) == f"v1={expected}"


def test_valid_request_passes_and_records_the_nonce():
    body = encode(result_body())
    seen = Nonces()
    verify(SECRET, signed_headers(SECRET, body, timestamp=NOW, nonce=NONCE), body, now=NOW + 5, seen=seen)
    assert seen.recorded == [NONCE]


def test_header_lookup_is_case_insensitive_and_uppercase_hex_is_accepted():
    body = b"{}"
    headers = {k.lower(): v for k, v in signed_headers(SECRET, body, timestamp=NOW, nonce=NONCE).items()}
    headers["x-medai-signature"] = headers["x-medai-signature"].upper().replace("V1=", "v1=")
    verify(SECRET, headers, body, now=NOW, seen=Nonces())


def test_a_get_signs_the_path_so_it_cannot_be_moved_to_another_token():
    headers = signed_headers(SECRET, b"/api/outbound/scenario/tok-a/", timestamp=NOW, nonce=NONCE)
    verify(SECRET, headers, b"/api/outbound/scenario/tok-a/", now=NOW, seen=Nonces())
    with pytest.raises(InvalidSignature, match="bad signature"):
        verify(SECRET, headers, b"/api/outbound/scenario/tok-b/", now=NOW, seen=Nonces())


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_missing_headers(missing):
    headers = signed_headers(SECRET, b"{}", timestamp=NOW, nonce=NONCE)
    del headers[missing]
    with pytest.raises(InvalidSignature, match=f"missing header.*{missing}"):
        verify(SECRET, headers, b"{}", now=NOW, seen=Nonces())


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        (TIMESTAMP_HEADER, "17e8", "malformed timestamp"),
        (TIMESTAMP_HEADER, "-1718000000", "malformed timestamp"),
        (NONCE_HEADER, "short", "malformed nonce"),
        (NONCE_HEADER, "has spaces in it and more", "malformed nonce"),
        (SIGNATURE_HEADER, "sha256=" + "0" * 64, "malformed signature"),
        (SIGNATURE_HEADER, "v1=xyz", "malformed signature"),
        (SIGNATURE_HEADER, "v1=" + "0" * 63, "malformed signature"),
    ],
)
def test_malformed_headers(header, value, reason):
    headers = signed_headers(SECRET, b"{}", timestamp=NOW, nonce=NONCE)
    headers[header] = value
    with pytest.raises(InvalidSignature, match=reason):
        verify(SECRET, headers, b"{}", now=NOW, seen=Nonces())


def test_bad_signature_wrong_secret_and_tampered_body():
    body = encode(result_body())
    headers = signed_headers(SECRET, body, timestamp=NOW, nonce=NONCE)
    seen = Nonces()
    with pytest.raises(InvalidSignature, match="bad signature"):
        verify(b"another-secret", headers, body, now=NOW, seen=seen)
    with pytest.raises(InvalidSignature, match="bad signature"):
        verify(SECRET, headers, body.replace(b"completed", b"no_answer"), now=NOW, seen=seen)
    forged = dict(headers, **{TIMESTAMP_HEADER: str(NOW + 1)})  # re-dated without re-signing
    with pytest.raises(InvalidSignature, match="bad signature"):
        verify(SECRET, forged, body, now=NOW, seen=seen)
    assert seen.recorded == []  # failed attempts never reach the nonce store


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_stale_or_future_timestamps_are_refused(skew):
    headers = signed_headers(SECRET, b"{}", timestamp=NOW, nonce=NONCE)
    with pytest.raises(InvalidSignature, match="stale"):
        verify(SECRET, headers, b"{}", now=NOW + skew, seen=Nonces())


def test_tolerance_edge_is_accepted():
    headers = signed_headers(SECRET, b"{}", timestamp=NOW, nonce=NONCE)
    verify(SECRET, headers, b"{}", now=NOW + 300, seen=Nonces())
    verify(SECRET, headers, b"{}", now=NOW + 60, seen=Nonces(), tolerance=60)


def test_replay_is_refused():
    body = encode(result_body())
    headers = signed_headers(SECRET, body, timestamp=NOW, nonce=NONCE)
    seen = Nonces()
    verify(SECRET, headers, body, now=NOW, seen=seen)
    with pytest.raises(InvalidSignature, match="replayed"):
        verify(SECRET, headers, body, now=NOW + 1, seen=seen)


def test_secret_rotation_accepts_old_and_new():
    old, new = b"old-secret-0000000000", b"new-secret-1111111111"
    headers = signed_headers(old, b"{}", timestamp=NOW, nonce=NONCE)
    verify([new, old], headers, b"{}", now=NOW, seen=Nonces())


def test_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError):
        verify(b"", {}, b"", now=NOW, seen=Nonces())
    with pytest.raises(ValueError):
        sign(b"", NOW, b"", nonce=NONCE)


# -- the result payload -----------------------------------------------------------------------------


def test_parse_a_completed_call():
    result = parse_result(encode(result_body()))
    assert result.status == OutboundStatus.COMPLETED and result.answered
    assert result.session_id == 4202753936
    assert result.duration_seconds == 48.2
    assert result.transcript[0] == TranscriptSegment(Speaker.AI, 0.4, 5.1, "Здравствуйте! Это клиника «Улыбка».")
    assert result.transcript[1].speaker == Speaker.CUSTOMER
    assert result.error is None and result.sip_code is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "no_answer", "duration_seconds": 0, "transcript": None, "record_url": None, "sip_code": 480},
        {"status": "busy", "duration_seconds": 0, "transcript": [], "record_url": None, "sip_code": 486},
        {"status": "voicemail", "duration_seconds": 9, "transcript": None},
        {"status": "failed", "duration_seconds": 0, "transcript": None, "record_url": None, "error": "invalid_number"},
    ],
)
def test_parse_other_outcomes(overrides):
    assert parse_result(encode(result_body(**overrides))).status == overrides["status"]


def test_round_trip_through_the_wire_form():
    result = OutboundResult(
        call_token="tok_3Jr8x0q5M2aa",
        session_id=7,
        status=OutboundStatus.COMPLETED,
        duration_seconds=12.0,
        transcript=(TranscriptSegment(Speaker.CUSTOMER, 1.0, 2.5, "Алло?"),),
        record_url=None,
        error=None,
        sip_code=200,
    )
    wire = result_to_json(result)
    assert wire.isascii()
    assert parse_result(wire) == result


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (encode({k: v for k, v in result_body().items() if k != "status"}), "missing field.*status"),
        (encode(result_body(extra=1)), "unknown field.*extra"),
        (encode(result_body(call_token="short")), "call_token"),
        (encode(result_body(session_id="42")), "session_id"),
        (encode(result_body(session_id=True)), "session_id"),
        (encode(result_body(status="answered")), "status must be one of"),
        (encode(result_body(duration_seconds=-1)), "duration_seconds must not be negative"),
        (encode(result_body(duration_seconds="12")), "duration_seconds must be a finite number"),
        (encode(result_body(transcript={"a": 1})), "transcript must be a list"),
        (encode(result_body(transcript=[{"speaker": "bot", "start": 0, "end": 1, "text": "x"}])), "speaker"),
        (encode(result_body(transcript=[{"speaker": "ai", "start": 2, "end": 1, "text": "x"}])), "before start"),
        (encode(result_body(transcript=[{"speaker": "ai", "start": 0, "end": 1, "text": " "}])), "text"),
        (encode(result_body(transcript=[{"speaker": "ai", "start": 0, "end": 1}])), "text"),
        (encode(result_body(transcript=[{"speaker": "ai", "start": 0, "end": 1, "text": "x", "x": 1}])), "unknown"),
        (encode(result_body(record_url="javascript:alert(1)")), "record_url"),
        (encode(result_body(error=5)), "error must be a string"),
        (encode(result_body(sip_code=99)), "sip_code"),
        (encode(result_body(status="failed", error=None)), "requires an error"),
        (encode(result_body(status="busy")), "cannot carry a transcript"),
        (b"{" + b" " * 1_000_001 + b"}", "larger than"),
    ],
)
def test_malformed_payloads_are_refused_with_a_readable_reason(body, message):
    with pytest.raises(ValueError, match=message):
        parse_result(body)


def test_nan_is_refused():
    with pytest.raises(ValueError, match="finite"):
        parse_result(
            b'{"call_token":"tok_3Jr8x0q5M2aa","session_id":1,"status":"completed",'
            b'"duration_seconds":NaN,"transcript":null,"record_url":null,"error":null}'
        )

"""Voximplant Management API client against the fake: auth, StartScenarios, GetCallHistory, errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import jwt
import pytest

from medai.http import HttpPolicy, PermanentHttpError, ProviderResponseError, TemporaryHttpError
from medai.integrations.voximplant import (
    CUSTOM_DATA_MAX_BYTES,
    ServiceAccountAuth,
    VoximplantClient,
    VoximplantPermanentError,
    VoximplantTemporaryError,
    compact_custom_data,
    encode_custom_data,
    load_service_account,
)
from medai.integrations.voximplant_webhook import OutboundStatus, parse_result, verify
from tests.fakes.base import FakeRequest, FakeServer, Response
from tests.fakes.voximplant import API_PREFIX, FakeVoximplant, Scripted, make_rsa_key

RULE = 3003
START = f"{API_PREFIX}/StartScenarios"
HISTORY = f"{API_PREFIX}/GetCallHistory"
CUSTOM = {"t": "tok_3Jr8x0q5M2", "u": "https://medai.example.com"}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return make_rsa_key()


@pytest.fixture
def fake(keys):
    with FakeVoximplant(public_key=keys[1], rules=(RULE,)) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(fake, keys, sleeps):
    """A client whose chokepoint records its sleeps instead of sleeping."""
    clients = []

    def build(*, auth: str = "api_key", retries: int = 2, **kwargs):
        policy = HttpPolicy(timeout=5, connect_timeout=5, retries=retries, backoff_base=0.01)
        if auth == "api_key":
            kwargs.setdefault("api_key", FakeVoximplant.api_key)
        else:
            kwargs.setdefault(
                "service_account",
                {"account_id": fake.account_id, "key_id": fake.key_id, "private_key": keys[0]},
            )
        client = VoximplantClient(fake.account_id, base_url=fake.api_url, policy=policy, **kwargs)
        client._http._transport.sleep = sleeps.append
        client._start_http._transport.sleep = sleeps.append
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def form(request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}


# -- StartScenarios ---------------------------------------------------------------------------------


def test_start_scenario_with_api_key_sends_the_documented_form(fake, make):
    result = make().start_scenario(RULE, CUSTOM)

    [request] = fake.requests_to("POST", START)
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert request.query == {}  # credentials travel in the body, never in the URL
    sent = form(request)
    assert sent["rule_id"] == str(RULE)
    assert json.loads(sent["script_custom_data"]) == CUSTOM
    assert sent["account_id"] == str(fake.account_id)
    assert sent["api_key"] == fake.api_key
    assert "authorization" not in request.headers

    [session] = fake.sessions
    assert result.call_session_history_id == session.session_id
    assert result.media_session_access_url.startswith("http://")
    assert result.media_session_access_secure_url.startswith("https://")


def test_start_scenario_with_service_account_jwt(fake, make, keys):
    make(auth="jwt").start_scenario(RULE, CUSTOM)

    [request] = fake.requests_to("POST", START)
    assert "api_key" not in form(request)
    token = request.headers["authorization"].removeprefix("Bearer ")
    # A standard RS256 JWS: any library verifies it with the public key.
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, keys[1], algorithms=["RS256"])
    assert header["kid"] == fake.key_id and header["alg"] == "RS256"
    assert claims["iss"] == fake.account_id
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert fake.auth_failures == 0


def test_jwt_signed_with_another_key_is_rejected_as_permanent(fake, make):
    other_private, _ = make_rsa_key()
    client = make(
        auth="jwt",
        service_account={"account_id": fake.account_id, "key_id": fake.key_id, "private_key": other_private},
    )
    with pytest.raises(VoximplantPermanentError) as caught:
        client.start_scenario(RULE, CUSTOM)
    assert caught.value.code == 100
    assert caught.value.status == 200  # Voximplant reports errors with HTTP 200
    assert fake.sessions == []


def test_wrong_api_key_is_an_authorization_error(fake, make):
    with pytest.raises(VoximplantPermanentError, match="error 100: Authorization failed"):
        make(api_key="nope").start_scenario(RULE, CUSTOM)


def test_service_account_token_is_cached_and_renewed_before_expiry(keys):
    now = [1_700_000_000.0]
    auth = ServiceAccountAuth(42, key_id="k", private_key=keys[0], lifetime=120, clock=lambda: now[0])
    first = auth.token()
    now[0] += 60
    assert auth.token() == first
    now[0] += 40  # within 30 s of expiry
    second = auth.token()
    assert second != first
    assert jwt.decode(second, keys[1], algorithms=["RS256"], options={"verify_exp": False})["iat"] == int(now[0])


def test_service_account_validation(keys, tmp_path):
    with pytest.raises(ValueError, match="lifetime"):
        ServiceAccountAuth(1, key_id="k", private_key=keys[0], lifetime=3601)
    with pytest.raises(ValueError, match="PEM"):
        ServiceAccountAuth(1, key_id="k", private_key="not a key")
    with pytest.raises(ValueError, match="exactly one"):
        VoximplantClient(1, api_key="a", service_account={"key_id": "k", "private_key": keys[0]})
    with pytest.raises(ValueError, match="another Voximplant account"):
        VoximplantClient(1, service_account={"account_id": 2, "key_id": "k", "private_key": keys[0]})
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"account_id": 1, "key_id": "k"}))
    with pytest.raises(ValueError, match="private_key"):
        load_service_account(str(path))


@pytest.mark.parametrize(
    ("code", "msg", "error_class"),
    [
        (2, "Internal error", VoximplantTemporaryError),
        (4, "DB error", VoximplantTemporaryError),
        (15, "Media server error", VoximplantTemporaryError),
        (101, "Invalid arguments", VoximplantPermanentError),
        (104, "Forbidden command", VoximplantPermanentError),
    ],
)
def test_http_200_error_objects_are_classified(fake, make, code, msg, error_class):
    fake.fail_api_next(code, msg, method="StartScenarios")
    with pytest.raises(error_class) as caught:
        make().start_scenario(RULE, CUSTOM)
    assert caught.value.code == code
    assert isinstance(caught.value, TemporaryHttpError if code < 100 else PermanentHttpError)
    assert msg in str(caught.value)


def test_unknown_rule_is_a_permanent_error(fake, make):
    with pytest.raises(VoximplantPermanentError, match="rule 999 not found"):
        make().start_scenario(999, CUSTOM)


def test_custom_data_over_the_documented_limit_is_refused_before_sending(fake, make):
    big = {"t": "x" * 10, "u": "https://medai.example.com", "prompt": "Вы — вежливый ассистент клиники. " * 10}
    with pytest.raises(ValueError, match="200"):
        make().start_scenario(RULE, big)
    assert fake.requests == []


def test_compact_custom_data_fits_and_is_ascii():
    data = compact_custom_data("a" * 43, "https://medai.clinic-example.ru/")
    encoded = encode_custom_data(data)
    assert json.loads(encoded) == {"t": "a" * 43, "u": "https://medai.clinic-example.ru"}
    assert len(encoded.encode()) <= CUSTOM_DATA_MAX_BYTES
    assert encoded.isascii()
    with pytest.raises(ValueError):
        compact_custom_data("", "https://x")
    with pytest.raises(ValueError):
        compact_custom_data("t", "ftp://x")


def test_rule_id_is_validated():
    client = VoximplantClient(1, api_key="k", policy=HttpPolicy())
    with pytest.raises(ValueError):
        client.start_scenario(0, CUSTOM)
    client.close()


def test_start_is_attempted_once_on_429_so_a_patient_is_never_dialled_twice(fake, make, sleeps):
    fake.fail_next("POST", START, status=429, headers={"Retry-After": "2"})
    with pytest.raises(TemporaryHttpError) as caught:
        make().start_scenario(RULE, CUSTOM)
    assert caught.value.status == 429
    assert caught.value.retry_after == 2
    assert len(fake.requests_to("POST", START)) == 1
    assert sleeps == []


def test_start_5xx_is_temporary_and_not_retried_blindly(fake, make):
    fake.fail_next("POST", START, status=502)
    with pytest.raises(TemporaryHttpError):
        make().start_scenario(RULE, CUSTOM)
    assert len(fake.requests_to("POST", START)) == 1


def test_malformed_start_answer_is_a_provider_error(fake, make):
    fake.fail_next("POST", START, kind="malformed")
    with pytest.raises(ProviderResponseError):
        make().start_scenario(RULE, CUSTOM)


# -- GetCallHistory ---------------------------------------------------------------------------------


def start_calls(client, n: int) -> list[int]:
    return [
        client.start_scenario(RULE, {"t": f"token-{i:04d}", "u": "https://medai.example.com"}).call_session_history_id
        for i in range(n)
    ]


def test_history_follows_every_page(fake, make):
    client = make()
    fake.outcomes.extend([Scripted("completed", 61), Scripted("busy"), Scripted("no_answer")])
    ids = start_calls(client, 5)
    now = datetime.now(UTC)

    sessions = client.call_history(from_date=now - timedelta(hours=1), to_date=now + timedelta(minutes=1), page_size=2)

    assert [s.session_id for s in sessions] == ids
    pages = [form(r) for r in fake.requests_to("POST", HISTORY)]
    assert [p["offset"] for p in pages] == ["0", "2", "4"]
    first = pages[0]
    assert first["count"] == "2"
    assert first["with_calls"] == first["with_records"] == "true"
    assert first["timezone"] == "Etc/GMT"
    assert datetime.strptime(first["from_date"], "%Y-%m-%d %H:%M:%S")  # the documented format, UTC

    completed, busy = sessions[0], sessions[1]
    assert completed.record_url == f"{fake.url}/records/{ids[0]}.mp3"
    assert completed.custom_data == json.dumps({"t": "token-0000", "u": "https://medai.example.com"}).replace(" ", "")
    assert completed.finish_reason == "Normal termination"
    assert completed.calls[0].successful is True and completed.calls[0].duration == 61
    assert completed.start is not None and completed.start.tzinfo is UTC
    assert busy.record_url is None
    assert busy.calls[0].successful is False
    assert busy.calls[0].end_reason == {"code": 486, "description": "busy"}


def test_history_by_session_ids(fake, make):
    client = make()
    ids = start_calls(client, 4)
    now = datetime.now(UTC)

    sessions = client.call_history(
        from_date=now - timedelta(hours=1), to_date=now + timedelta(minutes=1), session_ids=[ids[3], ids[1]]
    )

    assert sorted(s.session_id for s in sessions) == sorted([ids[1], ids[3]])
    [request] = fake.requests_to("POST", HISTORY)
    assert form(request)["call_session_history_id"] == f"{ids[3]};{ids[1]}"
    assert client.call_history(from_date=now, to_date=now, session_ids=[]) == []


def test_history_by_custom_data_finds_an_already_started_call(fake, make):
    client = make()
    start_calls(client, 3)
    now = datetime.now(UTC)
    wanted = encode_custom_data({"t": "token-0001", "u": "https://medai.example.com"})

    [session] = client.call_history(
        from_date=now - timedelta(hours=1), to_date=now + timedelta(minutes=1), custom_data=wanted
    )
    assert session.custom_data == wanted


def test_history_429_and_5xx_go_through_the_chokepoint(fake, make, sleeps):
    client = make()
    start_calls(client, 1)
    fake.fail_next("POST", HISTORY, status=429, headers={"Retry-After": "3"})
    fake.fail_next("POST", HISTORY, status=503)
    now = datetime.now(UTC)

    sessions = client.call_history(from_date=now - timedelta(hours=1), to_date=now + timedelta(minutes=1))

    assert len(sessions) == 1
    assert len(fake.requests_to("POST", HISTORY)) == 3
    assert sleeps[0] == 3  # Retry-After honoured
    assert len(sleeps) == 2


def test_history_gives_up_after_bounded_retries(fake, make):
    fake.fail_next("POST", HISTORY, status=500, times=5)
    now = datetime.now(UTC)
    with pytest.raises(TemporaryHttpError):
        make(retries=2).call_history(from_date=now - timedelta(hours=1), to_date=now)
    assert len(fake.requests_to("POST", HISTORY)) == 3


def test_history_error_object_and_bad_shapes(fake, make):
    client = make()
    now = datetime.now(UTC)
    fake.fail_api_next(111, "Invalid date format", method="GetCallHistory")
    with pytest.raises(VoximplantPermanentError) as caught:
        client.call_history(from_date=now - timedelta(hours=1), to_date=now)
    assert caught.value.code == 111

    fake.fail_next("POST", HISTORY, status=200, body={"result": [{"duration": 3}], "total_count": 1})
    with pytest.raises(ProviderResponseError, match="call_session_history_id"):
        client.call_history(from_date=now - timedelta(hours=1), to_date=now)

    with pytest.raises(ValueError, match="timezone-aware"):
        client.call_history(from_date=datetime(2025, 1, 1), to_date=datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="after"):
        client.call_history(from_date=now, to_date=now - timedelta(seconds=1))


# -- simulation: scripted outcomes posted to our webhook ------------------------------------------------


class FakeMedAI(FakeServer):
    """Stands in for our Django webhook view: verifies, parses and acknowledges."""

    secret = b"0123456789abcdef0123456789abcdef"

    def __init__(self) -> None:
        self.results = []
        self.nonces: set[str] = set()
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", "/api/outbound/webhook/", self.webhook)

    def seen(self, nonce: str) -> bool:
        if nonce in self.nonces:
            return True
        self.nonces.add(nonce)
        return False

    def webhook(self, request: FakeRequest) -> Response:
        verify(self.secret, request.headers, request.body, now=time.time(), seen=self.seen)
        self.results.append(parse_result(request.body))
        return Response(200, {"ok": True})


def test_simulated_sessions_post_signed_results_to_the_callback(fake, make):
    with FakeMedAI() as medai:
        fake.webhook_secret = FakeMedAI.secret
        fake.outcomes.extend([Scripted("completed", 30), Scripted("busy"), Scripted("voicemail", 12)])
        client = make()
        ids = [
            client.start_scenario(RULE, compact_custom_data(f"call-token-{i}", medai.url)).call_session_history_id
            for i in range(3)
        ]

        assert fake.deliver_results() == [200, 200, 200]
        assert fake.deliver_results() == []  # acknowledged sessions are not sent again

    by_token = {r.call_token: r for r in medai.results}
    done = by_token["call-token-0"]
    assert done.status == OutboundStatus.COMPLETED and done.session_id == ids[0]
    assert done.transcript and done.transcript[0].speaker == "ai"
    assert done.record_url.endswith(f"/records/{ids[0]}.mp3")
    assert by_token["call-token-1"].status == OutboundStatus.BUSY
    assert by_token["call-token-1"].sip_code == 486 and by_token["call-token-1"].transcript is None
    assert by_token["call-token-2"].status == OutboundStatus.VOICEMAIL

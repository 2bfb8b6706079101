"""A fake Voximplant Management API (``/platform_api/<Method>``) plus a simulated outbound scenario.

Implements ``StartScenarios`` and ``GetCallHistory`` in the documented shapes: parameters from the
query string and/or an urlencoded body, JSON answers, and failures as **HTTP 200** with
``{"error": {"code": N, "msg": "..."}}``. Auth: ``Authorization: Bearer <jwt>`` verified against
``public_key`` (RS256, ``kid`` header = ``key_id``, ``iss`` = ``account_id``, ``exp`` ≤ ``iat`` + 3600,
not expired) or the ``account_id`` + ``api_key`` parameters. Anything else gets error 100.

Every started scenario becomes a call session with a scripted outcome::

    fake.outcomes.append(Scripted("busy"))                      # next call
    fake.default_outcome = Scripted("completed", duration=75)   # the rest

When the custom data is ``{"t": token, "u": base}`` (our scenario contract) the fake can play the
scenario's last step: POST the signed result to ``{u}/api/outbound/webhook/`` (or ``webhook_url``) —
call :meth:`deliver_results` (deterministic) or set ``auto_deliver`` (background thread).

``fail_api_next(code, msg)`` queues error objects; ``fail_next`` (base class) injects HTTP faults.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from medai.integrations.voximplant_webhook import (
    OutboundResult,
    OutboundStatus,
    Speaker,
    TranscriptSegment,
    result_to_json,
    signed_headers,
)
from tests.fakes.base import FakeRequest, FakeServer, Response

API_PREFIX = "/platform_api"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
WEBHOOK_PATH = "/api/outbound/webhook/"
HISTORY_DEFAULT_COUNT = 20
HISTORY_MAX_COUNT = 1000
CUSTOM_DATA_MAX_BYTES = 200

SIP_CODES = {"no_answer": 480, "busy": 486, "failed": 404}
FINISH_REASON = "Normal termination"


def make_rsa_key() -> tuple[str, str]:
    """(private PEM, public PEM) for a throwaway service account key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class Scripted:
    status: str = "completed"  # completed | no_answer | busy | voicemail | failed
    duration: int = 42
    transcript: list[tuple[str, str]] | None = None  # (speaker, text); default dialogue when completed
    error: str | None = None


@dataclass
class FakeSession:
    session_id: int
    rule_id: int
    custom_data: str
    start: datetime
    outcome: Scripted
    phone: str = "+79990000000"
    record_url: str | None = None
    delivered: bool = False
    deliveries: list[int] = field(default_factory=list)  # webhook HTTP statuses

    @property
    def token(self) -> str | None:
        try:
            data = json.loads(self.custom_data)
        except ValueError:
            return None
        return data.get("t") if isinstance(data, dict) else None

    @property
    def callback_base(self) -> str | None:
        try:
            data = json.loads(self.custom_data)
        except ValueError:
            return None
        return data.get("u") if isinstance(data, dict) else None


class FakeVoximplant(FakeServer):
    account_id = 1234567
    api_key = "fake-vox-api-key"
    key_id = "fake-key-id"

    def __init__(self, *, public_key: str | None = None, rules: tuple[int, ...] = (3003,)) -> None:
        self.public_key = public_key  # PEM; Bearer JWTs are verified against it
        self.rules = set(rules)
        self.outcomes: deque[Scripted] = deque()
        self.default_outcome = Scripted()
        self.sessions: list[FakeSession] = []
        self.api_errors: deque[tuple[str | None, int, str]] = deque()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.webhook_url: str | None = None  # overrides {u}/api/outbound/webhook/
        self.webhook_secret: bytes | None = None
        self.auto_deliver = False
        self.auth_failures = 0
        self._ids = itertools.count(4_202_753_936)
        self._call_ids = itertools.count(1_900_000_000)
        super().__init__()

    def setup_routes(self) -> None:
        for method in ("GET", "POST"):
            self.route(method, f"{API_PREFIX}/StartScenarios", self.start_scenarios)
            self.route(method, f"{API_PREFIX}/GetCallHistory", self.get_call_history)

    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    # -- fault injection ---------------------------------------------------------------------
    def fail_api_next(self, code: int, msg: str, *, method: str | None = None, times: int = 1) -> None:
        """Answer the next request(s) (to ``method`` or any) with an HTTP 200 error object."""
        for _ in range(times):
            self.api_errors.append((method, code, msg))

    # -- plumbing ----------------------------------------------------------------------------
    @staticmethod
    def params(request: FakeRequest) -> dict[str, str]:
        values = {key: items[-1] for key, items in request.query.items()}
        if request.body and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = parse_qs(request.body.decode(), keep_blank_values=True)
            values.update({key: items[-1] for key, items in body.items()})
        return values

    @staticmethod
    def error(code: int, msg: str) -> Response:
        return Response(200, {"error": {"code": code, "msg": msg}})

    def _queued_error(self, method: str) -> Response | None:
        with self._lock:
            for index, (target, code, msg) in enumerate(self.api_errors):
                if target in (None, method):
                    del self.api_errors[index]
                    return self.error(code, msg)
        return None

    def authorize(self, request: FakeRequest, params: dict[str, str]) -> bool:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return self._valid_jwt(auth[len("Bearer ") :])
        return params.get("account_id") == str(self.account_id) and params.get("api_key") == self.api_key

    def _valid_jwt(self, token: str) -> bool:
        if not self.public_key:
            return False
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            key = serialization.load_pem_public_key(self.public_key.encode())
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, AssertionError, CryptoInvalidSignature):
            return False
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        return (
            header.get("alg") == "RS256"
            and header.get("kid") == self.key_id
            and claims.get("iss") in (self.account_id, str(self.account_id))
            and isinstance(iat, int)
            and isinstance(exp, int)
            and iat <= now + 60
            and now < exp
            and exp - iat <= 3600
        )

    def _guard(self, request: FakeRequest, method: str) -> tuple[dict[str, str], Response | None]:
        params = self.params(request)
        if not self.authorize(request, params):
            self.auth_failures += 1
            return params, self.error(100, "Authorization failed")
        return params, self._queued_error(method)

    # -- StartScenarios ----------------------------------------------------------------------
    def start_scenarios(self, request: FakeRequest) -> Response:
        params, failure = self._guard(request, "StartScenarios")
        if failure is not None:
            return failure
        rule = params.get("rule_id", "")
        if not rule.isdigit():
            return self.error(101, "Invalid arguments: 'rule_id' is required")
        if int(rule) not in self.rules:
            return self.error(101, f"Invalid arguments: rule {rule} not found")
        custom_data = params.get("script_custom_data", "")
        if len(custom_data.encode()) > CUSTOM_DATA_MAX_BYTES:
            return self.error(101, "Invalid arguments: 'script_custom_data' is too long")
        with self._lock:
            session_id = next(self._ids)
            outcome = self.outcomes.popleft() if self.outcomes else self.default_outcome
            session = FakeSession(session_id, int(rule), custom_data, self.clock(), outcome)
            if outcome.status in ("completed", "voicemail"):
                session.record_url = f"{self.url}/records/{session_id}.mp3"
            self.sessions.append(session)
        if self.auto_deliver:
            threading.Thread(target=self.deliver, args=(session,), daemon=True).start()
        access = f"http://{request.headers.get('host', '127.0.0.1')}/request/{session_id}/{secrets.token_hex(8)}"
        return Response(
            200,
            {
                "result": 1,
                "media_session_access_url": access,
                "media_session_access_secure_url": access.replace("http://", "https://", 1),
                "call_session_history_id": session_id,
            },
        )

    # -- GetCallHistory ----------------------------------------------------------------------
    def get_call_history(self, request: FakeRequest) -> Response:
        params, failure = self._guard(request, "GetCallHistory")
        if failure is not None:
            return failure
        try:
            start = datetime.strptime(params["from_date"], DATE_FORMAT).replace(tzinfo=UTC)
            end = datetime.strptime(params["to_date"], DATE_FORMAT).replace(tzinfo=UTC)
        except KeyError:
            return self.error(101, "Invalid arguments: 'from_date' and 'to_date' are required")
        except ValueError:
            return self.error(111, "Invalid date format")
        try:
            count = int(params.get("count", HISTORY_DEFAULT_COUNT))
            offset = int(params.get("offset", 0))
        except ValueError:
            return self.error(101, "Invalid arguments: count/offset")
        if not 1 <= count <= HISTORY_MAX_COUNT or offset < 0:
            return self.error(101, "Invalid arguments: count must be 1..1000")
        ids = None
        if params.get("call_session_history_id"):
            ids = {int(part) for part in params["call_session_history_id"].split(";") if part}
        custom = params.get("call_session_history_custom_data")
        with_calls = params.get("with_calls") == "true"
        with_records = params.get("with_records") == "true"
        with self._lock:
            matching = [
                s
                for s in self.sessions
                if start <= s.start.replace(microsecond=0) <= end
                and (ids is None or s.session_id in ids)
                and (custom is None or s.custom_data == custom)
            ]
        page = matching[offset : offset + count]
        return Response(
            200,
            {
                "result": [self.session_json(s, with_calls=with_calls, with_records=with_records) for s in page],
                "total_count": len(matching),
                "count": len(page),
                "timezone": "Etc/GMT",
            },
        )

    def session_json(self, session: FakeSession, *, with_calls: bool, with_records: bool) -> dict[str, Any]:
        outcome = session.outcome
        answered = outcome.status in ("completed", "voicemail")
        item: dict[str, Any] = {
            "call_session_history_id": session.session_id,
            "account_id": self.account_id,
            "application_id": 10733204,
            "application_name": "medai.account.voximplant.com",
            "rule_name": "outbound",
            "start_date": session.start.strftime(DATE_FORMAT),
            "duration": outcome.duration + 3,
            "initiator_address": "127.0.0.1",
            "media_server_address": "127.0.0.2",
            "log_file_url": f"{self.url}/logs/{session.session_id}.log",
            "finish_reason": FINISH_REASON,
            "custom_data": session.custom_data,
        }
        if with_calls:
            call: dict[str, Any] = {
                "call_id": next(self._call_ids),
                "start_time": session.start.strftime(DATE_FORMAT),
                "duration": outcome.duration if answered else 0,
                "local_number": "74950000000",
                "remote_number": session.phone.lstrip("+"),
                "remote_number_type": "pstn",
                "incoming": False,
                "successful": answered,
                "transaction_id": next(self._call_ids),
                "media_server_address": "127.0.0.2",
            }
            if not answered:
                code = SIP_CODES.get(outcome.status, 404)
                call["end_reason"] = {"code": code, "description": outcome.status}
            item["calls"] = [call]
        if with_records:
            item["records"] = (
                [
                    {
                        "record_id": session.session_id,
                        "record_name": f"{session.session_id}.mp3",
                        "start_time": session.start.strftime(DATE_FORMAT),
                        "duration": outcome.duration,
                        "record_url": session.record_url,
                    }
                ]
                if session.record_url
                else []
            )
        return item

    # -- the scenario's result webhook -------------------------------------------------------
    def result_for(self, session: FakeSession) -> OutboundResult:
        outcome = session.outcome
        status = OutboundStatus(outcome.status)
        transcript = None
        if status == OutboundStatus.COMPLETED:
            lines = outcome.transcript or [
                ("ai", "Здравствуйте! Это клиника «Улыбка», напоминаем о приёме завтра в 10:00."),
                ("customer", "Да, спасибо, я приду."),
                ("ai", "Отлично, до встречи!"),
            ]
            step = outcome.duration / max(1, len(lines))
            transcript = tuple(
                TranscriptSegment(Speaker(speaker), round(i * step, 2), round((i + 1) * step - 0.3, 2), text)
                for i, (speaker, text) in enumerate(lines)
            )
        error = outcome.error
        if status == OutboundStatus.FAILED and not error:
            error = "invalid_number"
        answered = status in (OutboundStatus.COMPLETED, OutboundStatus.VOICEMAIL)
        return OutboundResult(
            call_token=session.token or "",
            session_id=session.session_id,
            status=status,
            duration_seconds=float(outcome.duration if answered else 0),
            transcript=transcript,
            record_url=session.record_url,
            error=error,
            sip_code=SIP_CODES.get(outcome.status),
        )

    def deliver(self, session: FakeSession) -> int | None:
        """POST the signed result of one session; returns the HTTP status (None when there is nowhere to post)."""
        if self.webhook_secret is None:
            raise RuntimeError("set webhook_secret before delivering results")
        base = session.callback_base
        url = self.webhook_url or (f"{base}{WEBHOOK_PATH}" if base else None)
        if not url or not session.token:
            return None
        body = result_to_json(self.result_for(session))
        moment = self.clock().timestamp()  # signed when sent, as the scenario does
        headers = signed_headers(self.webhook_secret, body, timestamp=int(moment), nonce=secrets.token_hex(16))
        headers["Content-Type"] = "application/json"
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        session.deliveries.append(response.status_code)
        session.delivered = response.is_success
        return response.status_code

    def deliver_results(self) -> list[int | None]:
        """Deliver every session not yet acknowledged with a 2xx, in start order."""
        return [self.deliver(s) for s in list(self.sessions) if not s.delivered]

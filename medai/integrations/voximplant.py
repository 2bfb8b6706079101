"""Voximplant Management API: start the outbound-call scenario and read call history.

Wire format (https://voximplant.com/docs/references/httpapi, https://docs.voximplant.ai/api-reference/management-api):

* ``POST https://api.voximplant.com/platform_api/<Method>`` with an ``application/x-www-form-urlencoded`` body
  (GET works too; POST is recommended when custom data is sent).
* Auth, either
  - a **service account** (recommended): a JWT signed RS256 with the account's private key, header ``kid`` =
    key_id, claims ``iss`` = account_id, ``iat``, ``exp`` ≤ iat + 3600, sent as ``Authorization: Bearer <jwt>``
    (docs: guides/managementapi/authorization); or
  - the deprecated ``account_id`` + ``api_key`` parameters. We send them in the form body, not the query
    string, so they never appear in a URL (logs, proxies).
* Failures come back as **HTTP 200** with ``{"error": {"code": N, "msg": "..."}}`` (docs: references/httpapi/errors).
  Codes 1–99 are server-side failures (fatal/internal/DB/billing/media server …) → temporary; codes ≥ 100 are
  request errors (100 authorization failed, 101 invalid arguments, 104 forbidden, 111 invalid date …) →
  permanent. Real HTTP 429 is returned by StartScenarios above 200 concurrent requests; 429/5xx go through the
  chokepoint.

StartScenarios is **not idempotent**: a retry after a lost response may dial the patient twice. Its requests
therefore get exactly one attempt (``retry_unsafe=False``); a :class:`TemporaryHttpError` tells the caller to
retry later, after checking :meth:`VoximplantClient.call_history` with ``custom_data=`` for a session that
already started with the same token.

The scenario's custom data is limited to 200 bytes (``VoxEngine.customData``: "Maximum size is 200 bytes"), so
it carries only a short call token and our callback base URL (:func:`compact_custom_data`); the scenario fetches
the rest from our API.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from medai.http import (
    HttpPolicy,
    PermanentHttpError,
    ProviderResponseError,
    TemporaryHttpError,
    build_client,
    request_json,
)

PROVIDER = "voximplant"
DEFAULT_BASE_URL = "https://api.voximplant.com/platform_api"
CUSTOM_DATA_MAX_BYTES = 200  # VoxEngine.customData(): "Maximum size is 200 bytes"
HISTORY_PAGE_MAX = 1000  # GetCallHistory ``count``: "The maximum value is 1000"
JWT_MAX_LIFETIME = 3600  # exp must be ≤ iat + 3600 s
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # "24-h format: YYYY-MM-DD HH:mm:ss"
HISTORY_TIMEZONE = "Etc/GMT"  # we always ask for (and parse) UTC


# -- errors ------------------------------------------------------------------------------------------


class VoximplantTemporaryError(TemporaryHttpError):
    """An ``{"error": ...}`` answer worth retrying later (server-side failure)."""

    def __init__(self, message: str, *, code: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class VoximplantPermanentError(PermanentHttpError):
    """An ``{"error": ...}`` answer that will not succeed on retry (bad credentials, arguments, permissions)."""

    def __init__(self, message: str, *, code: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


def is_temporary_code(code: int) -> bool:
    """Codes 1–23 in the documented list are platform failures (internal, DB, billing, media server…)."""
    return 0 < code < 100


def raise_for_api_error(payload: Any, *, method: str) -> None:
    """Raise the classified error if ``payload`` is a documented error object."""
    if not isinstance(payload, dict) or "error" not in payload:
        return
    error = payload["error"]
    if not isinstance(error, dict):
        raise ProviderResponseError(f"{PROVIDER}: {method}: malformed error object {error!r}", status=200)
    code = error.get("code")
    msg = str(error.get("msg") or "no message")[:300]
    if isinstance(code, bool) or not isinstance(code, int):
        raise ProviderResponseError(f"{PROVIDER}: {method}: error without a numeric code: {msg}", status=200)
    message = f"{PROVIDER}: {method} failed with error {code}: {msg}"
    if is_temporary_code(code):
        raise VoximplantTemporaryError(message, code=code, status=200, body=json.dumps(payload)[:500])
    raise VoximplantPermanentError(message, code=code, status=200, body=json.dumps(payload)[:500])


# -- typed results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartResult:
    call_session_history_id: int
    media_session_access_url: str | None = None
    media_session_access_secure_url: str | None = None


@dataclass(frozen=True)
class CallRecord:
    """One leg of a session (``CallInfoType``)."""

    call_id: int
    remote_number: str | None
    incoming: bool | None
    successful: bool | None
    duration: int | None
    start_time: datetime | None
    record_url: str | None
    end_reason: Any = None


@dataclass(frozen=True)
class CallSession:
    """One JS session (``CallSessionInfoType``); an outbound AI call is one session."""

    session_id: int
    start: datetime | None
    duration: int | None
    finish_reason: str | None
    custom_data: str | None
    calls: tuple[CallRecord, ...] = ()
    record_urls: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def record_url(self) -> str | None:
        """The session's recording: from ``records[]``, else the first call leg that has one."""
        if self.record_urls:
            return self.record_urls[0]
        return next((c.record_url for c in self.calls if c.record_url), None)


# -- custom data --------------------------------------------------------------------------------------


def compact_custom_data(token: str, callback_base_url: str, **extra: str) -> dict[str, str]:
    """The minimal custom data for the outbound scenario: ``{"t": token, "u": base URL}``.

    The scenario fetches phone number, voice, greeting … from ``{u}/api/outbound/scenario/{t}/``; prompts
    and patient data never travel in custom data (it is also stored in Voximplant's call history).
    """
    if not token or not isinstance(token, str):
        raise ValueError("call token must be a non-empty string")
    base = callback_base_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise ValueError(f"callback base URL must be http(s), got {callback_base_url!r}")
    return {"t": token, "u": base, **extra}


def encode_custom_data(custom_data: Mapping[str, Any]) -> str:
    """Compact, ASCII-only JSON within the documented 200-byte limit; ``ValueError`` otherwise."""
    encoded = json.dumps(dict(custom_data), separators=(",", ":"), ensure_ascii=True, sort_keys=True)
    size = len(encoded.encode())
    if size > CUSTOM_DATA_MAX_BYTES:
        raise ValueError(
            f"Voximplant custom data is {size} bytes, the limit is {CUSTOM_DATA_MAX_BYTES}: pass a short token "
            "(compact_custom_data) and let the scenario fetch the call settings from our API"
        )
    return encoded


# -- auth -----------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt_rs256(claims: Mapping[str, Any], private_key: rsa.RSAPrivateKey, *, kid: str) -> str:
    """A compact JWS (RFC 7515) signed with RS256 = RSASSA-PKCS1-v1_5 + SHA-256."""
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, dict(claims))
    )
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class ServiceAccountAuth:
    """Bearer JWTs for a Voximplant service account, cached until shortly before expiry."""

    def __init__(
        self,
        account_id: int | str,
        *,
        key_id: str,
        private_key: str | bytes,
        lifetime: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not key_id:
            raise ValueError("service account key_id is empty")
        if not 1 <= lifetime <= JWT_MAX_LIFETIME:
            raise ValueError(f"JWT lifetime must be 1..{JWT_MAX_LIFETIME} s, got {lifetime}")
        pem = private_key.encode() if isinstance(private_key, str) else private_key
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("service account private_key is not an unencrypted PEM private key") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("service account private_key must be an RSA key (RS256)")
        self.account_id = int(account_id)
        self.key_id = key_id
        self._key = key
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now > self._expires - 30:
                iat = int(now)
                exp = iat + self._lifetime
                self._token = sign_jwt_rs256(
                    {"iss": self.account_id, "iat": iat, "exp": exp}, self._key, kid=self.key_id
                )
                self._expires = float(exp)
            return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def load_service_account(path: str) -> dict[str, Any]:
    """Read the credentials JSON the control panel generates (account_id, key_id, private_key, …)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    missing = [key for key in ("account_id", "key_id", "private_key") if not data.get(key)]
    if missing:
        raise ValueError(f"Voximplant service account file {path} lacks {', '.join(missing)}")
    return data


# -- client --------------------------------------------------------------------------------------------


def _format_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("call history dates must be timezone-aware")
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def _parse_date(value: Any, *, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{name} is not 'YYYY-MM-DD HH:mm:ss': {value!r}") from exc


def _opt_int(value: Any, *, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _opt_str(value: Any, *, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _opt_bool(value: Any, *, name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a boolean, got {value!r}")
    return value


def call_record_from_api(item: Any) -> CallRecord:
    if not isinstance(item, dict):
        raise ValueError(f"calls[] item must be an object, got {item!r}")
    call_id = _opt_int(item.get("call_id"), name="call_id")
    if call_id is None:
        raise ValueError("calls[] item without call_id")
    return CallRecord(
        call_id=call_id,
        remote_number=_opt_str(item.get("remote_number"), name="remote_number"),
        incoming=_opt_bool(item.get("incoming"), name="incoming"),
        successful=_opt_bool(item.get("successful"), name="successful"),
        duration=_opt_int(item.get("duration"), name="duration"),
        start_time=_parse_date(item.get("start_time"), name="start_time"),
        record_url=_opt_str(item.get("record_url"), name="record_url") or None,
        end_reason=item.get("end_reason"),
    )


def call_session_from_api(item: Any) -> CallSession:
    """A :class:`CallSession` from one ``GetCallHistory`` result item; ``ValueError`` names the bad field."""
    if not isinstance(item, dict):
        raise ValueError(f"result item must be an object, got {item!r}")
    session_id = _opt_int(item.get("call_session_history_id"), name="call_session_history_id")
    if session_id is None:
        raise ValueError("result item without call_session_history_id")
    calls = item.get("calls") or []
    records = item.get("records") or []
    if not isinstance(calls, list) or not isinstance(records, list):
        raise ValueError("calls and records must be lists")
    record_urls = []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError(f"records[] item must be an object, got {record!r}")
        url = _opt_str(record.get("record_url"), name="record_url")
        if url:
            record_urls.append(url)
    return CallSession(
        session_id=session_id,
        start=_parse_date(item.get("start_date"), name="start_date"),
        duration=_opt_int(item.get("duration"), name="duration"),
        finish_reason=_opt_str(item.get("finish_reason"), name="finish_reason"),
        custom_data=_opt_str(item.get("custom_data"), name="custom_data"),
        calls=tuple(call_record_from_api(call) for call in calls),
        record_urls=tuple(record_urls),
        raw=item,
    )


class VoximplantClient:
    """Typed access to the two Management API methods the outbound-call feature needs."""

    def __init__(
        self,
        account_id: int | str,
        *,
        api_key: str | None = None,
        service_account: Mapping[str, Any] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        policy: HttpPolicy | None = None,
        http: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not str(account_id).strip().isdigit():
            raise ValueError(f"Voximplant account_id must be numeric, got {account_id!r}")
        if bool(api_key) == bool(service_account):
            raise ValueError("give exactly one of api_key or service_account")
        self.account_id = int(account_id)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._auth: ServiceAccountAuth | None = None
        if service_account:
            sa_account = service_account.get("account_id")
            if sa_account is not None and int(sa_account) != self.account_id:
                raise ValueError("service account belongs to another Voximplant account")
            self._auth = ServiceAccountAuth(
                self.account_id,
                key_id=str(service_account.get("key_id") or ""),
                private_key=service_account.get("private_key") or "",
                clock=clock,
            )
        self._owns_clients = http is None
        if http is None:
            policy = policy or HttpPolicy.default()
            self._http = build_client(policy=policy)
            # StartScenarios dials a patient: one attempt only, never a blind in-process retry.
            self._start_http = build_client(policy=dataclasses.replace(policy, retry_unsafe=False))
        else:
            self._http = self._start_http = http

    @classmethod
    def from_settings(cls, **overrides: Any) -> VoximplantClient:
        """Build from ``VOXIMPLANT_*`` settings (service-account file wins over the API key)."""
        from django.conf import settings

        options: dict[str, Any] = {"account_id": settings.VOXIMPLANT_ACCOUNT_ID}
        sa_file = settings.VOXIMPLANT_SERVICE_ACCOUNT_FILE
        if sa_file:
            options["service_account"] = load_service_account(sa_file)
        else:
            options["api_key"] = settings.VOXIMPLANT_API_KEY or None
        base_url = settings.VOXIMPLANT_BASE_URL
        if base_url:
            options["base_url"] = base_url
        options.update(overrides)
        return cls(**options)

    # -- API methods ---------------------------------------------------------------------------------

    def start_scenario(
        self, rule_id: int, custom_data: Mapping[str, Any], *, reference_ip: str | None = None
    ) -> StartResult:
        """Run the scenarios bound to ``rule_id`` in a new session (``StartScenarios``)."""
        if isinstance(rule_id, bool) or not isinstance(rule_id, int) or rule_id <= 0:
            raise ValueError(f"rule_id must be a positive integer, got {rule_id!r}")
        params: dict[str, Any] = {"rule_id": rule_id, "script_custom_data": encode_custom_data(custom_data)}
        if reference_ip:
            params["reference_ip"] = reference_ip
        payload = self._call("StartScenarios", params, client=self._start_http)
        try:
            session_id = _opt_int(payload.get("call_session_history_id"), name="call_session_history_id")
            if session_id is None or payload.get("result") != 1:
                raise ValueError(f"expected result=1 and call_session_history_id, got {sorted(payload)}")
            return StartResult(
                call_session_history_id=session_id,
                media_session_access_url=_opt_str(payload.get("media_session_access_url"), name="url"),
                media_session_access_secure_url=_opt_str(payload.get("media_session_access_secure_url"), name="url"),
            )
        except ValueError as exc:
            raise ProviderResponseError(f"{PROVIDER}: StartScenarios: unexpected response: {exc}", status=200) from exc

    def call_history(
        self,
        *,
        from_date: datetime,
        to_date: datetime,
        session_ids: Sequence[int] | None = None,
        custom_data: str | None = None,
        with_calls: bool = True,
        with_records: bool = True,
        page_size: int = HISTORY_PAGE_MAX,
    ) -> list[CallSession]:
        """All sessions started in ``[from_date, to_date]`` (aware datetimes), following every page."""
        if not 1 <= page_size <= HISTORY_PAGE_MAX:
            raise ValueError(f"page_size must be 1..{HISTORY_PAGE_MAX}")
        if from_date > to_date:
            raise ValueError("from_date is after to_date")
        base: dict[str, Any] = {
            "from_date": _format_date(from_date),
            "to_date": _format_date(to_date),
            "timezone": HISTORY_TIMEZONE,
            "with_calls": "true" if with_calls else "false",
            "with_records": "true" if with_records else "false",
            "count": page_size,
        }
        if custom_data is not None:
            base["call_session_history_custom_data"] = custom_data
        batches: Iterable[Sequence[int] | None] = [None]
        if session_ids is not None:
            ids = [int(i) for i in session_ids]
            if not ids:
                return []
            # At most 1000 ids per request; the list goes semicolon-separated.
            batches = [ids[i : i + HISTORY_PAGE_MAX] for i in range(0, len(ids), HISTORY_PAGE_MAX)]
        sessions: list[CallSession] = []
        for batch in batches:
            params = dict(base)
            if batch is not None:
                params["call_session_history_id"] = ";".join(str(i) for i in batch)
            sessions.extend(self._history_pages(params, page_size))
        return sessions

    # -- internals -----------------------------------------------------------------------------------

    def _history_pages(self, params: dict[str, Any], page_size: int) -> Iterable[CallSession]:
        offset = 0
        while True:
            payload = self._call("GetCallHistory", {**params, "offset": offset}, client=self._http)
            try:
                items = payload.get("result")
                total = _opt_int(payload.get("total_count"), name="total_count")
                if not isinstance(items, list):
                    raise ValueError("result must be a list")
                page = [call_session_from_api(item) for item in items]
            except ValueError as exc:
                raise ProviderResponseError(
                    f"{PROVIDER}: GetCallHistory: unexpected response: {exc}", status=200
                ) from exc
            yield from page
            offset += len(page)
            if not page or len(page) < page_size or (total is not None and offset >= total):
                return

    def _call(self, method: str, params: Mapping[str, Any], *, client: Any) -> dict[str, Any]:
        data = {key: str(value) for key, value in params.items()}
        headers: dict[str, str] = {}
        if self._auth is not None:
            headers.update(self._auth.headers())
        else:
            data["account_id"] = str(self.account_id)
            data["api_key"] = self._api_key or ""
        payload = request_json(
            client, "POST", f"{self.base_url}/{method}", provider=PROVIDER, data=data, headers=headers
        )
        raise_for_api_error(payload, method=method)
        if not isinstance(payload, dict):
            raise ProviderResponseError(f"{PROVIDER}: {method}: expected a JSON object", status=200)
        return payload

    def close(self) -> None:
        if self._owns_clients:
            self._http.close()
            self._start_http.close()

    def __enter__(self) -> VoximplantClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

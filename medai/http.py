"""The one HTTP chokepoint for every outbound call to a provider.

Everything that talks to the outside world builds its ``httpx.Client`` with :func:`build_client`
(or goes through :func:`request`). The client's transport adds, in one place:

* a timeout on every request (connect/read/write/pool),
* bounded retries with exponential backoff on 429/5xx and network errors, honouring
  ``Retry-After`` (seconds or HTTP date) up to ``max_retry_after``,
* an optional per-key token-bucket rate limit (e.g. amoCRM: 7 requests/s per account),
* an optional HTTP or SOCKS5 proxy,
* logging with secrets and phone numbers redacted.

Errors are classified for the pipeline: :class:`TemporaryHttpError` (retry later) and
:class:`PermanentHttpError` (fail with a readable reason). SDK-based clients (ElevenLabs,
OpenAI) receive a client from here too, with the SDK's own retries switched off.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2  # the OpenAI SDK's fork of httpx; same API, separate classes

from medai.logging import redact

logger = logging.getLogger("medai.http")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpError(Exception):
    """A provider call failed. ``temporary`` tells the pipeline whether to retry later."""

    temporary = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        body: str = "",
    ) -> None:
        super().__init__(redact(message))
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id
        self.body = redact(body[:500])


class TemporaryHttpError(HttpError):
    temporary = True


class PermanentHttpError(HttpError):
    temporary = False


class ProviderResponseError(PermanentHttpError):
    """The provider answered 2xx but the body is not what its documentation promises."""


@dataclass(frozen=True)
class HttpPolicy:
    timeout: float = 30.0
    connect_timeout: float = 10.0
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 30.0
    # Token bucket: at most ``rate`` requests per second (burst ``burst``) per ``rate_key``.
    rate: float | None = None
    burst: int = 1
    rate_key: str = ""
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)
    # Retry non-idempotent methods (POST) too. Providers here are safe to retry on 429/5xx
    # because the request was rejected before any work (ElevenLabs, OpenAI); switch off where not.
    retry_unsafe: bool = True

    @classmethod
    def default(cls, **overrides: Any) -> HttpPolicy:
        from django.conf import settings

        values: dict[str, Any] = {
            "timeout": settings.HTTP_TIMEOUT,
            "retries": settings.HTTP_RETRIES,
            "max_retry_after": settings.HTTP_MAX_RETRY_AFTER,
            "backoff_base": settings.HTTP_BACKOFF_BASE,
        }
        values.update(overrides)
        return cls(**values)


class TokenBucket:
    """Thread-safe token bucket. ``acquire`` blocks until a token is available."""

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1, burst)
        self._tokens = float(self.capacity)
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take one token; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.rate
            sleep(delay)
            waited += delay


_buckets: dict[tuple[str, float, int], TokenBucket] = {}
_buckets_lock = threading.Lock()


def rate_limiter(key: str, rate: float, burst: int = 1) -> TokenBucket:
    """The process-wide bucket for ``key`` (one per provider account)."""
    with _buckets_lock:
        bucket = _buckets.get((key, rate, burst))
        if bucket is None:
            bucket = _buckets[(key, rate, burst)] = TokenBucket(rate, burst)
        return bucket


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


def request_id_of(response: Any) -> str | None:
    for header in ("request-id", "x-request-id", "x-trace-id", "cf-ray"):
        if header in response.headers:
            return response.headers[header]
    return None


def _describe(request: Any) -> str:
    return redact(f"{request.method} {request.url.scheme}://{request.url.host}{request.url.path}")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~20 ms, too much per request."""
    return httpx.create_ssl_context()


class _ChokepointLogic:
    """Wraps a real transport with rate limiting, retries and redacted logging.

    Written once and bound to both ``httpx`` and ``httpx2`` (the OpenAI SDK's fork) below.
    """

    httpx_module: Any = httpx

    def __init__(
        self,
        policy: HttpPolicy,
        inner: Any = None,
        *,
        proxy: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.inner = inner or self.httpx_module.HTTPTransport(proxy=proxy, retries=0, verify=_ssl_context())
        # Looked up at call time so tests can patch ``medai.http.time.sleep``.
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.bucket = rate_limiter(policy.rate_key, policy.rate, policy.burst) if policy.rate else None

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.backoff_max, self.policy.backoff_base * (2**attempt))
        return base * (0.5 + random.random() / 2)  # jitter

    def handle_request(self, request: Any) -> Any:
        policy = self.policy
        mod = self.httpx_module
        retriable_method = policy.retry_unsafe or request.method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
        attempts = policy.retries + 1 if retriable_method else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if self.bucket is not None:
                self.bucket.acquire(self.sleep)
            started = time.monotonic()
            try:
                # Multipart and other bodies must be re-readable for a retry.
                if attempt:
                    request.read()
                response = self.inner.handle_request(request)
            except (mod.TimeoutException, mod.NetworkError, mod.RemoteProtocolError) as exc:
                logger.warning(
                    "%s failed (%s), attempt %d/%d", _describe(request), type(exc).__name__, attempt + 1, attempts
                )
                if last:
                    raise
                self.sleep(self._backoff(attempt))
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.debug("%s -> %s in %.0f ms", _describe(request), response.status_code, elapsed_ms)
            if response.status_code not in policy.retry_statuses or last:
                return response
            delay = parse_retry_after(response.headers.get("retry-after"))
            if delay is not None and delay > policy.max_retry_after:
                # Too long to wait in-process: hand it back so the caller can reschedule.
                return response
            delay = self._backoff(attempt) if delay is None else delay
            logger.info(
                "%s -> %s, retrying in %.1fs (attempt %d/%d)",
                _describe(request),
                response.status_code,
                delay,
                attempt + 1,
                attempts,
            )
            response.close()
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.inner.close()


class ChokepointTransport(_ChokepointLogic, httpx.BaseTransport):
    httpx_module = httpx


class ChokepointTransport2(_ChokepointLogic, httpx2.BaseTransport):
    httpx_module = httpx2


def build_client(
    *,
    policy: HttpPolicy | None = None,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    proxy: str | None = None,
    transport: Any = None,
    follow_redirects: bool = True,
    flavour: str = "httpx",
) -> Any:
    """An HTTP client whose every request goes through the chokepoint.

    ``flavour="httpx2"`` builds an ``httpx2.Client`` for the OpenAI SDK (``http_client=``).
    """
    policy = policy or HttpPolicy.default()
    mod, transport_class = (httpx2, ChokepointTransport2) if flavour == "httpx2" else (httpx, ChokepointTransport)
    timeout = mod.Timeout(policy.timeout, connect=policy.connect_timeout)
    return mod.Client(
        base_url=base_url,
        headers=dict(headers or {}),
        timeout=timeout,
        transport=transport_class(policy, transport, proxy=proxy),
        follow_redirects=follow_redirects,
    )


def raise_for_status(response: Any, *, provider: str) -> Any:
    """Classify a non-2xx response as temporary or permanent."""
    if response.is_success:
        return response
    try:
        body = response.text
    except Exception:  # a streamed body that was not read
        body = ""
    message = f"{provider}: HTTP {response.status_code} from {_describe(response.request)}"
    detail = body.strip().replace("\n", " ")[:200]
    if detail:
        message += f": {detail}"
    kwargs = {
        "status": response.status_code,
        "retry_after": parse_retry_after(response.headers.get("retry-after")),
        "request_id": request_id_of(response),
        "body": body,
    }
    if response.status_code in RETRY_STATUSES:
        raise TemporaryHttpError(message, **kwargs)
    raise PermanentHttpError(message, **kwargs)


def classify_transport_error(exc: Exception, *, provider: str) -> HttpError:
    """Network errors and timeouts are temporary."""
    return TemporaryHttpError(f"{provider}: {type(exc).__name__}: {exc}")


def request_json(client: Any, method: str, url: str, *, provider: str, allow_empty: bool = False, **kwargs: Any) -> Any:
    """Send a request through ``client`` and return its decoded JSON body, or raise an HttpError."""
    try:
        response = client.request(method, url, **kwargs)
    except (httpx.HTTPError, httpx2.HTTPError) as exc:
        raise classify_transport_error(exc, provider=provider) from exc
    raise_for_status(response, provider=provider)
    if response.status_code == 204 or (allow_empty and not response.content):
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderResponseError(
            f"{provider}: malformed JSON in response to {_describe(response.request)}",
            status=response.status_code,
            request_id=request_id_of(response),
            body=response.text,
        ) from exc

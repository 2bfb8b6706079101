"""How MedAI talks to one amoCRM account: base URL, rate limit, error classes, one request helper."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from medai.http import HttpPolicy, PermanentHttpError, request_json

from .entities import PROVIDER

# amoCRM allows 7 requests per second per account (docs: "Limitations" / "Ограничения").
DEFAULT_RATE = 7.0
# Servers count arrivals, not departures: pacing at exactly 7/s lets network jitter put an 8th
# request inside the first one's second. A 5 % margin keeps us under a sliding-window limiter.
RATE_MARGIN = 0.95

_SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class AmoUnauthorized(PermanentHttpError):
    """401 from the API: the access token is invalid or expired. Refresh it and retry once."""


class AmoAuthRevoked(PermanentHttpError):
    """The token endpoint refused the code or refresh token (400/401): the clinic must reconnect."""


class AmoAccessDenied(PermanentHttpError):
    """403: the user lacks rights, or amoCRM blocked our IP for abuse. Retrying makes it worse."""


def normalize_base_url(subdomain_or_base_url: str) -> str:
    """``clinic`` → ``https://clinic.amocrm.ru``; a host or full URL is kept (Kommo, tests)."""
    value = (subdomain_or_base_url or "").strip().rstrip("/")
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an amoCRM base URL: {value!r}")
        return f"{parts.scheme}://{parts.netloc}"
    if "." in value:
        return f"https://{value}"
    if not _SUBDOMAIN.match(value.lower()):
        raise ValueError(f"not an amoCRM subdomain: {value!r}")
    return f"https://{value.lower()}.amocrm.ru"


def rate_key(base_url: str) -> str:
    """One token bucket per account: the host carries the subdomain."""
    return f"amocrm:{urlsplit(base_url).netloc}"


def read_policy(base_url: str, rate_per_second: float) -> HttpPolicy:
    # burst=1: a full bucket of 7 on top of 7/s would put 14 requests in the first second.
    return HttpPolicy(
        timeout=30.0,
        connect_timeout=10.0,
        retries=4,
        max_retry_after=30.0,
        rate=rate_per_second * RATE_MARGIN,
        burst=1,
        rate_key=rate_key(base_url),
    )


def write_policy(base_url: str, rate_per_second: float) -> HttpPolicy:
    # A POST that got a 5xx may have been applied: only retry what amoCRM rejected unprocessed (429).
    return replace(read_policy(base_url, rate_per_second), retry_statuses=frozenset({429}))


def oauth_policy(base_url: str) -> HttpPolicy:
    # Refresh tokens rotate: if a refresh reached amoCRM and the answer was lost, resending the old
    # token fails anyway, so the token endpoint is never retried in-process; the caller retries later.
    return replace(read_policy(base_url, DEFAULT_RATE), retries=0, retry_unsafe=False)


def call(client: Any, method: str, url: str, **kwargs: Any) -> Any:
    """Send one request; decoded JSON, or None for 204/empty. 401/403 get their own error classes."""
    try:
        return request_json(client, method, url, provider=PROVIDER, allow_empty=True, **kwargs)
    except PermanentHttpError as exc:
        error_class = {401: AmoUnauthorized, 403: AmoAccessDenied}.get(exc.status or 0)
        if error_class is None or type(exc) is not PermanentHttpError:
            raise
        raise error_class(
            str(exc), status=exc.status, retry_after=exc.retry_after, request_id=exc.request_id, body=exc.body
        ) from exc

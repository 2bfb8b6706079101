"""OpenAI and OpenAI-compatible servers (vLLM, LM Studio, self-hosted Whisper, ...).

Every module here builds its SDK client with :func:`make_client`, so requests go through the HTTP
chokepoint (:func:`medai.http.build_client`, ``httpx2`` flavour) with the SDK's own retries off, and
turns SDK exceptions into our error classes with :func:`http_error_from_openai`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from medai.http import (
    HttpError,
    HttpPolicy,
    PermanentHttpError,
    ProviderResponseError,
    TemporaryHttpError,
    build_client,
    classify_transport_error,
)
from medai.integrations.transcription_types import status_error

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def make_client(
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    policy: HttpPolicy | None = None,
    proxy: str | None = None,
    http_client: httpx2.Client | None = None,
) -> openai.OpenAI:
    """An ``openai.OpenAI`` whose HTTP goes through the chokepoint.

    ``max_retries=0``: the chokepoint already retries 429/5xx honouring ``Retry-After``; SDK retries
    on top would multiply attempts. Everything is passed explicitly so stray ``OPENAI_*`` environment
    variables cannot redirect requests. A self-hosted server without auth still needs a non-empty
    key for the SDK; any placeholder works.
    """
    return openai.OpenAI(
        api_key=api_key or "unused",
        base_url=base_url.rstrip("/"),
        max_retries=0,
        http_client=http_client or build_client(policy=policy, proxy=proxy, flavour="httpx2"),
    )


def _message(body: Any) -> str:
    """The readable part of ``{"error": {"message", "type", "code"}}`` (the SDK unwraps ``error``)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            parts = [str(inner.get("code") or inner.get("type") or ""), str(inner.get("message") or "")]
            return ": ".join(part for part in parts if part)
        return str(inner)
    return str(body or "")


def http_error_from_openai(exc: Exception, *, provider: str = "openai") -> HttpError:
    """Classify an ``openai`` SDK exception as temporary, permanent or a malformed response."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, ensure_ascii=False, default=str)
        return status_error(
            provider,
            exc.status_code,
            detail=_message(exc.body),
            headers=dict(exc.response.headers),
            request_id=exc.request_id,
            body=body,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderResponseError(f"{provider}: response does not match the documented schema")
    if isinstance(exc, openai.APITimeoutError):
        return TemporaryHttpError(f"{provider}: request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {cause}" if cause else "connection error"
        return TemporaryHttpError(f"{provider}: {detail}")
    if isinstance(exc, httpx2.HTTPError):
        return classify_transport_error(exc, provider=provider)
    # Anything else (missing credentials, a bad argument) is our configuration, not the network.
    return PermanentHttpError(f"{provider}: {type(exc).__name__}: {exc}")

"""Structured output from any OpenAI-compatible Chat Completions endpoint.

:class:`ChatClient.structured` sends one system + one user message with
``response_format={"type": "json_schema", "json_schema": {"name", "strict": True, "schema"}}`` and
returns the parsed, schema-validated JSON object with the token usage of the call.

Facts from OpenAI's Structured Outputs guide and API reference that this module relies on:

* A safety refusal arrives as a normal 200 completion whose ``choices[0].message.refusal`` holds the
  model's explanation (``content`` is null). It does not follow the schema → :class:`LLMRefusal`.
* ``finish_reason == "length"`` means generation stopped at the token limit (``max_completion_tokens``)
  or the context window; the JSON is cut off → :class:`LLMTruncated`.
* ``finish_reason == "content_filter"`` means content was omitted by the provider's filters; the
  output is incomplete and the same input will be filtered again → :class:`LLMRefusal`.
* With ``strict: true`` every object must set ``additionalProperties: false`` and list every key of
  ``properties`` in ``required``; an optional field is emulated by a union with ``null``.
  :func:`strict_schema` rewrites a naturally written schema into that form.
* Structured output is guaranteed only by OpenAI's own strict mode. Other "OpenAI-compatible" servers
  may ignore ``response_format``, so the content is always parsed and validated here with
  ``jsonschema`` → :class:`LLMInvalidOutput` when it is not JSON or does not match.
* ``max_tokens`` is deprecated in favour of ``max_completion_tokens`` (and rejected by reasoning
  models); older compatible servers only know ``max_tokens`` — see ``max_tokens_field``.

Transport errors are classified by the package's shared :func:`http_error_from_openai`: 408/425/429/
5xx, timeouts and connection errors are :class:`~medai.http.TemporaryHttpError`; other statuses
(400/401/403/404/422) are :class:`~medai.http.PermanentHttpError`. One addition here: 429 with code
``insufficient_quota`` (an exhausted balance, not a rate limit) is permanent. Retries happen only in
the HTTP chokepoint (:func:`medai.http.build_client`); the SDK's own retries are off.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema
import openai
from jsonschema.exceptions import best_match

from medai.http import HttpError, HttpPolicy, PermanentHttpError, ProviderResponseError, build_client
from medai.integrations.openai_compat import http_error_from_openai, make_client

logger = logging.getLogger("medai.integrations.openai_compat")

PROVIDER = "openai_compat"
# Documented constraint on ``json_schema.name``.
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)


# -- results and errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StructuredResult:
    data: dict[str, Any]
    model: str
    request_id: str | None
    prompt_tokens: int  # 0 when the server reported no usage
    completion_tokens: int
    finish_reason: str | None


class _CompletionErrorMixin:
    """A 200 completion that is unusable. Tokens were still spent, so usage travels with the error."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        finish_reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("status", 200)
        super().__init__(message, **kwargs)  # type: ignore[call-arg]
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.finish_reason = finish_reason


class LLMRefusal(_CompletionErrorMixin, PermanentHttpError):
    """The model refused (``message.refusal``) or the provider's content filter stopped the output."""

    def __init__(self, message: str, *, refusal: str = "", reason: str = "refusal", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.refusal = refusal
        self.reason = reason  # "refusal" | "content_filter"


class LLMTruncated(_CompletionErrorMixin, ProviderResponseError):
    """``finish_reason == "length"``: the output hit the token limit and the JSON is incomplete."""


class LLMInvalidOutput(_CompletionErrorMixin, ProviderResponseError):
    """The content is not a JSON object, or does not validate against the requested schema."""


# -- schema helpers -------------------------------------------------------------------------------


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _nullable(node: Any) -> Any:
    """``node`` widened to also accept ``null`` (how strict mode expresses an optional field)."""
    if not isinstance(node, dict):
        return node
    if "type" in node:
        kind = node["type"]
        if isinstance(kind, str) and kind != "null":
            node["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            node["type"] = [*kind, "null"]
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node.get("anyOf"), list):
        if {"type": "null"} not in node["anyOf"]:
            node["anyOf"] = [*node["anyOf"], {"type": "null"}]
        return node
    return {"anyOf": [node, {"type": "null"}]}


def _strictify(node: Any, path: str) -> Any:
    if not isinstance(node, dict):
        return node
    for key in ("$defs", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _strictify(sub, f"{path}.{key}.{name}") for name, sub in node[key].items()}
    if _is_object(node):
        extra = node.get("additionalProperties", False)
        if extra is not False:
            raise ValueError(f"{path}: strict structured output needs additionalProperties false, got {extra!r}")
        node["additionalProperties"] = False
        properties = node.get("properties") or {}
        declared = node.get("required")
        strict_props = {}
        for name, sub in properties.items():
            sub = _strictify(sub, f"{path}.{name}")
            # An explicit ``required`` that leaves a key out means "optional": keep that as nullable.
            if declared is not None and name not in declared:
                sub = _nullable(sub)
            strict_props[name] = sub
        if "properties" in node:
            node["properties"] = strict_props
        node["required"] = list(strict_props)
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = _strictify(items, f"{path}[]")
    elif isinstance(items, list):
        node["items"] = [_strictify(sub, f"{path}[{i}]") for i, sub in enumerate(items)]
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        if isinstance(node.get(key), list):
            node[key] = [_strictify(sub, f"{path}.{key}[{i}]") for i, sub in enumerate(node[key])]
    return node


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that satisfies Structured Outputs' strict mode.

    Recursively (properties, items, anyOf/oneOf/allOf, $defs): every object gets
    ``additionalProperties: false`` and ``required`` = all its property keys. A schema with no
    ``required`` is read as "all fields required"; a property left out of an explicit ``required``
    becomes nullable (``"type": [..., "null"]``), the documented way to express an optional field.
    Idempotent; never mutates its argument. Raises ``ValueError`` for a root that is not an object or
    an object that explicitly allows additional properties.
    """
    result = copy.deepcopy(dict(schema))
    if not _is_object(result):
        raise ValueError("the root of a structured-output schema must be an object")
    return _strictify(result, "$")


# -- cost -----------------------------------------------------------------------------------------


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{name} is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return number


def estimate_cost(
    prompt_tokens: int,
    completion_tokens: int,
    price_in_per_1m: Decimal | float | int | str,
    price_out_per_1m: Decimal | float | int | str,
) -> Decimal:
    """Cost of one call from token counts and per-million-token prices (exact, not rounded)."""
    tokens_in = _decimal(prompt_tokens, "prompt_tokens")
    tokens_out = _decimal(completion_tokens, "completion_tokens")
    price_in = _decimal(price_in_per_1m, "price_in_per_1m")
    price_out = _decimal(price_out_per_1m, "price_out_per_1m")
    return (tokens_in * price_in + tokens_out * price_out) / Decimal(1_000_000)


# -- the client -----------------------------------------------------------------------------------


def _classify(exc: openai.OpenAIError) -> HttpError:
    """The package's shared classification, plus one rule: 429 ``insufficient_quota`` is permanent.

    OpenAI answers 429 both for rate limits (wait and retry) and for an exhausted balance (code
    ``insufficient_quota``: retrying cannot help until someone pays), so the code decides.
    """
    error = http_error_from_openai(exc, provider=PROVIDER)
    body = exc.body if isinstance(exc, openai.APIStatusError) else None
    code = (body.get("code") or body.get("type")) if isinstance(body, Mapping) else None
    if error.temporary and error.status == 429 and code == "insufficient_quota":
        return PermanentHttpError(
            str(error), status=error.status, retry_after=None, request_id=error.request_id, body=error.body
        )
    return error


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _parse_object(content: str) -> dict[str, Any]:
    text = content.strip()
    fenced = _FENCE.match(text)  # some compatible servers wrap JSON in a Markdown fence
    if fenced:
        text = fenced.group(1).strip()
    data = json.loads(text, parse_constant=_reject_constant)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


class ChatClient:
    """Chat Completions with strict JSON-schema output through the HTTP chokepoint.

    ``http_client`` must be an ``httpx2.Client`` from ``build_client(..., flavour="httpx2")``; when
    omitted one is built from ``policy`` (default: :meth:`HttpPolicy.default`, needs Django settings)
    and closed by :meth:`close`. ``max_tokens_field`` names the request field that carries
    ``max_tokens``: ``"max_completion_tokens"`` (OpenAI's current name) or ``"max_tokens"`` for
    servers that predate it. An empty ``api_key`` is allowed for self-hosted servers without auth.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        model: str,
        *,
        policy: HttpPolicy | None = None,
        http_client: Any = None,
        max_tokens_field: str = "max_completion_tokens",
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required")  # never fall back to OPENAI_BASE_URL
        if not model:
            raise ValueError("model is required")
        if max_tokens_field not in {"max_completion_tokens", "max_tokens"}:
            raise ValueError("max_tokens_field must be 'max_completion_tokens' or 'max_tokens'")
        self.model = model
        self.base_url = base_url
        self.max_tokens_field = max_tokens_field
        self._owns_http = http_client is None
        if http_client is None:
            http_client = build_client(policy=policy, flavour="httpx2")
        self._http = http_client
        # Shared with transcription: explicit key/base URL (no OPENAI_* env), SDK retries off.
        self._openai = make_client(api_key=api_key, base_url=base_url, http_client=http_client)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def structured(
        self,
        *,
        system: str,
        user: str,
        schema_name: str,
        json_schema: Mapping[str, Any],
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
    ) -> StructuredResult:
        """One completion whose content is a JSON object matching ``json_schema``.

        ``json_schema`` is passed through :func:`strict_schema` (idempotent) before it is sent, and the
        answer is validated against that same strict schema. ``temperature=None`` leaves it out (some
        reasoning models accept only their default).

        Raises :class:`LLMRefusal`, :class:`LLMTruncated`, :class:`LLMInvalidOutput`,
        :class:`~medai.http.TemporaryHttpError` or :class:`~medai.http.PermanentHttpError`;
        ``ValueError`` for a bad schema or schema name (before any request is made).
        """
        if not _SCHEMA_NAME.match(schema_name):
            raise ValueError("schema_name must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'")
        schema = strict_schema(json_schema)
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"invalid JSON schema {schema_name!r}: {exc.message}") from exc
        validator = validator_class(schema)

        params: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "strict": True, "schema": schema},
            },
        }
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            params[self.max_tokens_field] = max_tokens

        try:
            completion = self._openai.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise _classify(exc) from exc
        except json.JSONDecodeError as exc:  # a 2xx whose body is not JSON; the SDK lets it through
            raise ProviderResponseError(f"{PROVIDER}: malformed JSON in the completion response") from exc

        request_id = getattr(completion, "_request_id", None)
        usage = getattr(completion, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", None) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", None) or 0)
        model = getattr(completion, "model", None) or self.model
        choices = getattr(completion, "choices", None) or []
        finish_reason = getattr(choices[0], "finish_reason", None) if choices else None
        info: dict[str, Any] = {
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "finish_reason": finish_reason,
            "request_id": request_id,
        }
        where = f"{PROVIDER} ({model}, schema {schema_name!r})"
        if not choices or getattr(choices[0], "message", None) is None:
            raise LLMInvalidOutput(f"{where}: the completion has no message", **info)
        message = choices[0].message
        refusal = getattr(message, "refusal", None)
        content = getattr(message, "content", None)
        if refusal:
            raise LLMRefusal(f"{where}: the model refused: {refusal[:200]}", refusal=refusal, **info)
        if finish_reason == "content_filter":
            raise LLMRefusal(
                f"{where}: output stopped by the content filter", reason="content_filter", body=content or "", **info
            )
        if finish_reason == "length":
            raise LLMTruncated(
                f"{where}: output truncated at the token limit after {completion_tokens} tokens",
                body=content or "",
                **info,
            )
        if not content or not content.strip():
            raise LLMInvalidOutput(f"{where}: empty content", **info)
        try:
            data = _parse_object(content)
        except ValueError as exc:
            raise LLMInvalidOutput(f"{where}: content is not a JSON object: {exc}", body=content, **info) from exc
        error = best_match(validator.iter_errors(data))
        if error is not None:
            location = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            raise LLMInvalidOutput(
                f"{where}: output does not match the schema at {location}: {error.message[:200]}",
                body=content,
                **info,
            )
        logger.info(
            "%s: structured output ok, %d+%d tokens, request %s",
            where,
            prompt_tokens,
            completion_tokens,
            request_id,
        )
        return StructuredResult(
            data=data,
            model=model,
            request_id=request_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
        )

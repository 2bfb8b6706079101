"""A fake OpenAI Chat Completions server (``POST /v1/chat/completions``).

Speaks the documented wire format: a ``chat.completion`` object with ``choices[].message`` holding
``content`` and ``refusal``, ``finish_reason``, ``usage`` and an ``x-request-id`` header; errors as
``{"error": {"message", "type", "param", "code"}}``. It checks the Bearer key (401
``invalid_api_key``) and, like the real API, rejects a ``json_schema`` response format with
``strict: true`` whose schema is not strict-compatible (400).

Behaviour per request, in order: the next queued answer (:meth:`queue`, :meth:`queue_refusal`,
:meth:`queue_truncated`, :meth:`queue_invalid`, :meth:`queue_content_filter`, :meth:`queue_error`),
else ``responder(request_json) -> dict`` (the content object), else a 400 saying nothing was queued.
Transport faults (429 with Retry-After, 5xx, timeouts, malformed bodies) come from
:meth:`FakeServer.fail_next`; :func:`error_body` builds an OpenAI-shaped body for them.

    with FakeOpenAIChat() as fake:
        fake.queue(content={"score": 7})
        client = ChatClient("test-key", fake.base_url, "gpt-4o-mini", http_client=...)
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.base import FakeRequest, FakeServer, Response

PATH = "/v1/chat/completions"


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None, param: str | None = None):
    """The documented OpenAI error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer (about four characters per token)."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


@dataclass
class _Answer:
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    error: Response | None = None


def _strict_problem(schema: Any, path: tuple[str, ...] = ()) -> str | None:
    """The first violation of strict-mode rules, worded like the API's 400 message, or None."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object:
        if schema.get("additionalProperties") is not False:
            return f"In context={path}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            return (
                f"In context={path}, 'required' is required to be supplied and to be an array including every "
                f"key in properties. Missing '{missing[0]}'."
            )
        for key, sub in properties.items():
            problem = _strict_problem(sub, (*path, "properties", key))
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        problem = _strict_problem(schema["items"], (*path, "items"))
        if problem:
            return problem
    for key in ("anyOf", "$defs", "definitions"):
        subs = schema.get(key)
        entries = subs.items() if isinstance(subs, dict) else enumerate(subs) if isinstance(subs, list) else ()
        for name, sub in entries:
            problem = _strict_problem(sub, (*path, key, str(name)))
            if problem:
                return problem
    return None


class FakeOpenAIChat(FakeServer):
    def __init__(self, api_key: str = "test-key", model: str = "gpt-4o-mini-2024-07-18") -> None:
        self.api_key = api_key
        self.model = model
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._answers: deque[_Answer] = deque()
        self._answers_lock = threading.Lock()
        self._ids = itertools.count(1)
        super().__init__()

    # -- for tests -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What a client passes as ``base_url`` (the API root, ``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def chat_requests(self) -> list[FakeRequest]:
        return self.requests_to("POST", PATH)

    @property
    def last_json(self) -> dict[str, Any]:
        return self.chat_requests[-1].json()

    def queue(
        self,
        content: dict[str, Any] | list[Any] | str,
        *,
        finish_reason: str = "stop",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        model: str | None = None,
    ) -> None:
        """Answer the next request with ``content`` (a dict/list is sent as JSON text)."""
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        self._push(_Answer(text, None, finish_reason, prompt_tokens, completion_tokens, model))

    def queue_refusal(self, refusal: str = "I'm sorry, I can't assist with that request.") -> None:
        """A documented refusal: ``content`` null, ``refusal`` set, ``finish_reason`` "stop"."""
        self._push(_Answer(content=None, refusal=refusal, finish_reason="stop"))

    def queue_truncated(self, partial_text: str) -> None:
        """Output cut at the token limit: ``finish_reason`` "length"."""
        self._push(_Answer(content=partial_text, finish_reason="length"))

    def queue_invalid(self, text: str = "not json") -> None:
        """A completed answer whose content is not what the schema asked for."""
        self._push(_Answer(content=text, finish_reason="stop"))

    def queue_content_filter(self, partial_text: str | None = None) -> None:
        self._push(_Answer(content=partial_text, finish_reason="content_filter"))

    def queue_error(
        self,
        status: int,
        message: str = "injected error",
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """An API error in the documented envelope (after the auth check)."""
        merged = {"x-request-id": self._request_id(), **(headers or {})}
        self._push(_Answer(error=Response(status, error_body(message, type, code), merged)))

    def reset(self) -> None:
        """Forget requests, queued answers, faults and the responder (to reuse one server across tests)."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
        with self._answers_lock:
            self._answers.clear()
        self.responder = None
        self.timeout_sleep = type(self).timeout_sleep
        self.latency = type(self).latency

    def _push(self, answer: _Answer) -> None:
        with self._answers_lock:
            self._answers.append(answer)

    # -- server --------------------------------------------------------------------------------
    def setup_routes(self) -> None:
        self.route("POST", PATH, self._completions)

    @staticmethod
    def _request_id() -> str:
        return f"req_{uuid.uuid4().hex}"

    def _error(self, status: int, message: str, **kwargs: Any) -> Response:
        return Response(status, error_body(message, **kwargs), {"x-request-id": self._request_id()})

    def _completions(self, request: FakeRequest) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        key = auth.removeprefix("Bearer ")
        if key != self.api_key:
            masked = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
            return self._error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        try:
            payload = request.json()
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.")
        if not isinstance(payload, dict) or not payload.get("model"):
            return self._error(400, "you must provide a model parameter", param="model")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "'messages' must be a non-empty array", param="messages")
        response_format = payload.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            if spec.get("strict") is True:
                problem = _strict_problem(spec.get("schema"))
                if problem:
                    return self._error(
                        400,
                        f"Invalid schema for response_format '{spec.get('name')}': {problem}",
                        param="response_format",
                    )

        with self._answers_lock:
            answer = self._answers.popleft() if self._answers else None
        if answer is None and self.responder is not None:
            data = self.responder(payload)
            answer = _Answer(content=json.dumps(data, ensure_ascii=False))
        if answer is None:
            return self._error(400, "FakeOpenAIChat: nothing queued and no responder set")
        if answer.error is not None:
            return answer.error

        prompt_tokens = answer.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages if isinstance(m, dict))
        completion_tokens = answer.completion_tokens
        if completion_tokens is None:
            completion_tokens = count_tokens(answer.content or answer.refusal or "")
        body = {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": answer.content,
                        "refusal": answer.refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        return Response(200, body, {"x-request-id": self._request_id(), "openai-processing-ms": "12"})

"""Contract tests: ChatClient against the fake Chat Completions server (real SDK, real HTTP)."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from medai.http import HttpPolicy, PermanentHttpError, ProviderResponseError, TemporaryHttpError, build_client
from medai.integrations.openai_compat.chat import (
    ChatClient,
    LLMInvalidOutput,
    LLMRefusal,
    LLMTruncated,
    StructuredResult,
    estimate_cost,
    strict_schema,
)
from tests.fakes.openai_chat import PATH, FakeOpenAIChat, error_body

# Written "naturally": no additionalProperties, no required.
SCORE_SCHEMA = {
    "type": "object",
    "properties": {
        "call_type": {"type": "string", "enum": ["first_contact", "repeat", "callback", "confirmation", "other"]},
        "criteria": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "score": {"type": "integer", "minimum": 0, "maximum": 10},
                    "comment": {"type": "string"},
                },
            },
        },
        "booked": {"type": "boolean"},
    },
}
VALID = {
    "call_type": "first_contact",
    "criteria": [{"key": "greeting", "score": 8, "comment": "Named the clinic and herself."}],
    "booked": True,
}


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIChat() as running:  # one server per module: stopping one costs ~0.5 s
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(fake, sleeps):
    clients = []

    def make(*, retries: int = 2, api_key: str = "test-key", timeout: float = 5.0, **kwargs) -> ChatClient:
        policy = HttpPolicy(timeout=timeout, connect_timeout=timeout, retries=retries, backoff_base=0.01)
        http_client = build_client(policy=policy, flavour="httpx2")
        http_client._transport.sleep = sleeps.append  # no real waiting in tests
        client = ChatClient(api_key, fake.base_url, "gpt-4o-mini", http_client=http_client, **kwargs)
        clients.append(http_client)
        return client

    yield make
    for http_client in clients:
        http_client.close()


def ask(client: ChatClient, **overrides) -> StructuredResult:
    kwargs = {
        "system": "You score clinic calls.",
        "user": "Transcript: Administrator: Good morning, Smile Clinic, Anna speaking...",
        "schema_name": "call_score",
        "json_schema": SCORE_SCHEMA,
    }
    kwargs.update(overrides)
    return client.structured(**kwargs)


# -- happy path -----------------------------------------------------------------------------------


def test_valid_output_is_parsed_with_usage_and_request_id(fake, make_client):
    fake.queue(content=VALID, prompt_tokens=1234, completion_tokens=56)
    result = ask(make_client())
    assert result.data == VALID
    assert result.model == "gpt-4o-mini-2024-07-18"  # the model the server reports, not the alias asked for
    assert result.prompt_tokens == 1234
    assert result.completion_tokens == 56
    assert result.finish_reason == "stop"
    assert result.request_id and result.request_id.startswith("req_")


def test_request_carries_messages_and_a_strict_schema(fake, make_client):
    fake.queue(content=VALID)
    ask(make_client(), temperature=0.2, max_tokens=500)
    [request] = fake.chat_requests
    assert request.headers["authorization"] == "Bearer test-key"
    body = request.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "You score clinic calls."},
        {"role": "user", "content": "Transcript: Administrator: Good morning, Smile Clinic, Anna speaking..."},
    ]
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 500
    assert "max_tokens" not in body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "call_score"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["call_type", "criteria", "booked"]
    item = schema["properties"]["criteria"]["items"]
    assert item["additionalProperties"] is False
    assert item["required"] == ["key", "score", "comment"]
    assert "additionalProperties" not in SCORE_SCHEMA  # the caller's schema is not mutated


def test_legacy_max_tokens_field_and_omitted_temperature(fake, make_client):
    fake.queue(content=VALID)
    ask(make_client(max_tokens_field="max_tokens"), temperature=None, max_tokens=300)
    body = fake.last_json
    assert body["max_tokens"] == 300
    assert "max_completion_tokens" not in body
    assert "temperature" not in body


def test_responder_computes_answer_from_the_prompt(fake, make_client):
    def responder(request_json):
        transcript = request_json["messages"][-1]["content"]
        return {**VALID, "booked": "booked" in transcript}

    fake.responder = responder
    client = make_client()
    assert ask(client, user="Patient booked for Monday").data["booked"] is True
    assert ask(client, user="Patient will think about it").data["booked"] is False


def test_markdown_fenced_json_is_accepted(fake, make_client):
    fake.queue(content="```json\n" + json.dumps(VALID) + "\n```")
    assert ask(make_client()).data == VALID


# -- unusable completions -------------------------------------------------------------------------


def test_refusal_raises_llm_refusal(fake, make_client):
    fake.queue_refusal("I'm sorry, I can't help with that.")
    with pytest.raises(LLMRefusal) as info:
        ask(make_client())
    error = info.value
    assert isinstance(error, PermanentHttpError) and not error.temporary
    assert error.refusal == "I'm sorry, I can't help with that."
    assert error.reason == "refusal"
    assert error.request_id and error.prompt_tokens > 0  # tokens were spent even so
    assert len(fake.chat_requests) == 1


def test_content_filter_raises_llm_refusal(fake, make_client):
    fake.queue_content_filter()
    with pytest.raises(LLMRefusal) as info:
        ask(make_client())
    assert info.value.reason == "content_filter"


def test_truncated_output_raises_llm_truncated(fake, make_client):
    fake.queue_truncated('{"call_type": "first_contact", "criteria": [{"key": "gree')
    with pytest.raises(LLMTruncated) as info:
        ask(make_client(), max_tokens=20)
    error = info.value
    assert isinstance(error, ProviderResponseError)
    assert error.finish_reason == "length"
    assert error.completion_tokens > 0
    assert len(fake.chat_requests) == 1


def test_non_json_content_raises_llm_invalid_output(fake, make_client):
    fake.queue_invalid("not json")
    with pytest.raises(LLMInvalidOutput, match="not a JSON object"):
        ask(make_client())


def test_json_array_content_raises_llm_invalid_output(fake, make_client):
    fake.queue_invalid("[1, 2]")
    with pytest.raises(LLMInvalidOutput, match="expected a JSON object"):
        ask(make_client())


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({**VALID, "criteria": [{"key": "greeting", "score": 11, "comment": ""}]}, "$.criteria[0].score"),
        ({k: v for k, v in VALID.items() if k != "booked"}, "$"),
        ({**VALID, "extra": 1}, "$"),
        ({**VALID, "call_type": "sales"}, "$.call_type"),
    ],
)
def test_json_not_matching_schema_raises_llm_invalid_output(fake, make_client, content, where):
    fake.queue(content=content)
    with pytest.raises(LLMInvalidOutput) as info:
        ask(make_client())
    assert f"does not match the schema at {where}:" in str(info.value)
    assert not info.value.temporary


# -- transport errors ----------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_by_the_chokepoint(fake, make_client, sleeps):
    fake.fail_next(
        "POST",
        PATH,
        status=429,
        headers={"Retry-After": "7"},
        body=error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    )
    fake.queue(content=VALID)
    result = ask(make_client())
    assert result.data == VALID
    assert sleeps == [7.0]
    assert len(fake.chat_requests) == 2


def test_429_exhausted_is_temporary_with_retry_after(fake, make_client, sleeps):
    fake.queue_error(
        429, "Rate limit reached", type="requests", code="rate_limit_exceeded", headers={"Retry-After": "12"}
    )
    with pytest.raises(TemporaryHttpError) as info:
        ask(make_client(retries=0))
    assert info.value.status == 429
    assert info.value.retry_after == 12.0
    assert info.value.request_id.startswith("req_")


def test_429_insufficient_quota_is_permanent(fake, make_client):
    fake.queue_error(429, "You exceeded your current quota", type="insufficient_quota", code="insufficient_quota")
    with pytest.raises(PermanentHttpError, match="insufficient_quota") as info:
        ask(make_client(retries=0))
    assert not info.value.temporary


def test_500_exhausted_raises_temporary(fake, make_client, sleeps):
    fake.fail_next("POST", PATH, status=500, times=3, body=error_body("The server had an error", "server_error"))
    with pytest.raises(TemporaryHttpError) as info:
        ask(make_client(retries=2))
    assert info.value.status == 500
    assert len(fake.chat_requests) == 3
    assert len(sleeps) == 2


def test_401_is_permanent_and_not_retried(fake, make_client, sleeps):
    with pytest.raises(PermanentHttpError) as info:
        ask(make_client(api_key="sk-wrong-key-0123456789abcdef"))
    error = info.value
    assert not error.temporary
    assert error.status == 401
    assert "invalid_api_key" in str(error)
    assert "0123456789abcdef" not in str(error) + error.body  # the key is masked/redacted
    assert error.request_id.startswith("req_")
    assert len(fake.chat_requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_permanent(fake, make_client, status):
    fake.queue_error(status, "bad request")
    with pytest.raises(PermanentHttpError) as info:
        ask(make_client())
    assert info.value.status == status
    assert not info.value.temporary
    assert len(fake.chat_requests) == 1


def test_non_strict_schema_would_be_rejected_by_the_api(fake, make_client):
    """The fake enforces strict mode like the API: this proves the client always sends a strict schema."""
    fake.queue(content=VALID)
    client = make_client()
    response = httpx.post(
        fake.base_url + "/chat/completions",
        headers={"Authorization": "Bearer test-key"},
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "strict": True, "schema": SCORE_SCHEMA},
            },
        },
    )
    assert response.status_code == 400
    assert "additionalProperties" in response.json()["error"]["message"]
    assert ask(client).data == VALID  # the same schema through ChatClient is accepted


def test_malformed_200_body_is_a_provider_response_error(fake, make_client):
    fake.fail_next("POST", PATH, kind="malformed")
    with pytest.raises(ProviderResponseError):
        ask(make_client())


def test_timeout_is_temporary(fake, make_client):
    fake.timeout_sleep = 1.0
    fake.fail_next("POST", PATH, kind="timeout")
    with pytest.raises(TemporaryHttpError, match="timed out"):
        ask(make_client(retries=0, timeout=0.2))


def test_connection_refused_is_temporary():
    with FakeOpenAIChat() as own:
        base_url = own.base_url
    http_client = build_client(policy=HttpPolicy(retries=0), flavour="httpx2")
    with http_client, pytest.raises(TemporaryHttpError, match="ConnectError"):
        ask(ChatClient("test-key", base_url, "gpt-4o-mini", http_client=http_client))


def test_client_built_from_policy_goes_through_the_chokepoint(fake, sleeps):
    client = ChatClient("test-key", fake.base_url, "gpt-4o-mini", policy=HttpPolicy(retries=1, backoff_base=0.01))
    client._http._transport.sleep = sleeps.append
    fake.fail_next("POST", PATH, status=503)
    fake.queue(content=VALID)
    with client:
        assert ask(client).data == VALID
    assert len(fake.chat_requests) == 2 and len(sleeps) == 1


def test_bad_schema_name_or_schema_fails_before_any_request(fake, make_client):
    client = make_client()
    with pytest.raises(ValueError, match="schema_name"):
        ask(client, schema_name="call score!")
    with pytest.raises(ValueError, match="invalid JSON schema"):
        ask(client, json_schema={"type": "object", "properties": {"a": {"type": "strng"}}})
    with pytest.raises(ValueError, match="root"):
        ask(client, json_schema={"type": "array", "items": {"type": "string"}})
    assert fake.chat_requests == []


# -- strict_schema --------------------------------------------------------------------------------


def test_strict_schema_recurses_and_is_idempotent():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "list": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            "either": {"anyOf": [{"type": "object", "properties": {"c": {"type": "integer"}}}, {"type": "null"}]},
        },
        "$defs": {"item": {"type": "object", "properties": {"d": {"type": "number"}}}},
    }
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False and strict["required"] == ["a", "list", "either"]
    assert strict["properties"]["a"] == {
        "type": "object",
        "properties": {"b": {"type": "string"}},
        "additionalProperties": False,
        "required": ["b"],
    }
    assert strict["$defs"]["item"]["additionalProperties"] is False
    assert strict["$defs"]["item"]["required"] == ["d"]
    assert strict["properties"]["either"]["anyOf"][0]["required"] == ["c"]
    assert strict_schema(strict) == strict
    assert "additionalProperties" not in schema  # input untouched


def test_strict_schema_turns_declared_optional_fields_into_nullable():
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "objection": {"type": "string", "enum": ["no_time", "too_expensive"]},
            "address": {"$ref": "#/$defs/addr"},
        },
        "required": ["summary"],
        "$defs": {"addr": {"type": "object", "properties": {"street": {"type": "string"}}}},
    }
    strict = strict_schema(schema)
    assert strict["required"] == ["summary", "objection", "address"]
    assert strict["properties"]["summary"] == {"type": "string"}
    assert strict["properties"]["objection"] == {"type": ["string", "null"], "enum": ["no_time", "too_expensive", None]}
    assert strict["properties"]["address"] == {"anyOf": [{"$ref": "#/$defs/addr"}, {"type": "null"}]}


def test_optional_field_may_come_back_null(fake, make_client):
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string"}, "objection": {"type": "string"}},
        "required": ["summary"],
    }
    fake.queue(content={"summary": "Booked.", "objection": None})
    assert ask(make_client(), json_schema=schema).data == {"summary": "Booked.", "objection": None}


def test_strict_schema_rejects_open_objects():
    with pytest.raises(ValueError, match="additionalProperties"):
        strict_schema({"type": "object", "properties": {"tags": {"type": "object", "additionalProperties": True}}})


# -- cost -----------------------------------------------------------------------------------------


def test_cost_from_recorded_usage(fake, make_client):
    fake.queue(content=VALID, prompt_tokens=12_000, completion_tokens=800)
    result = ask(make_client())
    cost = estimate_cost(result.prompt_tokens, result.completion_tokens, Decimal("0.15"), Decimal("0.60"))
    assert cost == Decimal("0.00228")  # 12000 × 0.15/1M + 800 × 0.60/1M


def test_estimate_cost_accepts_floats_exactly_and_rejects_nonsense():
    assert estimate_cost(1_000_000, 1_000_000, 0.15, 0.6) == Decimal("0.75")
    assert estimate_cost(0, 0, "2.50", "10") == Decimal(0)
    with pytest.raises(ValueError):
        estimate_cost(-1, 0, 1, 1)
    with pytest.raises(ValueError):
        estimate_cost(1, 0, float("nan"), 1)

"""The LLM engine: any OpenAI-compatible chat model, strict JSON-schema structured output.

Two requests per call: the call type (``call_type`` schema), then the analysis against that type's
scorecard (``call_analysis`` schema, built from the clinic's criteria: conditional criteria may be
null, the others may not). Each answer is validated by :class:`ChatClient` against its schema.

* Invalid or truncated output is retried **once** (a truncated one with twice the token budget, an
  invalid one with the validation error added to the prompt); a second failure raises
  :class:`AnalysisOutputError` (permanent: the pipeline fails the call with the reason).
* A refusal or content-filter stop (:class:`LLMRefusal`) is permanent at once: the same call would be
  refused again.
* 429/5xx/timeouts are :class:`~medai.http.TemporaryHttpError` from the HTTP chokepoint (which has
  already retried within its bounds); they propagate and the pipeline retries the stage later.

Token usage of every request (failed attempts included) and its cost are reported on the output.
The overall score is never asked for: :mod:`analysis.scoring` computes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from analysis.catalogue import BOOKING_CRITERION, CALL_TYPE_LABELS_RU, OBJECTIONS
from analysis.engines import AnalysisInput, AnalysisOutput, CriterionResult, Objection, ScorecardSpec
from analysis.models import CLASSIFIABLE_CALL_TYPES, CallType, Disposition
from analysis.prompting import call_context, render
from calls.pipeline import StageError
from medai.integrations.openai_compat.chat import ChatClient, LLMInvalidOutput, LLMRefusal, LLMTruncated, estimate_cost

logger = logging.getLogger("medai.analysis")

INTERESTS = ["high", "medium", "low", "none"]
CLASSIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "call_type": {"type": "string", "enum": [str(t) for t in CLASSIFIABLE_CALL_TYPES]},
        "reason": {"type": "string", "description": "Одно предложение по-русски."},
    },
}


class AnalysisOutputError(StageError):
    """The model's output was unusable twice. Permanent: the call fails with this reason."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, temporary=False)
        self.request_id = request_id


def analysis_schema(scorecard: ScorecardSpec | None) -> dict[str, Any]:
    """The structured-output schema for one call type (``None``: an "other" call, nothing scored)."""
    properties: dict[str, Any] = {}
    if scorecard is not None:
        criteria = {}
        for spec in scorecard.criteria:
            if spec.key == BOOKING_CRITERION:
                continue  # mirrors the booking fact; the model states ``booked`` instead
            score_type: Any = ["number", "null"] if spec.applies_if else "number"
            criteria[spec.key] = {
                "type": "object",
                "properties": {
                    "score": {"type": score_type, "description": "0–10" + (", только 0 или 10" if spec.binary else "")},
                    "comment": {"type": "string"},
                },
            }
        properties["booked"] = {"type": "boolean", "description": "Записался ли пациент в этом разговоре"}
        properties["criteria"] = {"type": "object", "properties": criteria}
        properties["objections"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "enum": list(OBJECTIONS)},
                    "quote": {"type": "string"},
                    "handled": {"type": "boolean"},
                    "comment": {"type": "string"},
                },
            },
        }
    properties.update(
        {
            "summary": {"type": "string"},
            "disposition": {"type": "string", "enum": list(Disposition.values)},
            "follow_up": {"type": "string"},
            "interest": {"type": "string", "enum": INTERESTS},
            "crm_status": {"type": "string"},
            "recommendations": {"type": "array", "items": {"type": "string"}, "description": "2–3 совета"},
        }
    )
    return {"type": "object", "properties": properties}


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_id: str = ""
    model: str = ""

    def add(self, *, prompt_tokens: int, completion_tokens: int, request_id: str | None, model: str | None) -> None:
        self.prompt_tokens += prompt_tokens or 0
        self.completion_tokens += completion_tokens or 0
        self.request_id = request_id or self.request_id
        self.model = model or self.model


def _price(name: str, default: str) -> Decimal:
    return Decimal(str(getattr(settings, name, default)))


class LLMEngine:
    name = "llm"

    def __init__(self, *, api_key: str, base_url: str, model: str) -> None:
        if not base_url or not model:
            raise AnalysisOutputError("The LLM engine needs a base URL and a model (OPENAI_BASE_URL, OPENAI_MODEL).")
        self.api_key = api_key
        self.base_url = base_url
        self.model = model
        self.max_tokens = int(settings.LLM_MAX_OUTPUT_TOKENS)
        # None leaves temperature out (reasoning models accept only their default).
        self.temperature = settings.LLM_TEMPERATURE

    def analyse(self, data: AnalysisInput) -> AnalysisOutput:
        usage = _Usage(model=self.model)
        context = call_context(data)
        with ChatClient(self.api_key, self.base_url, self.model) as client:
            if data.call_type:  # known from the call's source (an outbound AI call): not classified
                classified = {"call_type": data.call_type, "reason": ""}
            else:
                classified = self._ask(
                    client,
                    usage,
                    schema_name="call_type",
                    schema=CLASSIFY_SCHEMA,
                    system=render("classify_system.txt", {}),
                    user=render("classify_user.txt", context),
                )
            call_type = classified["call_type"]
            scorecard = data.scorecards.get(call_type) if call_type != CallType.OTHER else None
            criteria = [c for c in scorecard.criteria if c.key != BOOKING_CRITERION] if scorecard else []
            labels = {"call_type_label": CALL_TYPE_LABELS_RU[call_type], "call_type_reason": classified["reason"]}
            result = self._ask(
                client,
                usage,
                schema_name="call_analysis",
                schema=analysis_schema(scorecard),
                system=render("analyse_system.txt", {**labels, "criteria": criteria}),
                user=render("analyse_user.txt", {**context, **labels}),
            )
        output = self._output(call_type, classified["reason"], result, scorecard)
        output.model = usage.model
        output.prompt_tokens, output.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        output.cost = estimate_cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            _price("LLM_PRICE_INPUT_PER_1M", "0.15"),
            _price("LLM_PRICE_OUTPUT_PER_1M", "0.60"),
        )
        output.request_id = usage.request_id
        return output

    def _ask(self, client: ChatClient, usage: _Usage, *, schema_name: str, schema: dict, system: str, user: str) -> dict:
        max_tokens = self.max_tokens
        note = ""
        for attempt in (1, 2):
            try:
                result = client.structured(
                    system=system,
                    user=user + note,
                    schema_name=schema_name,
                    json_schema=schema,
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                )
            except (LLMInvalidOutput, LLMTruncated) as exc:
                usage.add(
                    prompt_tokens=exc.prompt_tokens,
                    completion_tokens=exc.completion_tokens,
                    request_id=exc.request_id,
                    model=exc.model,
                )
                kind = "truncated" if isinstance(exc, LLMTruncated) else "invalid"
                # Not the message: it may quote the model's output, i.e. the patient's words.
                logger.warning("LLM %s output for %s (attempt %d, request %s)", kind, schema_name, attempt, exc.request_id)
                if attempt == 2:
                    raise AnalysisOutputError(
                        f"LLM output {kind} twice for {schema_name!r} "
                        f"({usage.prompt_tokens}+{usage.completion_tokens} tokens spent): {exc}",
                        request_id=exc.request_id,
                    ) from exc
                if isinstance(exc, LLMTruncated):
                    max_tokens = max_tokens * 2
                else:
                    note = (
                        "\nПредыдущий ответ отклонён: он не соответствовал JSON-схеме "
                        f"({str(exc)[-300:]}). Ответь строго по схеме.\n"
                    )
                continue
            except LLMRefusal as exc:
                raise AnalysisOutputError(f"The model refused to analyse the call ({exc.reason}): {exc}", request_id=exc.request_id) from exc
            usage.add(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                request_id=result.request_id,
                model=result.model,
            )
            return result.data
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _output(call_type: str, reason: str, data: dict, scorecard: ScorecardSpec | None) -> AnalysisOutput:
        titles = {c.key: c.title for c in scorecard.criteria} if scorecard else {}
        criteria = [
            CriterionResult(key, titles.get(key, key), item.get("score"), True, (item.get("comment") or "").strip())
            for key, item in (data.get("criteria") or {}).items()
        ]
        objections = [
            Objection(key=o["key"], quote=o.get("quote", ""), handled=bool(o.get("handled")), comment=o.get("comment", ""))
            for o in data.get("objections") or []
        ]
        return AnalysisOutput(
            engine="llm",
            call_type=call_type,
            call_type_reason=reason.strip(),
            criteria=criteria,
            booked=data.get("booked") if call_type != CallType.OTHER else None,
            objections=objections,
            summary=data.get("summary", "").strip(),
            disposition=data.get("disposition", ""),
            follow_up=data.get("follow_up", "").strip(),
            interest=data.get("interest", "unknown"),
            crm_status=data.get("crm_status", "").strip()[:100],
            recommendations=list(data.get("recommendations") or []),
        )

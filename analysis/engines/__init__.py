"""Analysis engines: every engine turns the same input into the same output shape.

* ``rules`` — offline, free, phrase rules per criterion: the documented baseline, used when no LLM
  is configured;
* ``llm`` — any OpenAI-compatible chat model with strict JSON-schema structured output, validated.

Which one runs: the clinic's ``ClinicAnalysisSettings.engine`` unless it is "auto", else the
``ANALYSIS_ENGINE`` setting; "auto" there means the LLM when an API key is configured (the clinic's
or ``OPENAI_API_KEY``), else the rules. Engines return raw judgements; :mod:`analysis.scoring`
then applies the scorecard (binary, conditions, weights, booking fact) and computes the overall score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

ENGINE_CHOICES = ("auto", "rules", "llm")


@dataclass(frozen=True)
class Turn:
    role: str  # administrator | patient | other
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class CriterionSpec:
    key: str
    title: str  # Russian, the product's content language
    title_en: str = ""
    rubric: str = ""
    binary: bool = False
    applies_if: str = ""  # "" | "booked" | "objection"
    weight: Decimal = Decimal("1")
    rule_phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScorecardSpec:
    call_type: str
    version: int
    criteria: tuple[CriterionSpec, ...]


@dataclass(frozen=True)
class AnalysisInput:
    clinic_name: str
    direction: str  # inbound | outbound
    duration_seconds: int
    turns: list[Turn]
    crm_booked: bool | None = None
    scorecards: Mapping[str, ScorecardSpec] = field(default_factory=dict)
    clinic_context: str = ""
    started_at_local: str = ""  # "2026-11-16 09:14 (пн)" in the clinic's time zone
    administrator_name: str = ""
    traffic_source: str = ""
    lead_processing_minutes: int | None = None
    # Set for calls whose type is known from their source (outbound AI calls): no classification.
    call_type: str = ""
    purpose: str = ""  # the goal an outbound AI call was given


@dataclass
class CriterionResult:
    key: str
    title: str
    score: int | None
    applicable: bool
    comment: str


@dataclass
class Objection:
    key: str
    quote: str
    handled: bool
    comment: str = ""
    label: str = ""


@dataclass
class AnalysisOutput:
    engine: str
    call_type: str
    call_type_reason: str = ""
    criteria: list[CriterionResult] = field(default_factory=list)
    booked: bool | None = None  # from the transcript; None for "other"
    objections: list[Objection] = field(default_factory=list)
    summary: str = ""
    disposition: str = ""
    follow_up: str = ""
    interest: str = "unknown"
    crm_status: str = ""
    recommendations: list[str] = field(default_factory=list)
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal("0")
    request_id: str = ""
    scorecard_version: str = ""


class Engine(Protocol):
    name: str

    def analyse(self, data: AnalysisInput) -> AnalysisOutput: ...


@dataclass(frozen=True)
class EngineConfig:
    """The resolved engine for one clinic (no secrets in ``describe``)."""

    engine: str  # "rules" | "llm"
    api_key: str = ""
    base_url: str = ""
    model: str = ""

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, "model": self.model, "base_url": self.base_url}


def engine_config_for(clinic) -> EngineConfig:
    """Which engine analyses ``clinic``'s calls, with the clinic's overrides applied."""
    from django.conf import settings

    from analysis.models import ClinicAnalysisSettings

    own = ClinicAnalysisSettings.objects.filter(clinic=clinic).first() if clinic is not None else None
    api_key = (own.llm_api_key if own else "") or settings.OPENAI_API_KEY
    base_url = (own.llm_base_url if own else "") or settings.OPENAI_BASE_URL
    model = (own.llm_model if own else "") or settings.OPENAI_MODEL
    choice = own.engine if own and own.engine != "auto" else settings.ANALYSIS_ENGINE
    if choice not in ENGINE_CHOICES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"ANALYSIS_ENGINE must be one of {', '.join(ENGINE_CHOICES)}, got {choice!r}")
    if choice == "auto":
        # A provider is on when its key is present; a keyless self-hosted server is chosen explicitly.
        choice = "llm" if api_key else "rules"
    if choice == "rules":
        return EngineConfig("rules")
    return EngineConfig("llm", api_key=api_key, base_url=base_url, model=model)


def outbound_chat_config(clinic):
    """The clinic's LLM for the outbound AI call's replies (None when it analyses with rules).

    Registered with :mod:`calls.outbound.conversation` at start-up, so ``calls`` never imports us.
    """
    from calls.outbound.conversation import ChatConfig

    config = engine_config_for(clinic)
    if config.engine != "llm" or not config.base_url or not config.model:
        return None
    return ChatConfig(api_key=config.api_key, base_url=config.base_url, model=config.model)


def get_engine(config: EngineConfig | None = None) -> Engine:
    """The engine for a resolved config (rules when none is given). Imported lazily."""
    if config is None or config.engine == "rules":
        from analysis.engines.rules import RuleEngine

        return RuleEngine()
    from analysis.engines.llm import LLMEngine

    return LLMEngine(api_key=config.api_key, base_url=config.base_url, model=config.model)

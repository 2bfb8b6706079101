"""Analysis engines: every engine turns the same input into the same output shape.

* ``rules`` — offline, free, phrase rules per criterion (the baseline; used when no LLM is set up);
* ``llm`` — any OpenAI-compatible chat model with validated structured output (analysis issue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Turn:
    role: str  # administrator | patient | other
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class AnalysisInput:
    clinic_name: str
    direction: str  # inbound | outbound
    duration_seconds: int
    turns: list[Turn]
    crm_booked: bool | None = None


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


@dataclass
class AnalysisOutput:
    engine: str
    call_type: str
    call_type_reason: str = ""
    criteria: list[CriterionResult] = field(default_factory=list)
    booked: bool | None = None
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
    cost: float = 0.0


class Engine(Protocol):
    name: str

    def analyse(self, data: AnalysisInput) -> AnalysisOutput: ...


def get_engine(clinic=None) -> Engine:
    """The configured engine. With no LLM configured the offline rule engine is used."""
    from analysis.engines.rules import RuleEngine

    return RuleEngine()

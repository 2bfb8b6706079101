"""Writes for analysis: run the engine on a call and store one validated result."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from analysis.engines import AnalysisInput, AnalysisOutput, Turn, get_engine
from analysis.models import Analysis
from calls.models import Call, Transcript
from calls.pipeline import StageError, StepResult


def overall_score(criteria) -> Decimal | None:
    """Mean of the applicable criteria (binary ones count as 0 or 10); None if nothing applies."""
    scores = [c.score for c in criteria if c.applicable and c.score is not None]
    if not scores:
        return None
    return (Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def analysis_input_for(call: Call, transcript: Transcript) -> AnalysisInput:
    turns = [
        Turn(role=u.get("role") or Transcript.Role.OTHER, start=float(u["start"]), end=float(u["end"]), text=u["text"])
        for u in transcript.utterances
    ]
    crm_booked = call.booked if call.booked_source == Call.BookedSource.CRM else None
    return AnalysisInput(
        clinic_name=call.clinic.name,
        direction=call.direction,
        duration_seconds=call.duration_seconds,
        turns=turns,
        crm_booked=crm_booked,
    )


def analysis_save(*, call: Call, output: AnalysisOutput) -> Analysis:
    for criterion in output.criteria:
        if criterion.applicable and criterion.score is not None and not 0 <= criterion.score <= 10:
            raise StageError(f"criterion {criterion.key} scored {criterion.score}, outside 0..10")
    values = {
        "engine": output.engine,
        "engine_model": output.model,
        "call_type": output.call_type,
        "call_type_reason": output.call_type_reason,
        "criteria": [vars(c) for c in output.criteria],
        "overall_score": overall_score(output.criteria),
        "booked": output.booked,
        "objections": [vars(o) for o in output.objections],
        "summary": output.summary,
        "disposition": output.disposition,
        "follow_up": output.follow_up,
        "interest": output.interest,
        "crm_status": output.crm_status,
        "recommendations": output.recommendations,
        "prompt_tokens": output.prompt_tokens,
        "completion_tokens": output.completion_tokens,
        "cost": Decimal(str(output.cost)),
    }
    with transaction.atomic():
        analysis, _ = Analysis.objects.update_or_create(call=call, defaults=values)
        # The CRM's booking fact wins over the transcript's.
        if call.booked_source != Call.BookedSource.CRM and output.booked is not None:
            Call.objects.filter(pk=call.pk).update(booked=output.booked, booked_source=Call.BookedSource.TRANSCRIPT)
    return analysis


def step_analyse(call: Call) -> StepResult:
    transcript = Transcript.objects.filter(call=call).first()
    if transcript is None or not transcript.utterances:
        raise StageError("No transcript to analyse")
    engine = get_engine(call.clinic)
    output = engine.analyse(analysis_input_for(call, transcript))
    analysis = analysis_save(call=call, output=output)
    return StepResult(detail={"engine": output.engine, "call_type": output.call_type, "score": str(analysis.overall_score)})

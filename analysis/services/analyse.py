"""The pipeline's ``analyse`` step: run the clinic's engine on a call and store one validated result."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from analysis.engines import AnalysisInput, AnalysisOutput, Turn, engine_config_for, get_engine
from analysis.metrics import conversation_metrics
from analysis.models import AI_CALL_TYPES, Analysis, CallType
from analysis.scoring import finalise
from analysis.selectors import scorecard_specs
from analysis.services.scorecards import scorecard_ensure_default
from calls.models import Call, Transcript
from calls.pipeline import StageError, StepResult

WEEKDAYS_RU = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
# Booking facts that outrank the transcript: the CRM's, and an operator's correction.
AUTHORITATIVE_BOOKING = (Call.BookedSource.CRM, Call.BookedSource.MANUAL)


def _outbound_purpose(call: Call) -> str:
    """The goal an outbound AI call was given (its purpose, else the start of its prompt)."""
    from calls.models import OutboundCall

    outbound = OutboundCall.objects.filter(call=call).only("purpose", "prompt", "greeting").first()
    if outbound is None:
        return ""
    return (outbound.purpose or outbound.prompt[:500] or outbound.greeting[:300]).strip()


def analysis_input_for(call: Call, transcript: Transcript, *, scorecards=None) -> AnalysisInput:
    from analysis.models import ClinicAnalysisSettings

    turns = [
        Turn(role=u.get("role") or Transcript.Role.OTHER, start=float(u["start"]), end=float(u["end"]), text=u["text"])
        for u in transcript.utterances
    ]
    local = call.started_at.astimezone(call.clinic.tz)
    settings_row = ClinicAnalysisSettings.objects.filter(clinic=call.clinic).only("context").first()
    return AnalysisInput(
        clinic_name=call.clinic.name,
        direction=call.direction,
        duration_seconds=call.duration_seconds,
        turns=turns,
        crm_booked=call.booked if call.booked_source in AUTHORITATIVE_BOOKING else None,
        scorecards=scorecards if scorecards is not None else scorecard_specs(call.clinic),
        clinic_context=settings_row.context if settings_row else "",
        started_at_local=f"{local:%Y-%m-%d %H:%M} ({WEEKDAYS_RU[local.weekday()]})",
        administrator_name=call.administrator.name if call.administrator_id else "",
        traffic_source=call.traffic_source,
        lead_processing_minutes=call.lead_processing_minutes,
        call_type=CallType.OUTBOUND if call.source == Call.Source.OUTBOUND else "",
        purpose=_outbound_purpose(call) if call.source == Call.Source.OUTBOUND else "",
    )


def analysis_save(*, call: Call, output: AnalysisOutput, overall: Decimal | None, metrics: dict) -> Analysis:
    """Store the result (one row per call) and the transcript's booking fact on the call."""
    for criterion in output.criteria:
        if criterion.score is not None and not 0 <= criterion.score <= 10:
            raise StageError(f"criterion {criterion.key} scored {criterion.score}, outside 0..10")
    values = {
        "engine": output.engine,
        "engine_model": output.model[:64],
        "scorecard_version": output.scorecard_version,
        "call_type": output.call_type,
        "call_type_reason": output.call_type_reason,
        "criteria": [
            {"key": c.key, "title": c.title, "score": c.score, "applicable": c.applicable, "comment": c.comment}
            for c in output.criteria
        ],
        "overall_score": overall,
        "booked": output.booked,
        "objections": [
            {"key": o.key, "label": o.label, "quote": o.quote, "handled": o.handled, "comment": o.comment}
            for o in output.objections
        ],
        "summary": output.summary,
        "disposition": output.disposition[:100],
        "follow_up": output.follow_up,
        "interest": output.interest if output.interest in Analysis.Interest.values else Analysis.Interest.UNKNOWN,
        "crm_status": output.crm_status[:100],
        "recommendations": output.recommendations,
        "metrics": metrics,
        "prompt_tokens": output.prompt_tokens,
        "completion_tokens": output.completion_tokens,
        "cost": Decimal(output.cost).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP),
    }
    with transaction.atomic():
        analysis, _ = Analysis.objects.update_or_create(call=call, defaults=values)
        # The CRM's booking fact (or an operator's correction) wins over the transcript's: one
        # conditional UPDATE, so a CRM booking written meanwhile by the sync is never overwritten.
        source = Call.BookedSource.TRANSCRIPT if output.booked is not None else Call.BookedSource.NONE
        Call.objects.filter(pk=call.pk).exclude(booked_source__in=AUTHORITATIVE_BOOKING).update(
            booked=output.booked, booked_source=source
        )
    return analysis


def call_analyse(call: Call) -> StepResult:
    """Analyse one transcribed call (the handler of the pipeline's ``analyse`` step)."""
    transcript = Transcript.objects.filter(call=call).first()
    if transcript is None or not transcript.utterances:
        raise StageError("No transcript to analyse")
    scorecard_ensure_default(call.clinic)
    if call.source == Call.Source.OUTBOUND:
        scorecard_ensure_default(call.clinic, call_types=AI_CALL_TYPES)
    config = engine_config_for(call.clinic)
    data = analysis_input_for(call, transcript)
    output = get_engine(config).analyse(data)
    output, overall = finalise(output, data)
    metrics = conversation_metrics(
        transcript.utterances, words=transcript.words, roles=transcript.roles, duration_seconds=call.duration_seconds
    )
    analysis = analysis_save(call=call, output=output, overall=overall, metrics=metrics)
    return StepResult(
        request_id=output.request_id,
        detail={
            "engine": output.engine,
            "model": output.model,
            "call_type": output.call_type,
            "score": str(analysis.overall_score) if analysis.overall_score is not None else None,
            "scorecard_version": output.scorecard_version,
            "tokens": output.prompt_tokens + output.completion_tokens,
            "cost": str(analysis.cost),
        },
    )


step_analyse = call_analyse

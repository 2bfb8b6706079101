"""From an engine's raw judgements to the stored result: the same rules for every engine.

* Only the scorecard's criteria are kept, in the scorecard's order; anything else is dropped.
* Scores are clamped to 0..10 and rounded to whole points; **binary** criteria become 0 or 10
  (5 and above count as done).
* **Conditional** criteria are excluded — not scored 0 — when their condition does not hold:
  ``booked`` applies only if the patient booked (the CRM's fact wins over the transcript's),
  ``objection`` only if the patient raised one of the typical objections.
* The ``booked`` criterion mirrors the booking fact, whatever the engine said.
* A criterion the engine did not score is excluded and marked "not assessed".
* The **overall score** is the weighted mean of the applicable, scored criteria
  (``sum(weight * score) / sum(weight)``; with the default weights of 1 it is the plain mean),
  rounded to 0.01. It is computed here, never taken from a model. "Other" calls get none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal

from analysis.catalogue import BOOKING_CRITERION, OBJECTIONS
from analysis.engines import AnalysisInput, AnalysisOutput, CriterionResult, Objection
from analysis.models import CallType

NOT_APPLICABLE_BOOKED = "Не применимо: пациент не записан"
NOT_APPLICABLE_OBJECTION = "Не применимо: возражений не было"
NOT_ASSESSED = "Не оценено"


class ScorecardMissing(Exception):
    temporary = False


def coerce_score(value, *, binary: bool) -> int | None:
    """A whole score in 0..10 (0 or 10 when binary), or None when there is no usable number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    number = min(10.0, max(0.0, number))
    if binary:
        return 10 if number >= 5 else 0
    return int(Decimal(str(number)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def overall_score(criteria: Iterable[CriterionResult], weights: Mapping[str, Decimal] | None = None) -> Decimal | None:
    """Weighted mean of the applicable, scored criteria; None if nothing counts."""
    weights = weights or {}
    total = Decimal(0)
    weight_sum = Decimal(0)
    for criterion in criteria:
        if not criterion.applicable or criterion.score is None:
            continue
        weight = Decimal(weights.get(criterion.key, Decimal(1)))
        total += weight * Decimal(criterion.score)
        weight_sum += weight
    if not weight_sum:
        return None
    return (total / weight_sum).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def booking_fact(output: AnalysisOutput, data: AnalysisInput) -> bool:
    """Booked or not, for scoring: the CRM's fact when known, else the transcript's."""
    if data.crm_booked is not None:
        return data.crm_booked
    return bool(output.booked)


def clean_objections(objections: Iterable[Objection]) -> list[Objection]:
    """Only the six typical objections, once each, with their Russian label."""
    seen: dict[str, Objection] = {}
    for objection in objections:
        if objection.key in OBJECTIONS and objection.key not in seen:
            objection.label = OBJECTIONS[objection.key][0]
            objection.quote = (objection.quote or "")[:300]
            seen[objection.key] = objection
    return list(seen.values())


def finalise(output: AnalysisOutput, data: AnalysisInput) -> tuple[AnalysisOutput, Decimal | None]:
    """Apply the call type's scorecard to ``output`` (in place). Returns (output, overall score)."""
    if output.call_type not in CallType.values:
        raise ValueError(f"unknown call type {output.call_type!r}")
    output.recommendations = [r.strip() for r in output.recommendations if r and r.strip()][:3]
    if output.call_type == CallType.OTHER:
        # Not a patient conversation: nothing is scored and booking does not apply.
        output.criteria = []
        output.booked = None
        output.objections = []
        output.scorecard_version = ""
        return output, None
    scorecard = data.scorecards.get(output.call_type)
    if scorecard is None:
        raise ScorecardMissing(f"The clinic has no scorecard for call type {output.call_type!r}")
    output.objections = clean_objections(output.objections)
    booked = booking_fact(output, data)
    raw = {c.key: c for c in output.criteria}
    results: list[CriterionResult] = []
    for spec in scorecard.criteria:
        item = raw.get(spec.key)
        comment = (item.comment if item else "").strip()
        if spec.applies_if == "booked" and not booked:
            results.append(CriterionResult(spec.key, spec.title, None, False, NOT_APPLICABLE_BOOKED))
            continue
        if spec.applies_if == "objection" and not output.objections:
            results.append(CriterionResult(spec.key, spec.title, None, False, NOT_APPLICABLE_OBJECTION))
            continue
        if spec.key == BOOKING_CRITERION:
            score = 10 if booked else 0
            if data.crm_booked is not None:
                comment = "По данным CRM: " + ("пациент записан" if booked else "записи нет")
            elif not comment:
                comment = "Пациент записан" if booked else "Пациент не записан"
            results.append(CriterionResult(spec.key, spec.title, score, True, comment))
            continue
        score = coerce_score(item.score if item else None, binary=spec.binary)
        if score is None:
            results.append(CriterionResult(spec.key, spec.title, None, False, f"{NOT_ASSESSED}. {comment}".strip(". ")))
            continue
        results.append(CriterionResult(spec.key, spec.title, score, True, comment))
    output.criteria = results
    output.scorecard_version = str(scorecard.version)
    return output, overall_score(results, {spec.key: spec.weight for spec in scorecard.criteria})

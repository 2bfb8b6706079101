"""Reads for analysis: scorecards as engine specs, summary figures for a period, listings."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Prefetch, QuerySet

from analysis.catalogue import CALL_TYPE_LABELS_RU, OBJECTIONS
from analysis.engines import CriterionSpec, ScorecardSpec
from analysis.models import AI_CALL_TYPES, SCORED_CALL_TYPES, Analysis, CallType, Criterion, PeriodSummary, Scorecard
from calls.models import Call

STRONG_FROM = Decimal("8")
GROWTH_FROM = Decimal("5")
LOW_SCORE = 5  # a criterion scored below this in a call counts as a problem in that call
ZONE_LABELS = {"strong": "сильная зона", "growth": "зона роста", "critical": "критическая зона"}


def scorecard_queryset(queryset: QuerySet[Scorecard] | None = None) -> QuerySet[Scorecard]:
    queryset = queryset if queryset is not None else Scorecard.objects.all()
    return queryset.select_related("clinic").prefetch_related(
        Prefetch("criteria", queryset=Criterion.objects.order_by("position", "id"))
    )


def scorecard_specs(clinic) -> dict[str, ScorecardSpec]:
    """The clinic's scorecards as engine input, by call type."""
    specs: dict[str, ScorecardSpec] = {}
    for scorecard in scorecard_queryset(Scorecard.objects.filter(clinic=clinic)):
        specs[scorecard.call_type] = ScorecardSpec(
            call_type=scorecard.call_type,
            version=scorecard.version,
            criteria=tuple(
                CriterionSpec(
                    key=c.key,
                    title=c.title_ru,
                    title_en=c.title_en,
                    rubric=c.rubric,
                    binary=c.binary,
                    applies_if=c.applies_if,
                    weight=c.weight,
                    rule_phrases=tuple(line.strip() for line in c.rule_phrases.splitlines() if line.strip()),
                )
                for c in scorecard.criteria.all()
            ),
        )
    return specs


# --- period summaries -------------------------------------------------------------------------
def zone(average: Decimal | None) -> str | None:
    """Coaching zone of an average score: ≥ 8 strong, 5–8 growth, < 5 critical."""
    if average is None:
        return None
    if average >= STRONG_FROM:
        return "strong"
    return "growth" if average >= GROWTH_FROM else "critical"


def _mean(values: list) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(Decimal(str(v)) for v in values)) / len(values)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def period_figures(*, clinic, start: date, end: date, administrator=None) -> dict:
    """Criterion averages per call type (types never mixed), zones, recurring problems.

    Only analysed calls count. Averages are over the calls where the criterion applied and was
    scored (an excluded criterion is not a zero). Call duration is not a criterion and is not here.
    """
    # AI calls are not the clinic's people at work: they are left out of coaching figures.
    calls = Call.objects.filter(clinic=clinic, local_date__gte=start, local_date__lte=end).exclude(
        source=Call.Source.OUTBOUND
    )
    if administrator is not None:
        calls = calls.filter(administrator=administrator)
    rows = Analysis.objects.filter(call__in=calls).values_list("call_type", "overall_score", "criteria", "objections")
    per_type: dict[str, dict] = {}
    objections_raised: dict[str, int] = defaultdict(int)
    objections_unhandled: dict[str, int] = defaultdict(int)
    overall_all: list[Decimal] = []
    other_calls = 0
    for call_type, overall, criteria, objections in rows:
        if call_type in AI_CALL_TYPES:
            continue  # coaching is for people: an AI call's scorecard is about its prompt
        if call_type == CallType.OTHER:
            other_calls += 1
            continue
        bucket = per_type.setdefault(call_type, {"calls": 0, "overall": [], "criteria": {}})
        bucket["calls"] += 1
        if overall is not None:
            bucket["overall"].append(overall)
            overall_all.append(overall)
        for item in criteria or []:
            if not item.get("applicable") or item.get("score") is None:
                continue
            entry = bucket["criteria"].setdefault(item["key"], {"title": item.get("title") or item["key"], "scores": []})
            entry["scores"].append(item["score"])
        for objection in objections or []:
            objections_raised[objection.get("key")] += 1
            objections_unhandled[objection.get("key")] += not objection.get("handled")

    types = []
    problems = []
    for call_type in [t for t in SCORED_CALL_TYPES if t in per_type]:
        bucket = per_type[call_type]
        criteria = []
        for key, entry in bucket["criteria"].items():
            average = _mean(entry["scores"])
            low = sum(1 for s in entry["scores"] if s < LOW_SCORE)
            criteria.append(
                {"key": key, "title": entry["title"], "average": str(average), "count": len(entry["scores"]),
                 "low": low, "zone": zone(average)}
            )
            if low:
                problems.append(
                    {"kind": "criterion", "call_type": str(call_type), "key": key, "title": entry["title"], "count": low,
                     "of": len(entry["scores"]), "share": round(low / len(entry["scores"]), 2)}
                )
        criteria.sort(key=lambda c: Decimal(c["average"]))
        average = _mean(bucket["overall"])
        types.append(
            {
                "call_type": str(call_type),
                "label": CALL_TYPE_LABELS_RU[call_type],
                "calls": bucket["calls"],
                "scored": len(bucket["overall"]),
                "average": str(average) if average is not None else None,
                "zone": zone(average),
                "criteria": criteria,
                "strong": [c["key"] for c in criteria if c["zone"] == "strong"],
                "growth": [c["key"] for c in criteria if c["zone"] == "growth"],
                "critical": [c["key"] for c in criteria if c["zone"] == "critical"],
            }
        )
    for key, unhandled in objections_unhandled.items():
        if unhandled and key in OBJECTIONS:
            problems.append(
                {"kind": "objection", "key": key, "title": f"Возражение «{OBJECTIONS[key][0]}» не отработано",
                 "count": unhandled, "of": objections_raised[key], "share": round(unhandled / objections_raised[key], 2)}
            )
    problems.sort(key=lambda p: (-p["count"], -p["share"], p["title"]))
    average_all = _mean(overall_all)
    return {
        "calls_total": calls.count(),
        "calls_analysed": sum(b["calls"] for b in per_type.values()) + other_calls,
        "calls_scored": len(overall_all),
        "calls_other": other_calls,
        "average_score": str(average_all) if average_all is not None else None,
        "types": types,
        "problems": problems[:5],
        "objections": {key: {"raised": objections_raised[key], "unhandled": objections_unhandled[key]} for key in objections_raised if key in OBJECTIONS},
    }


def period_summary_list(
    *,
    queryset: QuerySet[PeriodSummary] | None = None,
    clinic_id: int | None = None,
    kind: str | None = None,
    administrator_id: int | None = None,
    clinic_only: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[PeriodSummary]:
    qs = (queryset if queryset is not None else PeriodSummary.objects.all()).select_related("clinic", "administrator")
    if clinic_id:
        qs = qs.filter(clinic_id=clinic_id)
    if kind:
        qs = qs.filter(kind=kind)
    if administrator_id:
        qs = qs.filter(administrator_id=administrator_id)
    elif clinic_only:
        qs = qs.filter(administrator__isnull=True)
    if date_from:
        qs = qs.filter(end__gte=date_from)
    if date_to:
        qs = qs.filter(start__lte=date_to)
    return qs.order_by("-start", "clinic_id", "kind", "administrator_id")

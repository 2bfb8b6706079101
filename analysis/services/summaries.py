"""Weekly and monthly coaching summaries per clinic and per administrator.

Periods are clinic-local (a week runs Monday to Sunday, a month from the 1st). The figures come from
:func:`analysis.selectors.period_figures`; the recommendations are written by the clinic's LLM when
one is configured, else templated from the weakest criteria. An LLM failure never loses a summary:
it falls back to the template and records the error in ``data["llm_error"]``.

:func:`period_summaries_generate_due` runs hourly (``calls.schedules``) and generates, for every
clinic in its own time zone, the week and the month that closed (after a short grace period so late
calls are analysed first). It is idempotent: a summary of a closed period is generated once.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis.catalogue import recommendation_for
from analysis.engines import engine_config_for
from analysis.models import Analysis, PeriodSummary
from analysis.prompting import render
from analysis.selectors import ZONE_LABELS, period_figures
from clinics.models import Administrator, Clinic
from medai.http import HttpError
from medai.timeutils import month_start, week_start

logger = logging.getLogger("medai.analysis")

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"recommendations": {"type": "array", "items": {"type": "string"}, "description": "3–5 советов"}},
}


def period_bounds(kind: str, day: date) -> tuple[date, date]:
    """First and last day of the week/month containing ``day``."""
    if kind == PeriodSummary.Kind.WEEK:
        start = week_start(day)
        return start, start + timedelta(days=6)
    if kind == PeriodSummary.Kind.MONTH:
        start = month_start(day)
        return start, start.replace(day=calendar.monthrange(start.year, start.month)[1])
    raise ValueError(f"unknown period kind {kind!r}")


def _templated(figures: dict) -> list[str]:
    lines = []
    for severity in ("critical", "growth"):
        for block in figures["types"]:
            for criterion in block["criteria"]:  # sorted weakest first
                if criterion["zone"] == severity:
                    lines.append(
                        f"«{block['label']}» · {criterion['title']} ({criterion['average']}, {ZONE_LABELS[severity]}): "
                        + recommendation_for(criterion["key"], criterion["title"])
                    )
    for problem in figures["problems"]:
        if problem["kind"] == "objection":
            lines.append(f"{problem['title']} в {problem['count']} из {problem['of']} случаев: " + recommendation_for("objections"))
    strong = [(b["label"], c["title"]) for b in figures["types"] for c in reversed(b["criteria"]) if c["zone"] == "strong"]
    if strong:
        label, title = strong[0]
        lines.append(f"Сильная сторона — «{title}» в звонках типа «{label}»: сохраняйте этот уровень.")
    return lines[:5]


def _llm_recommendations(*, clinic: Clinic, figures: dict, scope: str, period: str) -> tuple[list[str], dict]:
    from medai.integrations.openai_compat.chat import ChatClient, estimate_cost

    config = engine_config_for(clinic)
    types = [
        {**block, "criteria": [{**c, "zone_label": ZONE_LABELS.get(c["zone"], "")} for c in block["criteria"]]}
        for block in figures["types"]
    ]
    problems = [{"text": f"{p['title']}: {p['count']} из {p['of']}"} for p in figures["problems"]]
    context = {**figures, "types": types, "problems": problems, "scope": scope, "period": period}
    with ChatClient(config.api_key, config.base_url, config.model) as client:
        result = client.structured(
            system=render("summary_system.txt", {}),
            user=render("summary_user.txt", context),
            schema_name="period_recommendations",
            json_schema=SUMMARY_SCHEMA,
            max_tokens=int(settings.LLM_MAX_OUTPUT_TOKENS),
            temperature=settings.LLM_TEMPERATURE,
        )
    cost = estimate_cost(
        result.prompt_tokens,
        result.completion_tokens,
        Decimal(str(settings.LLM_PRICE_INPUT_PER_1M)),
        Decimal(str(settings.LLM_PRICE_OUTPUT_PER_1M)),
    )
    lines = [line.strip() for line in result.data["recommendations"] if line and line.strip()][:5]
    usage = {"model": result.model, "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens, "cost": cost}
    return lines, usage


def period_summary_generate(
    *, clinic: Clinic, kind: str, day: date, administrator: Administrator | None = None, use_llm: bool = True
) -> PeriodSummary:
    """(Re)generate the summary of the period containing ``day``. Returns the stored row."""
    if administrator is not None and administrator.clinic_id != clinic.pk:
        raise ValueError("the administrator belongs to another clinic")
    start, end = period_bounds(kind, day)
    figures = period_figures(clinic=clinic, start=start, end=end, administrator=administrator)
    recommendations, source, usage = _templated(figures), PeriodSummary.Source.TEMPLATE, {}
    if use_llm and figures["calls_scored"] and engine_config_for(clinic).engine == "llm":
        scope = f"Администратор {administrator.name}" if administrator else f"Клиника «{clinic.name}»"
        try:
            lines, usage = _llm_recommendations(clinic=clinic, figures=figures, scope=scope, period=f"{start:%d.%m.%Y}–{end:%d.%m.%Y}")
            if lines:
                recommendations, source = lines, PeriodSummary.Source.LLM
        except HttpError as exc:  # includes refusals, invalid and truncated output
            logger.warning("period summary for clinic %s: LLM failed, templated instead: %s", clinic.pk, exc)
            figures["llm_error"] = str(exc)[:500]
    local_today = timezone.now().astimezone(clinic.tz).date()
    average = figures["average_score"]
    values = {
        "end": end,
        "complete": end < local_today,
        "calls_total": figures["calls_total"],
        "calls_scored": figures["calls_scored"],
        "average_score": Decimal(average) if average is not None else None,
        "data": figures,
        "recommendations": recommendations,
        "recommendations_source": source,
        "engine_model": usage.get("model", "")[:64],
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "cost": Decimal(usage.get("cost", 0)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP),
    }
    lookup = {"clinic": clinic, "administrator": administrator, "kind": kind, "start": start}
    try:
        with transaction.atomic():
            summary, _ = PeriodSummary.objects.update_or_create(**lookup, defaults=values)
    except IntegrityError:  # generated concurrently: update the row the other process created
        PeriodSummary.objects.filter(**lookup).update(**values)
        summary = PeriodSummary.objects.get(**lookup)
    return summary


def _closed_period(kind: str, local_now: datetime, grace: timedelta) -> tuple[date, date] | None:
    """The last period that closed at least ``grace`` ago, clinic-local; None while in the grace time."""
    today = local_now.date()
    boundary = week_start(today) if kind == PeriodSummary.Kind.WEEK else month_start(today)
    closed_at = datetime.combine(boundary, time.min, tzinfo=local_now.tzinfo)
    if local_now - closed_at < grace:
        return None
    return period_bounds(kind, boundary - timedelta(days=1))


def period_summaries_generate_due(*, now: datetime | None = None) -> int:
    """Generate every closed week/month summary not generated yet, per clinic and administrator.

    Periods without any analysed call are skipped (no empty summaries for months before a clinic
    started); a summary that exists for a closed period is never regenerated here.
    """
    now = now or timezone.now()
    grace = timedelta(hours=float(settings.PERIOD_SUMMARY_DELAY_HOURS))
    generated = 0
    for clinic in Clinic.objects.filter(is_active=True):
        local_now = now.astimezone(clinic.tz)
        for kind in PeriodSummary.Kind.values:
            period = _closed_period(kind, local_now, grace)
            if period is None:
                continue
            start, end = period
            done = set(
                PeriodSummary.objects.filter(clinic=clinic, kind=kind, start=start, complete=True).values_list(
                    "administrator_id", flat=True
                )
            )
            analysed = Analysis.objects.filter(call__clinic=clinic, call__local_date__gte=start, call__local_date__lte=end)
            if not analysed.exists():
                continue  # nothing to coach on (e.g. before the clinic started); checked again next hour
            administrators = Administrator.objects.filter(pk__in=analysed.values("call__administrator_id"))
            for administrator in [None, *administrators]:
                if (administrator.pk if administrator else None) in done:
                    continue
                try:
                    period_summary_generate(clinic=clinic, kind=kind, day=start, administrator=administrator)
                    generated += 1
                except Exception:  # one clinic's problem must not stop the others
                    logger.exception("period summary %s %s for clinic %s failed", kind, start, clinic.pk)
    return generated

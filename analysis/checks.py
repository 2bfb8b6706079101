"""System checks for the analysis settings (run by ``manage.py check`` and at start-up)."""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.checks import Error, Warning, register

from analysis.engines import ENGINE_CHOICES


@register()
def analysis_settings_check(app_configs, **kwargs):
    problems = []
    engine = settings.ANALYSIS_ENGINE
    if engine not in ENGINE_CHOICES:
        problems.append(
            Error(f"ANALYSIS_ENGINE must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}", id="analysis.E001")
        )
    if engine == "llm" and not (settings.OPENAI_BASE_URL and settings.OPENAI_MODEL):
        problems.append(Error("ANALYSIS_ENGINE=llm needs OPENAI_BASE_URL and OPENAI_MODEL", id="analysis.E002"))
    if engine == "llm" and not settings.OPENAI_API_KEY:
        problems.append(
            Warning(
                "ANALYSIS_ENGINE=llm without OPENAI_API_KEY: fine for a self-hosted server without auth only",
                id="analysis.W001",
            )
        )
    for name, default in (("LLM_PRICE_INPUT_PER_1M", "0.15"), ("LLM_PRICE_OUTPUT_PER_1M", "0.60")):
        raw = getattr(settings, name, default)
        try:
            valid = Decimal(str(raw)).is_finite() and Decimal(str(raw)) >= 0
        except (InvalidOperation, ValueError):
            valid = False
        if not valid:
            problems.append(Error(f"{name} must be a non-negative number, got {raw!r}", id="analysis.E003"))
    return problems

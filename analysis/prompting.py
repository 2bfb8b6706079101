"""Prompt templates (``analysis/prompts/*.txt``) rendered with Django's template language.

Autoescaping is off: these are plain-text prompts, not HTML. The transcript is cut in the middle
when it is longer than ``LLM_MAX_TRANSCRIPT_CHARS`` so a very long call cannot overflow the context.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.template import Context, Engine

from analysis.engines import AnalysisInput

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
ROLE_LABELS = {"administrator": "Администратор", "patient": "Пациент", "other": "Другой голос"}


@lru_cache(maxsize=1)
def _engine() -> Engine:
    return Engine(dirs=[str(PROMPTS_DIR)], autoescape=False, string_if_invalid="")


def render(name: str, context: dict) -> str:
    return _engine().get_template(name).render(Context(context, autoescape=False)).strip() + "\n"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def transcript_text(data: AnalysisInput) -> str:
    lines = [f"[{_clock(t.start)}] {ROLE_LABELS.get(t.role, t.role)}: {t.text.strip()}" for t in data.turns if t.text.strip()]
    text = "\n".join(lines)
    limit = int(settings.LLM_MAX_TRANSCRIPT_CHARS)
    if len(text) > limit:
        half = limit // 2
        text = text[:half] + "\n[… середина разговора пропущена …]\n" + text[-half:]
    return text


def call_context(data: AnalysisInput) -> dict:
    crm = {True: "записан", False: "не записан", None: "нет данных"}[data.crm_booked]
    return {
        "clinic_name": data.clinic_name,
        "clinic_context": data.clinic_context.strip(),
        "direction_label": "входящий (звонит собеседник)" if data.direction == "inbound" else "исходящий (звонит клиника)",
        "started_at_local": data.started_at_local,
        "duration_seconds": data.duration_seconds,
        "administrator_name": data.administrator_name,
        "traffic_source": data.traffic_source,
        "lead_processing_minutes": data.lead_processing_minutes,
        "crm_booked_label": crm,
        "transcript": transcript_text(data),
        "call_purpose": data.purpose.strip(),
        "ai_call": data.call_type == "outbound",
    }

"""Fixed vocabularies of the analysis: the default scorecard, the six typical objections, the
templated recommendations. Pure data, no database access."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DEFAULT_SCORECARD_FILE = Path(__file__).resolve().parent / "data" / "default_scorecard.json"

# The criterion whose score mirrors the booking fact (CRM wins over the transcript) in every engine.
BOOKING_CRITERION = "booked"

# Call types as written into stored content (summaries, prompts): Russian, whatever the UI language.
CALL_TYPE_LABELS_RU = {
    "first_contact": "Первичное обращение",
    "repeat": "Повторный пациент",
    "callback": "Перезвон",
    "confirmation": "Подтверждение визита",
    "other": "Прочее",
    "outbound": "Исходящий звонок ИИ",
}

OBJECTIONS: dict[str, tuple[str, str]] = {
    "no_time": ("Нет времени", "No time"),
    "expensive": ("Дорого", "Too expensive"),
    "think": ("Я подумаю", "I'll think about it"),
    "not_relevant": ("Неактуально", "No longer relevant"),
    "comparing": ("Сравнивает клиники", "Comparing clinics"),
    "consult": ("Нужно посоветоваться", "Needs to consult someone"),
}

# Suggested CRM statuses per disposition (the clinic's own CRM names may differ; it is a suggestion).
CRM_STATUS_BY_DISPOSITION = {
    "booked": "Записан",
    "confirmed": "Визит подтверждён",
    "callback_agreed": "Перезвонить",
    "thinking": "Думает",
    "info": "Консультация по телефону",
    "cancelled": "Отмена визита",
    "lost": "Отказ",
    "not_target": "Не целевой",
}

# One coaching line per criterion key: used by the rule engine and by templated period summaries.
RECOMMENDATIONS = {
    "greeting": "Начинайте разговор с полного приветствия: название клиники и своё имя.",
    "patient_name": "Спросите имя пациента в начале разговора и обращайтесь по имени.",
    "needs": "Задайте 2–3 уточняющих вопроса о жалобе, прежде чем предлагать услугу.",
    "service": "Коротко объясните, из чего состоит услуга и какой будет результат.",
    "clinic": "Назовите 1–2 преимущества клиники: опыт врачей, оборудование, гарантии, рассрочка.",
    "doctor": "Представьте врача по имени и отчеству, его специализацию и опыт.",
    "appointment_offered": "Всегда сами предлагайте запись с двумя вариантами времени.",
    "price": "Называйте стоимость или диапазон цен и объясняйте, что в неё входит.",
    "expertise": "Объясняйте, зачем нужна процедура и что будет на приёме — пациент должен понять ценность.",
    "next_step": "Завершайте разговор конкретной договорённостью: запись, перезвон в назначенное время, сообщение.",
    "booked": "Доводите разговор до записи: предложите два варианта времени на выбор.",
    "tone": "Добавьте доброжелательности: вежливые формулы, благодарность за звонок.",
    "speech": "Следите за словами-паразитами, не перебивайте пациента, говорите чётко и уверенно.",
    "initiative": "Ведите разговор сами: задавайте вопросы и предлагайте варианты, а не только отвечайте.",
    "address": "После записи назовите адрес и как добраться.",
    "documents": "После записи напомните взять паспорт и имеющиеся снимки.",
    "objections": "Отрабатывайте возражения: признайте сомнение, дайте аргументы и альтернативу (рассрочка, другое время, консультация).",
    "question_clarified": "Уточните вопрос пациента до ответа и проверьте, что ему всё понятно.",
    "reason_stated": "В начале звонка представьтесь и сразу назовите причину звонка.",
    # Outbound AI calls: advice for whoever writes the AI's greeting and prompt.
    "purpose_stated": "Приветствие ИИ-ассистента должно сразу называть клинику и цель звонка.",
    "goal_reached": "Уточните промпт: ассистент должен вести к цели звонка и предлагать конкретный следующий шаг.",
}

# Phrases that state why an outbound AI call is made (the rule engine's "purpose stated").
PURPOSE_PHRASES = (
    "звоню",
    "звоним",
    "по поводу",
    "напомина*",
    "напомнить",
    "подтверд*",
    "хотим",
    "хотели бы",
    "предлага*",
    "приглаша*",
    "уточнить",
    "сообщить",
)


@lru_cache(maxsize=1)
def default_scorecard_data() -> dict:
    """The default scorecard as ``{"criteria": {key: {...}}, "scorecards": {call_type: [keys]}}``."""
    return json.loads(DEFAULT_SCORECARD_FILE.read_text(encoding="utf-8"))


def default_criteria(call_type: str) -> list[dict]:
    """The default criteria of one call type, each a full dict (key, titles, rubric, flags, weight)."""
    data = default_scorecard_data()
    rows = []
    for key in data["scorecards"].get(call_type, []):
        spec = data["criteria"][key]
        rows.append(
            {
                "key": key,
                "title_ru": spec["title_ru"],
                "title_en": spec.get("title_en", ""),
                "rubric": spec.get("rubric", ""),
                "binary": bool(spec.get("binary", False)),
                "applies_if": spec.get("applies_if", ""),
                "weight": str(spec.get("weight", "1")),
                "rule_phrases": "",
            }
        )
    return rows


def recommendation_for(key: str, title: str = "") -> str:
    return RECOMMENDATIONS.get(key) or f"Улучшить: {title.lower() or key}."

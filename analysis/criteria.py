"""The default dental-clinic scorecard (PRODUCT.md), as data.

Each criterion is scored 0–10 with a comment. Binary criteria score only 0 or 10. A criterion with
``applies_if`` is excluded (not scored 0) when its condition does not hold: "booked" applies only to
booked calls, "objection" only when the patient raised one.
"""

from dataclasses import dataclass

from analysis.models import CallType


@dataclass(frozen=True)
class Criterion:
    key: str
    title_ru: str
    title_en: str
    binary: bool = False
    applies_if: str = ""  # "" | "booked" | "objection"


C = Criterion
CATALOGUE: dict[str, Criterion] = {
    c.key: c
    for c in (
        C("greeting", "Приветствие (клиника и своё имя)", "Greeting (clinic and own name)"),
        C("patient_name", "Имя пациента спрошено и использовано", "Patient's name asked and used"),
        C("needs", "Выявление потребности", "Needs identified"),
        C("service", "Презентация услуги", "Service presented"),
        C("clinic", "Презентация клиники", "Clinic presented"),
        C("doctor", "Презентация врача", "Doctor presented"),
        C("appointment_offered", "Предложена запись", "Appointment offered", binary=True),
        C("price", "Озвучена стоимость", "Price communicated"),
        C("expertise", "Экспертность", "Expertise"),
        C("next_step", "Договорённость о следующем шаге", "Next step agreed"),
        C("booked", "Пациент записан", "Patient booked", binary=True),
        C("tone", "Эмоциональный тон", "Emotional tone"),
        C("speech", "Качество речи", "Speech quality"),
        C("initiative", "Инициатива", "Initiative"),
        C("address", "Назван адрес клиники", "Clinic address given", binary=True, applies_if="booked"),
        C("documents", "Напоминание о документах", "Documents/passport reminder", binary=True, applies_if="booked"),
        C("objections", "Работа с возражениями", "Objection handling", applies_if="objection"),
        C("question_clarified", "Вопрос пациента прояснён", "Patient's question clarified"),
        C("reason_stated", "Названа причина звонка", "Reason for the call stated"),
    )
}

_CALLBACK_CONFIRMATION = [
    "greeting",
    "patient_name",
    "reason_stated",
    "next_step",
    "initiative",
    "speech",
    "address",
    "documents",
    "objections",
]
CRITERIA_BY_TYPE: dict[str, list[str]] = {
    CallType.FIRST_CONTACT: [
        "greeting",
        "patient_name",
        "needs",
        "service",
        "clinic",
        "doctor",
        "appointment_offered",
        "price",
        "expertise",
        "next_step",
        "booked",
        "tone",
        "speech",
        "initiative",
        "address",
        "documents",
        "objections",
    ],
    CallType.REPEAT: [
        "greeting",
        "patient_name",
        "question_clarified",
        "expertise",
        "next_step",
        "booked",
        "tone",
        "speech",
        "initiative",
        "objections",
    ],
    CallType.CALLBACK: _CALLBACK_CONFIRMATION,
    CallType.CONFIRMATION: _CALLBACK_CONFIRMATION,
    CallType.OTHER: [],
}

OBJECTIONS: dict[str, tuple[str, str]] = {
    "no_time": ("Нет времени", "No time"),
    "expensive": ("Дорого", "Too expensive"),
    "think": ("Я подумаю", "I'll think about it"),
    "not_relevant": ("Неактуально", "No longer relevant"),
    "comparing": ("Сравнивает клиники", "Comparing clinics"),
    "consult": ("Нужно посоветоваться", "Needs to consult someone"),
}


def criteria_for(call_type: str) -> list[Criterion]:
    return [CATALOGUE[key] for key in CRITERIA_BY_TYPE.get(call_type, [])]

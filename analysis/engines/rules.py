"""The offline rule engine: phrase rules per criterion over the diarized transcript.

It is the free baseline: good at "was it said at all" (greeting, price, address, documents,
booking), rough at judgement (tone, expertise). Phrases are written as stems with ``*`` for any
ending, which tolerates Russian inflection ("запис*" matches запишу, записать, записались).
"""

from __future__ import annotations

import re
from functools import lru_cache

from analysis.criteria import OBJECTIONS, criteria_for
from analysis.engines import AnalysisInput, AnalysisOutput, CriterionResult, Objection, Turn
from analysis.models import CallType


def normalise(text: str) -> str:
    text = text.lower().replace("ё", "е")
    return re.sub(r"[^\w\s₽%]", " ", text)


@lru_cache(maxsize=512)
def _compile(phrase: str) -> re.Pattern[str]:
    parts = []
    for word in phrase.split():
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + r"\w*")
        else:
            parts.append(re.escape(word) + r"\b")
    return re.compile(r"\b" + r"\s+(?:\w+\s+){0,2}?".join(parts))


def matches(text: str, phrases: tuple[str, ...] | list[str]) -> list[str]:
    """The phrases found in ``text`` (already normalised)."""
    return [p for p in phrases if _compile(p).search(text)]


GREETING = ("здравствуйте", "добрый день", "добрый вечер", "доброе утро", "приветствую", "алло здравствуйте")
OWN_NAME = ("меня зовут", "администратор *", "это анна", "это ольга", "это марина", "на связи")
CLINIC_WORDS = ("клиник*", "стоматологи*", "центр*")
ASK_NAME = ("как вас зовут", "как к вам обращаться", "ваше имя", "как я могу к вам обращаться", "подскажите имя", "ваши фамили*")
NEEDS = (
    "что вас беспоко*",
    "что беспоко*",
    "что случил*",
    "какая проблем*",
    "болит",
    "с какой целью",
    "какой зуб",
    "как давно",
    "что именно",
    "что бы вы хотели",
    "какая услуг*",
    "были ли",
    "есть ли",
    "чем могу помочь",
    "по какому вопросу",
)
SERVICE = ("консультаци*", "лечени*", "гигиен*", "имплант*", "брекет*", "отбеливани*", "чистк*", "пломб*", "снимок", "диагностик*", "протезир*", "удалени*", "коронк*", "элайнер*")
CLINIC_PRESENT = ("наша клиника", "у нас *", "современн*", "оборудовани*", "гаранти*", "лицензи*", "опыт*", "собственн*", "микроскоп*", "без боли", "безболезн*")
DOCTOR = ("врач*", "доктор*", "имплантолог*", "ортодонт*", "терапевт*", "хирург*")
OFFER = (
    "записать вас",
    "запишем вас",
    "давайте запиш*",
    "давайте я вас запиш*",
    "могу предложить",
    "есть окно",
    "есть время",
    "свободное время",
    "удобно подойти",
    "удобно прийти",
    "когда вам удобно",
    "в какое время",
    "на какой день",
    "хотите записаться",
    "запись на",
)
PRICE_WORDS = ("стоимость", "стоит", "цена", "рубл*", "₽", "тысяч*")
EXPERTISE = ("потому что", "это нужно", "это важно", "рекоменду*", "как правило", "обычно", "дело в том", "чтобы", "поэтому", "процедура занимает", "займет")
NEXT_STEP = ("ждем вас", "ждем", "до встречи", "перезвон*", "отправ* смс", "пришл* смс", "напомн*", "сообщени*", "договорились", "тогда до", "запись подтвержден*")
POLITE = ("пожалуйста", "спасибо", "рада помочь", "рад помочь", "конечно", "хорошего дня", "всего доброго", "благодарю", "будем рады", "с удовольствием")
FILLERS = ("эээ", "эм", "ммм", "ну это", "как бы", "типа", "короче", "значит это")
ADDRESS = ("адрес*", "улиц*", "ул ", "лесная", "метро", "этаж*", "дом *", "вход*", "парковк*")
DOCUMENTS = ("паспорт*", "полис*", "документ*", "снилс*", "снимки с собой", "карт*")
BOOKED_ADMIN = (
    "записала вас",
    "записал вас",
    "я вас записал*",
    "вы записаны",
    "записываю вас",
    "запись подтвержден*",
    "ждем вас",
    "жду вас",
    "бронирую",
    "закрепила за вами",
)
BOOKING_DECLINED = ("отмен*", "не приду", "не смогу прийти", "не записыва*", "не надо записывать", "подумаю", "перезвоню сам*", "не актуальн*", "неактуальн*")
OBJECTION_PHRASES: dict[str, tuple[str, ...]] = {
    "no_time": ("нет времени", "некогда", "очень занят*", "совсем нет времени", "работаю допоздна"),
    "expensive": ("дорого", "дороговато", "не по карману", "дешевле", "дорогов*", "много денег", "за такие деньги"),
    "think": ("подума*", "надо подумать", "я подумаю"),
    "not_relevant": ("неактуальн*", "не актуальн*", "уже не нужно", "передумал*", "уже вылечил*"),
    "comparing": ("сравнива*", "другой клиник*", "других клиник*", "у других", "в соседней", "там дешевле"),
    "consult": ("посоветова*", "с мужем", "с женой", "обсудить с", "спрошу у", "с родител*", "с дочер*", "с сыном"),
}
HANDLING = (
    "понимаю",
    "рассрочк*",
    "акци*",
    "скидк*",
    "бесплатн*",
    "давайте",
    "можем",
    "предлож*",
    "в итоге",
    "на самом деле",
    "выгодн*",
    "гаранти*",
    "включен*",
    "подберем",
    "вечер*",
    "выходн*",
    "суббот*",
)
CONFIRMATION = ("подтверд*", "напомина*", "напомнить", "вы записаны на завтра", "ваша запись")
CALLBACK = ("вы звонили", "вы нам звонили", "пропущенн*", "не смогли ответить", "не дозвонил*", "перезваниваю", "был звонок", "от вас был")
REPEAT = ("уже был*", "уже лечил*", "у вас лечусь", "я ваш пациент", "ваша пациентка", "наблюдаюсь", "повторн*", "мой врач", "в прошлый раз", "на прошлой неделе был*", "продолжить лечени*", "контрольн*", "перенести запись", "перенести прием")
OTHER = ("поставк*", "поставщик*", "ваканси*", "резюме", "ошиблись номер*", "не туда попал*", "коммерческ* предложени*", "реклам*", "сотрудничеств*", "работу", "менеджер по продаж*")
MEDICAL = SERVICE + ("зуб*", "десн*", "прием*", "врач*")


def _score_presence(found: int, *, full: int = 1) -> int:
    if found >= full:
        return 10
    return 5 if found else 0


class RuleEngine:
    name = "rules"

    def analyse(self, data: AnalysisInput) -> AnalysisOutput:
        admin_turns = [t for t in data.turns if t.role == "administrator"]
        patient_turns = [t for t in data.turns if t.role == "patient"]
        admin_text = normalise(" ".join(t.text for t in admin_turns))
        patient_text = normalise(" ".join(t.text for t in patient_turns))
        all_text = normalise(" ".join(t.text for t in data.turns))

        call_type, reason = self._classify(data, admin_text, patient_text, all_text)
        objections = self._objections(data.turns)
        booked_transcript = self._booked(admin_text, patient_text, data.turns)
        booked = data.crm_booked if data.crm_booked is not None else booked_transcript

        output = AnalysisOutput(engine=self.name, call_type=call_type, call_type_reason=reason, booked=booked_transcript)
        output.objections = objections
        if call_type != CallType.OTHER:
            output.criteria = self._score(call_type, admin_turns, admin_text, patient_text, booked, objections)
        self._narrative(output, data, booked, patient_turns)
        return output

    # --- classification -------------------------------------------------------------------------
    def _classify(self, data: AnalysisInput, admin: str, patient: str, text: str) -> tuple[str, str]:
        other = matches(text, OTHER)
        medical = matches(text, MEDICAL)
        if other and len(other) >= len(medical) // 2 + 1:
            return CallType.OTHER, "Не связан с лечением: " + ", ".join(other[:3])
        if not medical and len(text.split()) < 40:
            return CallType.OTHER, "Нет обсуждения услуг клиники"
        if data.direction == "outbound":
            if matches(admin, CONFIRMATION):
                return CallType.CONFIRMATION, "Клиника звонит подтвердить запись"
            if matches(admin, CALLBACK):
                return CallType.CALLBACK, "Клиника перезванивает на пропущенный звонок"
        if matches(text, REPEAT):
            return CallType.REPEAT, "Пациент уже лечился в клинике"
        if data.direction == "outbound":
            return CallType.CALLBACK, "Исходящий звонок клиники"
        return CallType.FIRST_CONTACT, "Новый пациент интересуется услугами"

    # --- facts --------------------------------------------------------------------------------
    def _objections(self, turns: list[Turn]) -> list[Objection]:
        found: dict[str, Objection] = {}
        for index, turn in enumerate(turns):
            if turn.role != "patient":
                continue
            text = normalise(turn.text)
            for key, phrases in OBJECTION_PHRASES.items():
                if key in found or not matches(text, phrases):
                    continue
                reply = next((t for t in turns[index + 1 : index + 3] if t.role == "administrator"), None)
                handled = bool(reply and len(normalise(reply.text).split()) >= 6 and matches(normalise(reply.text), HANDLING))
                found[key] = Objection(
                    key=key,
                    quote=turn.text[:200],
                    handled=handled,
                    comment="Администратор отработал возражение" if handled else "Возражение осталось без ответа",
                )
        return list(found.values())

    def _booked(self, admin: str, patient: str, turns: list[Turn]) -> bool:
        if not matches(admin, BOOKED_ADMIN):
            return False
        # The last words of the patient decide: an agreement followed by a cancellation is not a booking.
        tail = normalise(" ".join(t.text for t in turns[-4:] if t.role == "patient"))
        return not matches(tail, ("отмен*", "не приду", "не смогу", "не записыва*"))

    # --- scoring ------------------------------------------------------------------------------
    def _score(
        self,
        call_type: str,
        admin_turns: list[Turn],
        admin: str,
        patient: str,
        booked: bool,
        objections: list[Objection],
    ) -> list[CriterionResult]:
        first = normalise(admin_turns[0].text) if admin_turns else ""
        questions = sum(t.text.count("?") for t in admin_turns)
        admin_words = max(1, len(admin.split()))
        fillers = sum(len(_compile(f).findall(admin)) for f in FILLERS)
        polite = len(matches(admin, POLITE))
        has_price_number = bool(re.search(r"\d[\d\s]*\s*(руб|₽|тысяч)", admin))

        greeting = 0
        if matches(first, GREETING):
            greeting += 4
        if matches(first, CLINIC_WORDS) or "улыбк" in first:
            greeting += 3
        if matches(first, OWN_NAME):
            greeting += 3
        asked_name = bool(matches(admin, ASK_NAME))
        needs_found = len(matches(admin, NEEDS))
        scores: dict[str, tuple[int, str]] = {
            "greeting": (greeting, "Есть приветствие, клиника и имя" if greeting == 10 else "Приветствие неполное"),
            "patient_name": (10 if asked_name else 0, "Имя спрошено" if asked_name else "Имя пациента не спрошено"),
            "needs": (_score_presence(needs_found, full=2), f"Вопросов о потребности: {needs_found}"),
            "service": (_score_presence(len(matches(admin, SERVICE)), full=2), "Услуга описана" if matches(admin, SERVICE) else "Услуга не презентована"),
            "clinic": (_score_presence(len(matches(admin, CLINIC_PRESENT)), full=2), "Преимущества клиники названы" if matches(admin, CLINIC_PRESENT) else "Клиника не презентована"),
            "doctor": (
                10 if matches(admin, DOCTOR) and re.search(r"\w+(вич|вна|ична)\b", admin) else (5 if matches(admin, DOCTOR) else 0),
                "Врач назван по имени" if re.search(r"\w+(вич|вна|ична)\b", admin) else "Врач не представлен",
            ),
            "appointment_offered": (10 if matches(admin, OFFER) else 0, "Запись предложена" if matches(admin, OFFER) else "Запись не предложена"),
            "price": (10 if has_price_number else (5 if matches(admin, PRICE_WORDS) else 0), "Стоимость названа" if has_price_number else "Стоимость не названа"),
            "expertise": (_score_presence(len(matches(admin, EXPERTISE)), full=3), "Объяснения и рекомендации" if matches(admin, EXPERTISE) else "Мало экспертных объяснений"),
            "next_step": (10 if matches(admin, NEXT_STEP) else 0, "Следующий шаг согласован" if matches(admin, NEXT_STEP) else "Нет договорённости о следующем шаге"),
            "booked": (10 if booked else 0, "Пациент записан" if booked else "Пациент не записан"),
            "tone": (10 if polite >= 3 else (7 if polite else 4), f"Вежливых формул: {polite}"),
            "speech": (max(0, 10 - round(fillers * 100 / admin_words)), f"Слов-паразитов: {fillers}"),
            "initiative": (min(10, 2 + questions * 2), f"Вопросов администратора: {questions}"),
            "address": (10 if matches(admin, ADDRESS) else 0, "Адрес назван" if matches(admin, ADDRESS) else "Адрес не назван"),
            "documents": (10 if matches(admin, DOCUMENTS) else 0, "Напомнили о документах" if matches(admin, DOCUMENTS) else "Не напомнили о документах"),
            "question_clarified": (_score_presence(needs_found + questions // 2, full=2), "Вопрос пациента прояснён" if needs_found or questions else "Вопрос не уточнён"),
            "reason_stated": (
                10 if matches(admin, CONFIRMATION + CALLBACK + ("звоню", "по поводу")) else 0,
                "Причина звонка названа" if matches(admin, CONFIRMATION + CALLBACK + ("звоню", "по поводу")) else "Причина звонка не названа",
            ),
        }
        if objections:
            handled = sum(o.handled for o in objections)
            scores["objections"] = (round(10 * handled / len(objections)), f"Отработано возражений: {handled} из {len(objections)}")
        results = []
        for criterion in criteria_for(call_type):
            applicable = not (
                (criterion.applies_if == "booked" and not booked)
                or (criterion.applies_if == "objection" and not objections)
            )
            score, comment = scores.get(criterion.key, (0, ""))
            if criterion.binary:
                score = 10 if score >= 10 else 0
            results.append(
                CriterionResult(
                    key=criterion.key,
                    title=criterion.title_ru,
                    score=score if applicable else None,
                    applicable=applicable,
                    comment=comment if applicable else "Не применимо",
                )
            )
        return results

    # --- narrative ----------------------------------------------------------------------------
    def _narrative(self, out: AnalysisOutput, data: AnalysisInput, booked: bool, patient_turns: list[Turn]) -> None:
        request = next((t.text for t in patient_turns if len(t.text.split()) >= 4), patient_turns[0].text if patient_turns else "")
        type_label = CallType(out.call_type).label
        objection_labels = [OBJECTIONS[o.key][0] for o in out.objections]
        out.summary = f"{type_label}. {request[:160]}".strip()
        if objection_labels:
            out.summary += " Возражения: " + ", ".join(objection_labels).lower() + "."
        out.summary += " Пациент записан." if booked else (" Записи нет." if out.call_type != CallType.OTHER else "")
        if out.call_type == CallType.OTHER:
            out.disposition, out.interest, out.crm_status = "not_target", "none", "Не целевой"
        elif booked:
            out.disposition, out.interest, out.crm_status = "booked", "high", "Записан"
        elif any(o.key == "not_relevant" for o in out.objections):
            out.disposition, out.interest, out.crm_status = "lost", "low", "Отказ"
        elif out.objections:
            out.disposition, out.interest, out.crm_status = "thinking", "medium", "Думает"
        else:
            out.disposition, out.interest, out.crm_status = "info", "medium", "Консультация"
        if booked:
            out.follow_up = f"Здравствуйте! Ждём вас в клинике «{data.clinic_name}». Если планы изменятся, пожалуйста, предупредите нас."
        elif out.call_type != CallType.OTHER:
            out.follow_up = f"Здравствуйте! Это клиника «{data.clinic_name}». Вы интересовались нашими услугами — подобрать вам удобное время для консультации?"
        weakest = sorted((c for c in out.criteria if c.applicable and c.score is not None and c.score < 7), key=lambda c: c.score)
        out.recommendations = [RECOMMENDATIONS.get(c.key, f"Улучшить: {c.title.lower()}") for c in weakest[:3]]
        if out.criteria and not out.recommendations:
            out.recommendations = ["Разговор проведён по скрипту — сохраняйте этот уровень."]


RECOMMENDATIONS = {
    "greeting": "Начинайте разговор с полного приветствия: название клиники и своё имя.",
    "patient_name": "Спросите имя пациента в начале разговора и обращайтесь по имени.",
    "needs": "Задайте 2–3 уточняющих вопроса о жалобе, прежде чем предлагать услугу.",
    "service": "Коротко объясните, из чего состоит услуга и какой будет результат.",
    "clinic": "Назовите 1–2 преимущества клиники: опыт врачей, оборудование, гарантии.",
    "doctor": "Представьте врача по имени и отчеству и его специализацию.",
    "appointment_offered": "Всегда предлагайте конкретное время записи.",
    "price": "Называйте стоимость или диапазон цен, объясняя, что в неё входит.",
    "expertise": "Объясняйте, зачем нужна процедура — пациент должен понять ценность.",
    "next_step": "Завершайте разговор договорённостью о следующем шаге.",
    "booked": "Доводите разговор до записи: предложите два варианта времени на выбор.",
    "tone": "Добавьте вежливых формул и доброжелательности в тон разговора.",
    "speech": "Следите за словами-паразитами, говорите чётко и уверенно.",
    "initiative": "Ведите разговор сами: задавайте вопросы, а не только отвечайте.",
    "address": "Назовите адрес и как добраться после записи.",
    "documents": "Напомните взять паспорт и имеющиеся снимки.",
    "objections": "Отрабатывайте возражения: признайте сомнение и предложите решение (рассрочка, консультация).",
    "question_clarified": "Уточните вопрос пациента до того, как отвечать.",
    "reason_stated": "В начале звонка сразу назовите причину звонка.",
}

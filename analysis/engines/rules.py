"""The offline rule engine: phrase rules per criterion over the diarized transcript.

It is the free baseline, used when no LLM is configured: good at "was it said at all" (greeting,
name, price, address, documents, booking), rough at judgement (tone, expertise). Every scorecard
criterion is scored by its ``rule_phrases`` when the clinic wrote some (10 if the administrator said
one of them, else 0), else by the built-in rule for its key; a criterion with neither is left "not
assessed" (excluded from the overall score, not scored 0).

Booking is read as a sequence of events, the last one wins: the administrator confirms a booking or a
move ("записала", "переношу"), the patient accepts an offered time ("давайте в 17:30"), the patient
confirms a visit ("в силе"), or the visit is cancelled ("не приду", "запись отменяю").
"""

from __future__ import annotations

import re

from analysis.catalogue import (
    CALL_TYPE_LABELS_RU,
    CRM_STATUS_BY_DISPOSITION,
    OBJECTIONS,
    PURPOSE_PHRASES,
    RECOMMENDATIONS,
)
from analysis.engines import AnalysisInput, AnalysisOutput, CriterionResult, CriterionSpec, Objection, Turn
from analysis.engines import phrases as P
from analysis.engines.phrases import count_matches, matches, normalise
from analysis.models import CallType

ADMIN, PATIENT = "administrator", "patient"


def _presence(found: int, *, full: int = 1) -> int:
    if found >= full:
        return 10
    return 5 if found else 0


class RuleEngine:
    name = "rules"

    def analyse(self, data: AnalysisInput) -> AnalysisOutput:
        turns = [t for t in data.turns if t.text.strip()]
        admin_turns = [t for t in turns if t.role == ADMIN]
        patient_turns = [t for t in turns if t.role == PATIENT]
        admin_text = normalise(" ".join(t.text for t in admin_turns))
        patient_text = normalise(" ".join(t.text for t in patient_turns))
        all_text = normalise(" ".join(t.text for t in turns))

        if data.call_type:
            call_type, reason = data.call_type, self._known_type_reason(data)
        else:
            call_type, reason = self._classify(data, admin_text, patient_text, all_text)
        output = AnalysisOutput(engine=self.name, call_type=call_type, call_type_reason=reason)
        if call_type == CallType.OTHER:
            output.summary = f"{CALL_TYPE_LABELS_RU['other']}: {reason.lower()}. Не оценивается."
            output.disposition, output.interest = "not_target", "none"
            output.crm_status = CRM_STATUS_BY_DISPOSITION["not_target"]
            return output
        output.booked, cancelled = self._booking(turns)
        output.objections = self._objections(turns)
        booked = data.crm_booked if data.crm_booked is not None else output.booked
        scorecard = data.scorecards.get(call_type)
        specs = scorecard.criteria if scorecard else ()
        disposition = self._disposition(output, turns, booked=booked, cancelled=cancelled)
        output.criteria = self._score(specs, data, turns, admin_turns, admin_text, booked, output.objections, disposition)
        self._narrative(output, data, booked=booked, disposition=disposition, admin_text=admin_text, specs=specs)
        return output

    @staticmethod
    def _known_type_reason(data: AnalysisInput) -> str:
        if data.call_type == CallType.OUTBOUND:
            purpose = " ".join(data.purpose.split())[:200]
            return "Исходящий звонок ИИ-ассистента" + (f": {purpose}" if purpose else "")
        return CALL_TYPE_LABELS_RU.get(data.call_type, data.call_type)

    # --- classification -------------------------------------------------------------------------
    def _classify(self, data: AnalysisInput, admin: str, patient: str, text: str) -> tuple[str, str]:
        other = {reason: matches(text, phrases) for reason, phrases in P.OTHER.items()}
        other_reason, other_found = max(other.items(), key=lambda item: len(item[1]))
        medical = matches(patient, P.MEDICAL)
        if other_found and len(other_found) >= len(medical) // 2 + 1:
            return CallType.OTHER, other_reason
        if not medical and not matches(text, P.MEDICAL) and len(text.split()) < 40:
            return CallType.OTHER, "Нет обсуждения услуг клиники"
        repeat = matches(patient, P.REPEAT_PATIENT) + matches(admin, P.REPEAT_ADMIN)
        if data.direction == "outbound":
            if matches(admin, P.CONFIRMATION):
                return CallType.CONFIRMATION, "Клиника звонит подтвердить визит"
            if matches(admin, P.CALLBACK):
                return CallType.CALLBACK, "Клиника перезванивает на звонок или заявку"
            if repeat:
                return CallType.REPEAT, "Пациент уже лечится в клинике"
            return CallType.CALLBACK, "Исходящий звонок клиники"
        if repeat:
            return CallType.REPEAT, "Пациент уже лечится в клинике или записан"
        return CallType.FIRST_CONTACT, "Новый пациент интересуется услугами"

    # --- facts ------------------------------------------------------------------------------------
    def _booking(self, turns: list[Turn]) -> tuple[bool, bool]:
        """(booked, cancelled): the last booking event of the call decides."""
        events: list[str] = []
        for index, turn in enumerate(turns):
            text = normalise(turn.text)
            if turn.role == ADMIN:
                booked = matches(text, P.BOOKING_DONE, allow_negated=False)
                cancelled = matches(text, P.BOOKING_CANCELLED_ADMIN, allow_negated=False)
                if booked:  # "переношу …, старую запись отменяю" is a move, not a cancellation
                    events.append("booked")
                elif cancelled:
                    events.append("cancelled")
                if self._offers_slot(turn) and self._slot_accepted(turns, index):
                    events.append("booked")
            elif turn.role == PATIENT:
                if matches(text, P.BOOKING_CANCELLED_PATIENT):
                    events.append("cancelled")
                elif matches(text, P.VISIT_CONFIRMED_PATIENT, allow_negated=False):
                    events.append("booked")
        last = events[-1] if events else None
        return last == "booked", last == "cancelled"

    @staticmethod
    def _offers_slot(turn: Turn) -> bool:
        return bool(P.SLOT_RE.search(turn.text.lower())) and not matches(normalise(turn.text), P.CONTACT_LATER)

    def _slot_accepted(self, turns: list[Turn], offer_index: int) -> bool:
        """The patient accepts the offered time within their next two turns."""
        replies = 0
        for turn in turns[offer_index + 1 :]:
            if turn.role == ADMIN and (self._offers_slot(turn) or matches(normalise(turn.text), P.CONTACT_LATER)):
                return False  # a new offer: judged on its own
            if turn.role != PATIENT:
                continue
            text = normalise(turn.text)
            if matches(text, P.SLOT_REJECTED):
                return False
            if matches(text, P.SLOT_ACCEPTED, allow_negated=False):
                return True
            replies += 1
            if replies >= 2:
                return False
        return False

    def _objections(self, turns: list[Turn]) -> list[Objection]:
        found: dict[str, Objection] = {}
        for index, turn in enumerate(turns):
            if turn.role != PATIENT:
                continue
            text = normalise(turn.text)
            for key, phrases in P.OBJECTION_PHRASES.items():
                if key in found or not matches(text, phrases):
                    continue
                replies = [normalise(t.text) for t in turns[index + 1 :] if t.role == ADMIN][:2]
                handled = any(len(r.split()) >= 6 and matches(r, P.HANDLING) for r in replies)
                found[key] = Objection(
                    key=key,
                    quote=turn.text[:200],
                    handled=handled,
                    comment="Администратор отработал возражение" if handled else "Возражение осталось без ответа",
                    label=OBJECTIONS[key][0],
                )
        return list(found.values())

    # --- scoring ------------------------------------------------------------------------------
    def _score(
        self,
        specs: tuple[CriterionSpec, ...],
        data: AnalysisInput,
        turns: list[Turn],
        admin_turns: list[Turn],
        admin: str,
        booked: bool,
        objections: list[Objection],
        disposition: str = "",
    ) -> list[CriterionResult]:
        builtin = self._builtin_scores(data, turns, admin_turns, admin, booked, objections, disposition)
        results = []
        for spec in specs:
            applicable = not (
                (spec.applies_if == "booked" and not booked) or (spec.applies_if == "objection" and not objections)
            )
            if spec.rule_phrases:
                found = matches(admin, spec.rule_phrases)
                score, comment = (10 if found else 0), ("Сказано: " + ", ".join(found) if found else "Фразы не прозвучали")
            elif spec.key in builtin:
                score, comment = builtin[spec.key]
            else:
                score, comment = None, "Нет правила для этого критерия"
            if score is not None and spec.binary:
                score = 10 if score >= 10 else 0
            results.append(CriterionResult(spec.key, spec.title, score if applicable else None, applicable, comment))
        return results

    def _builtin_scores(
        self,
        data: AnalysisInput,
        turns: list[Turn],
        admin_turns: list[Turn],
        admin: str,
        booked: bool,
        objections: list[Objection],
        disposition: str = "",
    ) -> dict[str, tuple[int, str]]:
        first_raw = admin_turns[0].text if admin_turns else ""
        first = normalise(first_raw)
        # Questions of two words or more ("Фамилия?" is form-filling, not initiative).
        questions = sum(
            1 for t in admin_turns for s in re.split(r"(?<=[.?!…])\s+", t.text) if s.endswith("?") and len(normalise(s).split()) >= 2
        )
        admin_words = max(1, len(admin.split()))
        fillers = count_matches(admin, P.FILLERS)
        interruptions = self._admin_interruptions(turns)
        polite = len(matches(admin, P.POLITE))
        raw_admin = " ".join(t.text for t in admin_turns)

        greeting = 4 if matches(first, P.GREETING) else 0
        if matches(first, P.CLINIC_WORDS) or self._names_clinic(first, data.clinic_name):
            greeting += 3
        if P.OWN_NAME_RE.search(first_raw) or self._says_own_name(first, data.administrator_name):
            greeting += 3
        name_score, name_comment = self._patient_name(turns, admin_turns, admin, outbound=data.direction == "outbound")
        needs = len(matches(admin, P.NEEDS))
        service = len(matches(admin, P.SERVICE))
        clinic = len(matches(admin, P.CLINIC_PRESENT))
        if P.PATRONYMIC_RE.search(raw_admin):
            doctor = (10, "Врач представлен по имени и отчеству")
        elif matches(admin, P.DOCTOR_SPECIALTY) or P.DOCTOR_SURNAME_RE.search(raw_admin):
            doctor = (5, "Врач назван без имени и отчества")
        else:
            doctor = (0, "Врач не представлен")
        offered = bool(matches(admin, P.OFFER)) or any(self._offers_slot(t) for t in admin_turns)
        price_number = bool(P.PRICE_NUMBER_RE.search(admin))
        price_words = bool(matches(admin, P.PRICE_WORDS))
        expertise = len(matches(admin, P.EXPERTISE))
        next_step = bool(matches(admin, P.NEXT_STEP)) or booked
        reason = bool(matches(admin, P.CONFIRMATION + P.CALLBACK + ("звоню", "по поводу вашей")))
        speech = max(0, 10 - round(fillers * 100 / admin_words) - 2 * interruptions)
        scores: dict[str, tuple[int, str]] = {
            "greeting": (greeting, "Приветствие, клиника и имя" if greeting == 10 else "Приветствие неполное"),
            "patient_name": (name_score, name_comment),
            "needs": (_presence(needs, full=2), f"Вопросов о потребности: {needs}"),
            "service": (_presence(service, full=2), "Услуга описана" if service else "Услуга не презентована"),
            "clinic": (_presence(clinic, full=2), "Преимущества клиники названы" if clinic else "Клиника не презентована"),
            "doctor": doctor,
            "appointment_offered": (10 if offered else 0, "Запись предложена" if offered else "Запись не предложена"),
            "price": (
                10 if price_number else (5 if price_words else 0),
                "Стоимость названа" if price_number else "Стоимость не названа",
            ),
            "expertise": (_presence(expertise, full=3), "Объяснения и рекомендации" if expertise else "Мало объяснений"),
            "next_step": (10 if next_step else 0, "Следующий шаг согласован" if next_step else "Нет договорённости о следующем шаге"),
            "booked": (10 if booked else 0, "Пациент записан" if booked else "Пациент не записан"),
            "tone": (10 if polite >= 3 else (7 if polite else 4), f"Вежливых формул: {polite}"),
            "speech": (speech, f"Слов-паразитов: {fillers}, перебиваний: {interruptions}"),
            "initiative": (min(10, 2 + questions * 2), f"Вопросов администратора: {questions}"),
            "address": (10 if matches(admin, P.ADDRESS) else 0, "Адрес назван" if matches(admin, P.ADDRESS) else "Адрес не назван"),
            "documents": (
                10 if matches(admin, P.DOCUMENTS) else 0,
                "Напомнили о документах" if matches(admin, P.DOCUMENTS) else "Не напомнили о документах",
            ),
            "question_clarified": (
                _presence(needs + questions, full=2),
                "Вопрос пациента прояснён" if needs or questions else "Вопрос не уточнён",
            ),
            "reason_stated": (10 if reason else 0, "Причина звонка названа" if reason else "Причина звонка не названа"),
        }
        scores["purpose_stated"] = self._purpose_stated(data, turns, admin)
        goal = {"booked": 10, "confirmed": 10, "callback_agreed": 5, "thinking": 5}.get(disposition, 0)
        scores["goal_reached"] = (
            goal,
            {10: "Цель звонка достигнута", 5: "Цель достигнута частично"}.get(goal, "Цель звонка не достигнута"),
        )
        if objections:
            handled = sum(o.handled for o in objections)
            scores["objections"] = (round(10 * handled / len(objections)), f"Отработано возражений: {handled} из {len(objections)}")
        return scores

    @staticmethod
    def _purpose_stated(data: AnalysisInput, turns: list[Turn], admin: str) -> tuple[int, str]:
        """10: the purpose is stated before the other side says anything (a purpose phrase or the goal's
        own words); 5: only later (e.g. after "who is this?"); 0: never."""
        goal_stems = tuple(w[:5] + "*" for w in normalise(data.purpose).split() if len(w) >= 6)[:12]
        first_reply = next((i for i, t in enumerate(turns) if t.role == PATIENT), len(turns))
        opening = normalise(" ".join(t.text for t in turns[:first_reply] if t.role == ADMIN))
        if matches(opening, PURPOSE_PHRASES) or (goal_stems and len(matches(opening, goal_stems)) >= 2):
            return 10, "Цель звонка названа в начале разговора"
        if matches(admin, PURPOSE_PHRASES):
            return 5, "Цель звонка названа не сразу"
        return 0, "Цель звонка не названа"

    @staticmethod
    def _admin_interruptions(turns: list[Turn]) -> int:
        count = 0
        for before, after in zip(turns, turns[1:], strict=False):
            if after.role == ADMIN and before.role != ADMIN and before.end - after.start > 0.2:
                count += 1
        return count

    @staticmethod
    def _names_clinic(text: str, clinic_name: str) -> bool:
        stems = [w[:5] for w in normalise(clinic_name).split() if len(w) >= 4]
        return bool(stems) and any(re.search(r"\b" + re.escape(stem), text) for stem in stems)

    @staticmethod
    def _says_own_name(text: str, administrator_name: str) -> bool:
        first = normalise(administrator_name).split()[:1]
        return bool(first) and len(first[0]) >= 3 and bool(re.search(r"\b" + re.escape(first[0][:-1]), text))

    @staticmethod
    def _patient_name(turns: list[Turn], admin_turns: list[Turn], admin: str, *, outbound: bool) -> tuple[int, str]:
        """10: the administrator uses the patient's name; 5: asked or given but not used; 0: neither."""
        asked = bool(matches(admin, P.ASK_NAME))
        names: set[str] = set()
        for index, turn in enumerate(turns):
            if turn.role == ADMIN and matches(normalise(turn.text), P.ASK_NAME):
                reply = next((t for t in turns[index + 1 : index + 3] if t.role == PATIENT), None)
                if reply is not None:
                    names.update(w for w in re.findall(r"[А-ЯЁ][а-яё]{2,}", reply.text)[:2])
            elif turn.role == PATIENT:
                names.update(name for pair in P.SELF_INTRO_RE.findall(turn.text) for name in pair if name)
        if outbound and admin_turns:
            vocative = P.VOCATIVE_RE.match(admin_turns[0].text)
            if vocative and vocative.group(1).lower() not in P.NOT_A_NAME:
                return 10, "Обращается к пациенту по имени"  # the name is known from the CRM
        stems = {name[:-1] for name in names if len(name) >= 3}
        later_admin = " ".join(t.text for t in admin_turns[1:])
        used = any(re.search(r"\b" + re.escape(stem), later_admin) for stem in stems)
        if used:
            return 10, "Имя пациента спрошено и используется" if asked else "Обращается к пациенту по имени"
        if asked or names:
            return 5, "Имя известно, но почти не используется"
        return 0, "Имя пациента не спрошено"

    # --- narrative ----------------------------------------------------------------------------
    def _contact_agreed(self, turns: list[Turn]) -> bool:
        """The administrator offered to call or write back and the patient agreed."""
        for index, turn in enumerate(turns):
            if turn.role != ADMIN or not matches(normalise(turn.text), P.CONTACT_LATER):
                continue
            reply = next((t for t in turns[index + 1 :] if t.role == PATIENT), None)
            if reply is None:
                continue
            text = normalise(reply.text)
            if not matches(text, P.SLOT_REJECTED) and matches(text, P.CONTACT_ACCEPTED, allow_negated=False):
                return True
        return False

    def _disposition(self, out: AnalysisOutput, turns: list[Turn], *, booked: bool, cancelled: bool) -> str:
        if booked:
            return "confirmed" if out.call_type == CallType.CONFIRMATION else "booked"
        if cancelled:
            return "cancelled"
        if any(o.key == "not_relevant" for o in out.objections):
            return "lost"
        if self._contact_agreed(turns):
            return "callback_agreed"
        if out.objections:
            return "thinking" if any(o.handled for o in out.objections) else "lost"
        return "info"

    def _narrative(
        self, out: AnalysisOutput, data: AnalysisInput, *, booked: bool, disposition: str, admin_text: str, specs
    ) -> None:
        turns = [t for t in data.turns if t.text.strip()]
        interest = {"booked": "high", "confirmed": "high", "lost": "low", "cancelled": "low"}.get(disposition, "medium")
        out.disposition, out.interest, out.crm_status = disposition, interest, CRM_STATUS_BY_DISPOSITION[disposition]

        label = CALL_TYPE_LABELS_RU[out.call_type]
        if data.direction == "inbound":
            request = next((t.text for t in turns if t.role == PATIENT and len(t.text.split()) >= 4), "")
            summary = f"{label}. Пациент: «{request[:200]}»" if request else f"{label}."
        elif out.call_type == CallType.OUTBOUND:
            summary = f"{out.call_type_reason}."
        else:
            summary = f"{label}: {out.call_type_reason.lower()}."
        if out.objections:
            summary += " Возражения: " + ", ".join(o.label.lower() for o in out.objections) + "."
        outcome = {
            "booked": "Пациент записан.",
            "confirmed": "Визит подтверждён.",
            "cancelled": "Визит отменён.",
            "callback_agreed": "Договорились связаться позже.",
            "lost": "Пациент отказался.",
        }.get(disposition, "Записи нет.")
        out.summary = f"{summary} {outcome}"

        clinic = data.clinic_name
        out.follow_up = {
            "booked": f"Здравствуйте! Ждём вас в клинике «{clinic}». Если планы изменятся, пожалуйста, предупредите нас.",
            "confirmed": f"Здравствуйте! Ждём вас в клинике «{clinic}». Если планы изменятся, пожалуйста, предупредите нас.",
            "cancelled": f"Здравствуйте! Это клиника «{clinic}». Когда будете готовы, подберём новое удобное время визита.",
        }.get(
            disposition,
            f"Здравствуйте! Это клиника «{clinic}». Вы интересовались нашими услугами — подобрать вам удобное время для консультации?",
        )
        weights = {spec.key: spec.weight for spec in specs}
        weakest = sorted(
            (c for c in out.criteria if c.applicable and c.score is not None and c.score < 7),
            key=lambda c: (c.score, -weights.get(c.key, 1)),
        )
        recommendations = [RECOMMENDATIONS.get(c.key, f"Улучшить: {c.title.lower()}.") for c in weakest[:3]]
        if not recommendations:
            recommendations.append("Разговор проведён по скрипту — сохраняйте этот уровень в каждом звонке.")
        if len(recommendations) < 2:
            recommendations.append("Разберите этот звонок с коллегами как пример: что в нём сработало.")
        out.recommendations = recommendations

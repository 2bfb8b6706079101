"""From timed words to utterances, and from speakers to roles — pure functions, no models.

**Utterances.** Consecutive words of one speaker form an utterance; a new one starts when the
speaker changes, after a pause longer than ``max_pause``, or when a turn runs long (see
:func:`build_utterances`). Audio events (laughter, music, a cough) never start, split or lengthen
an utterance: they are kept as inline markers such as ``[смех]`` in the utterance being spoken,
or lead the next utterance when nobody is speaking or the event belongs to another speaker. So
talk-time metrics count only speech while the reader still sees what happened.

**Roles.** :func:`assign_roles` scores each speaker on explainable evidence and returns the
reasons with the roles, so a wrong guess can be understood and corrected:

* recorded announcements ("ваш звонок очень важен для нас", "звонок записывается", voicemail) make
  a speaker ``other`` and are left out of the rest;
* the administrator greets with the clinic's name, introduces themself (a known administrator's
  name, "меня зовут", "администратор"), uses service phrases ("чем могу помочь", "слушаю вас",
  "как к вам обращаться", "записать вас"), and usually asks more questions;
* the patient asks to book, asks about prices, describes a complaint, or asks "это клиника …?";
* call direction: on an inbound call the clinic answers, so the first speaker is likely the
  administrator; on an outbound call the patient answers ("алло"), so the caller — the other
  speaker — is the administrator;
* with more than two human speakers the best-scoring pair gets administrator/patient and the
  rest ``other`` (a transfer, a relative, a diarization split).

Confidence grows with the score margin between the two parties (``1 - exp(-margin / 4)``) and is
capped low for single-speaker or undiarized transcripts.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from medai.integrations.transcription_types import Word

Role = Literal["administrator", "patient", "other"]
Direction = Literal["inbound", "outbound"]

UNKNOWN_SPEAKER = "unknown"  # label for words the provider did not attribute to anybody
_SENTENCE_END = re.compile(r"[.?!…]$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.?!…])\s+")


@dataclass(frozen=True)
class Utterance:
    speaker: str
    start: float
    end: float
    text: str


# -- utterances -----------------------------------------------------------------------------------


@dataclass
class _Piece:
    text: str
    start: float
    end: float
    spoken: bool  # False for an audio-event marker


@dataclass
class _Open:
    """An utterance being built: spoken words and event markers, with their times."""

    speaker: str
    pieces: list[_Piece] = field(default_factory=list)

    @property
    def start(self) -> float:
        return min(p.start for p in self.pieces if p.spoken)

    @property
    def end(self) -> float:
        return max(p.end for p in self.pieces if p.spoken)

    def last_sentence_end(self) -> int | None:
        """Index of the last spoken piece that ends a sentence, except the very last piece."""
        for index in range(len(self.pieces) - 2, -1, -1):
            piece = self.pieces[index]
            if piece.spoken and _SENTENCE_END.search(piece.text):
                return index
        return None

    def close(self) -> Utterance:
        text = " ".join(p.text for p in self.pieces)
        return Utterance(self.speaker, round(self.start, 3), round(self.end, 3), text)


def _event_marker(text: str) -> str:
    label = text.strip().strip("()[]{}").strip()
    return f"[{label}]" if label else ""


def _ends_sentence(current: _Open) -> bool:
    spoken = [p for p in current.pieces if p.spoken]
    return bool(spoken) and bool(_SENTENCE_END.search(spoken[-1].text))


def _split_long(current: _Open, word: Word, max_turn: float) -> tuple[_Open | None, _Open]:
    """Cut a monologue: after max_turn at the next sentence end; past 1.5 × max_turn at the last
    sentence end so far (carrying the rest over), or right here if no sentence has ended."""
    if current.end - current.start >= max_turn and _ends_sentence(current):
        return current, _Open(current.speaker)
    if word.end - current.start <= max_turn * 1.5:
        return None, current
    cut = current.last_sentence_end()
    if cut is None:
        return current, _Open(current.speaker)
    head = _Open(current.speaker, current.pieces[: cut + 1])
    return head, _Open(current.speaker, current.pieces[cut + 1 :])


def build_utterances(words: Iterable[Word], *, max_pause: float = 1.5, max_turn_seconds: float = 30) -> list[Utterance]:
    """Group timed words into utterances (see the module docstring for the rules).

    Words without a speaker are attributed to :data:`UNKNOWN_SPEAKER`. An event attributed to a
    different speaker than the one talking, or after a long pause, leads the next utterance; a
    transcript with no spoken words yields no utterances.
    """
    utterances: list[Utterance] = []
    current: _Open | None = None
    pending: list[_Piece] = []
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        if word.kind == "audio_event":
            marker = _event_marker(word.text)
            if not marker:
                continue
            piece = _Piece(marker, word.start, word.end, spoken=False)
            same_voice = word.speaker is None or current is None or word.speaker == current.speaker
            if current is not None and same_voice and word.start - current.end <= max_pause:
                current.pieces.append(piece)
            else:
                pending.append(piece)
            continue
        speaker = word.speaker or UNKNOWN_SPEAKER
        if current is not None and (speaker != current.speaker or word.start - current.end > max_pause):
            utterances.append(current.close())
            current = None
        if current is not None:
            finished, current = _split_long(current, word, max_turn_seconds)
            if finished is not None:
                utterances.append(finished.close())
        if current is None:
            current = _Open(speaker)
        current.pieces.extend(pending)
        pending = []
        current.pieces.append(_Piece(word.text, word.start, word.end, spoken=True))
    if current is not None:  # None only when nothing was said: events alone make no utterance
        current.pieces.extend(pending)
        utterances.append(current.close())
    return utterances


# -- roles: evidence ------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Lower case, ё→е, punctuation to spaces: phrases match regardless of how STT punctuated."""
    text = text.lower().replace("ё", "е")
    return " " + " ".join(re.sub(r"[^\w\s]", " ", text).split()) + " "


def _phrases(*pairs: tuple[str, float]) -> list[tuple[re.Pattern[str], str, float]]:
    """Phrase stems matched at a word start, so "администратор" also matches "администратора"."""
    return [(re.compile(r"(?<=\s)" + re.escape(p).replace(r"\ ", r"\s+")), p, w) for p, w in pairs]


_IVR = _phrases(
    *(
        (phrase, 1)
        for phrase in (
            "звонок очень важен",
            "ваш звонок важен",
            "звонок записывается",
            "разговор записывается",
            "разговоры записываются",
            "в целях контроля качества",
            "в целях улучшения качества",
            "оставайтесь на линии",
            "все операторы заняты",
            "ожидайте ответа",
            "дождитесь ответа",
            "в тональном режиме",
            "нажмите",
            "добавочный номер",
            "абонент не отвечает",
            "абонент недоступен",
            "вне зоны действия",
            "после звукового сигнала",
            "оставьте сообщение",
            "голосовой почт",
        )
    )
)
_ADMIN = _phrases(
    ("чем могу помочь", 2.5),
    ("чем могу быть полезн", 2.5),
    ("чем я могу вам помочь", 2.5),
    ("слушаю вас", 1.5),
    ("вас приветствует", 2),
    ("администратор", 2),
    ("меня зовут", 1),
    ("как я могу к вам обращаться", 2),
    ("как к вам обращаться", 2),
    ("как вас зовут", 1.5),
    ("ваша фамилия", 1.5),
    ("дата рождения", 1),
    ("ваш номер телефона", 1),
    ("могу вас записать", 2),
    ("записать вас", 2),
    ("запишу вас", 2),
    ("вы записаны", 2),
    ("есть свободн", 1.5),
    ("свободное окно", 1.5),
    ("ждем вас", 2),
    ("возьмите с собой", 1.5),
    ("наш адрес", 1.5),
    ("мы находимся", 1.5),
    ("звоню из клиники", 3),
    ("звоню вам из", 3),
    ("беспокоит клиника", 3),
    ("беспокоят из", 3),
    ("напоминаем", 2),
    ("подтвердить запись", 2),
)
_PATIENT = _phrases(
    ("хочу записаться", 2.5),
    ("хотел бы записаться", 2.5),
    ("хотела бы записаться", 2.5),
    ("хотел записаться", 2.5),
    ("хотела записаться", 2.5),
    ("можно записаться", 2.5),
    ("записаться на", 1.5),
    ("сколько стоит", 2),
    ("какая цена", 2),
    ("какая стоимость", 2),
    ("у меня болит", 1),
    ("болит", 1.5),
    ("мне нужно", 1),
    ("мне нужен", 1),
    ("мне нужна", 1),
    ("я звоню", 1.5),
    ("хотел узнать", 1.5),
    ("хотела узнать", 1.5),
    ("хотел бы узнать", 1.5),
    ("хотела бы узнать", 1.5),
    ("вы мне звонили", 2.5),
    ("мне звонили", 2),
    ("у вас есть", 1),
    ("вы принимаете", 1.5),
    ("вы работаете", 1.5),
)
_GENERIC_NAME_WORDS = frozenset(
    {
        "клиника", "клиники", "клиник", "медицинский", "медицинская", "центр", "стоматология",
        "стоматологическая", "стоматологический", "мц", "медцентр", "ооо", "ип", "сеть", "и", "на", "в",
    }
)  # fmt: skip
_QUESTION_START = re.compile(r"^\s(как|когда|сколько|где|какой|какая|какие|куда|почему|зачем|можно|вам удобно)\s")


def _stem(token: str) -> str:
    """Crude Russian stem: drop the last letter of longer words so cases still match."""
    return token[:-1] if len(token) >= 5 else token


def _mentions(normalised: str, stems: Sequence[str], needed: int) -> bool:
    found = sum(1 for stem in stems if re.search(r"(?<=\s)" + re.escape(stem), normalised))
    return bool(stems) and found >= needed


def _clinic_stems(clinic_name: str) -> tuple[list[str], int]:
    tokens = _normalise(clinic_name).split()
    distinctive = [t for t in tokens if t not in _GENERIC_NAME_WORDS and len(t) >= 3] or tokens
    stems = [_stem(t) for t in distinctive]
    return stems, len(stems) if len(stems) <= 2 else len(stems) - 1


def _name_stems(admin_names: Iterable[str]) -> list[str]:
    return sorted({_stem(t) for name in admin_names for t in _normalise(name).split() if len(t) >= 3})


_INTRO = r"(?<=\s)(?:зовут|администратор|администратора|это|с вами)\s+"


@dataclass
class _Evidence:
    admin: float = 0.0
    patient: float = 0.0
    questions: int = 0
    words: int = 0
    announcement_words: int = 0
    first_spoken: int = 1 << 30  # index of the speaker's first non-announcement utterance
    reasons: list[str] = field(default_factory=list)

    @property
    def net(self) -> float:
        return self.admin - self.patient

    @property
    def is_recording(self) -> bool:
        """Mostly announcements (by words): an IVR greeting, hold message or voicemail."""
        return self.words > 0 and self.announcement_words >= 0.6 * self.words

    def add(self, side: str, weight: float, why: str) -> None:
        setattr(self, side, getattr(self, side) + weight)
        self.reasons.append(f"{why} (+{weight:g} {'administrator' if side == 'admin' else side})")


def _is_announcement(normalised: str) -> bool:
    return any(pattern.search(normalised) for pattern, _, _ in _IVR)


def _score_phrases(ev: _Evidence, text: str, table: list[tuple[re.Pattern[str], str, float]], side: str) -> None:
    for pattern, phrase, weight in table:
        if pattern.search(text):
            ev.add(side, weight, f'says "{phrase}"')


def _introduces_known_name(opening: str, name_stems: Sequence[str], names_clinic: bool) -> bool:
    """A known administrator's name said as a self-introduction, not as an address to them."""
    for stem in name_stems:
        if re.search(_INTRO + re.escape(stem), opening):
            return True
        if names_clinic and re.search(r"(?<=\s)" + re.escape(stem), opening):
            return True  # "Улыбка, Анна, здравствуйте"
    return False


def _score_speaker(
    ev: _Evidence, spoken: Sequence[Utterance], clinic: tuple[list[str], int], name_stems: Sequence[str]
) -> None:
    normalised = [_normalise(u.text) for u in spoken]
    whole, opening = " ".join(normalised), " ".join(normalised[:2])
    _score_phrases(ev, whole, _ADMIN, "admin")
    _score_phrases(ev, whole, _PATIENT, "patient")
    opening_sentences = [s for u in spoken[:2] for s in _SENTENCE_SPLIT.split(u.text.strip())]
    clinic_sentences = [s for s in opening_sentences if _mentions(_normalise(s), *clinic)]
    opening_names_clinic = any(not s.endswith("?") for s in clinic_sentences)
    if opening_names_clinic:
        ev.add("admin", 3, "names the clinic in their opening words")
    elif clinic_sentences:
        ev.add("patient", 1, "asks whether this is the clinic")
    elif _mentions(whole, *clinic):
        ev.add("admin", 1, "names the clinic")
    if name_stems and _introduces_known_name(opening, name_stems, opening_names_clinic):
        ev.add("admin", 2, "introduces themself with a known administrator's name")


def _collect(utterances: Sequence[Utterance], clinic_name: str, admin_names: Sequence[str]) -> dict[str, _Evidence]:
    """Evidence per speaker. Announcement utterances count towards "recording" and nothing else,
    so an IVR saying "Вы позвонили в клинику Улыбка" does not make its speaker the administrator."""
    clinic, name_stems = _clinic_stems(clinic_name), _name_stems(admin_names)
    evidence: dict[str, _Evidence] = defaultdict(_Evidence)
    spoken: dict[str, list[Utterance]] = defaultdict(list)
    for index, utterance in enumerate(utterances):
        ev, normalised = evidence[utterance.speaker], _normalise(utterance.text)
        count = len(normalised.split())
        ev.words += count
        if _is_announcement(normalised):
            ev.announcement_words += count
            continue
        ev.first_spoken = min(ev.first_spoken, index)
        spoken[utterance.speaker].append(utterance)
        if "?" in utterance.text or _QUESTION_START.search(normalised):
            ev.questions += 1
    for speaker, own in spoken.items():
        _score_speaker(evidence[speaker], own, clinic, name_stems)
    return evidence


# -- roles: decision ------------------------------------------------------------------------------


@dataclass
class RoleAssignment:
    roles: dict[str, Role]
    confidence: float
    reasons: list[str]


def _confidence(margin: float) -> float:
    return round(1 - math.exp(-max(margin, 0.0) / 4), 2)


def _apply_direction(ev: _Evidence, direction: Direction) -> None:
    if direction == "inbound":
        ev.add("admin", 2, "speaks first on an inbound call (the clinic answers)")
    else:
        ev.add("patient", 2, "speaks first on an outbound call (the patient answers; the caller is the clinic)")


def _apply_questions(a: _Evidence, b: _Evidence) -> None:
    if abs(a.questions - b.questions) >= 2 and max(a.questions, b.questions) >= 1.5 * max(
        min(a.questions, b.questions), 1
    ):
        asker = a if a.questions > b.questions else b
        asker.add(
            "admin", 1, f"asks more questions ({max(a.questions, b.questions)} vs {min(a.questions, b.questions)})"
        )


def _explain(speaker: str, role: Role, ev: _Evidence, note: str = "") -> str:
    why = "; ".join(ev.reasons) or "no evidence"
    return f"{speaker} → {role}: {note + '; ' if note else ''}{why}"


def assign_roles(
    utterances: Sequence[Utterance],
    *,
    direction: Direction,
    clinic_name: str,
    admin_names: Sequence[str] = (),
) -> RoleAssignment:
    """Decide who is the administrator, who the patient, and who (IVR, a third party) is other."""
    if direction not in ("inbound", "outbound"):
        raise ValueError(f"direction must be 'inbound' or 'outbound', got {direction!r}")
    if not utterances:
        return RoleAssignment({}, 0.0, ["no speech in the transcript"])
    evidence = _collect(utterances, clinic_name, admin_names)
    roles: dict[str, Role] = {}
    reasons: list[str] = []
    for speaker, ev in evidence.items():
        if ev.is_recording:
            roles[speaker] = "other"
            reasons.append(f"{speaker} → other: recorded announcement ({ev.announcement_words} of {ev.words} words)")
    # Who spoke first ignores announcements: an IVR diarized into a caller's voice must not make
    # that caller "the one who answered".
    humans = sorted((s for s in evidence if s not in roles), key=lambda s: evidence[s].first_spoken)
    if not humans:
        return RoleAssignment(roles, 0.9, reasons)
    if len(humans) == 1:
        return _single_speaker(humans[0], evidence[humans[0]], roles, reasons)
    _apply_direction(evidence[humans[0]], direction)
    admin = max(humans, key=lambda s: evidence[s].net)
    patient = max((s for s in humans if s != admin), key=lambda s: (evidence[s].patient, -humans.index(s)))
    _apply_questions(evidence[admin], evidence[patient])
    if evidence[patient].net > evidence[admin].net:  # the question bonus flipped the pair
        admin, patient = patient, admin
    roles[admin], roles[patient] = "administrator", "patient"
    for speaker in humans:
        role = roles.setdefault(speaker, "other")
        note = "a speaker beyond the administrator and the patient" if role == "other" else ""
        reasons.append(_explain(speaker, role, evidence[speaker], note))
    confidence = _confidence(evidence[admin].net - evidence[patient].net)
    if len(humans) > 2:
        confidence = round(confidence * 0.8, 2)
    return RoleAssignment(roles, confidence, reasons)


def _single_speaker(speaker: str, ev: _Evidence, roles: dict[str, Role], reasons: list[str]) -> RoleAssignment:
    """One human voice: a voicemail left, nobody answering, or an undiarized transcript.

    Direction says who *answers*, which one voice cannot tell, so only what is said counts;
    without evidence the voice is taken to be the clinic's (it is the clinic's recording).
    """
    role: Role = "patient" if ev.net < 0 else "administrator"
    roles[speaker] = role
    reasons.append(_explain(speaker, role, ev, "the only human speaker"))
    confidence = min(0.5, _confidence(abs(ev.net)))
    if speaker == UNKNOWN_SPEAKER:
        reasons.append("the transcript has no speaker labels, so both parties may be mixed in one speaker")
        confidence = min(confidence, 0.2)
    return RoleAssignment(roles, confidence, reasons)

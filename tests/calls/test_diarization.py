"""Utterances from timed words, and roles from utterances (Russian clinic calls)."""

from __future__ import annotations

import pytest

from calls.diarization import UNKNOWN_SPEAKER, Utterance, assign_roles, build_utterances
from medai.integrations.elevenlabs import result_from_elevenlabs
from medai.integrations.transcription_types import Word
from tests.fakes.elevenlabs import FakeElevenLabs

CLINIC = "Стоматологическая клиника «Улыбка»"
ADMINS = ["Анна Петрова", "Мария Сидорова"]


def words_of(script: list[tuple[str | None, str]], *, word_seconds: float = 0.3, pause: float = 0.6) -> list[Word]:
    """Timed words from (speaker, line); a token in brackets is an audio event."""
    words, clock = [], 0.0
    for speaker, line in script:
        for token in line.split():
            kind = "audio_event" if token.startswith("(") else "word"
            words.append(Word(token, round(clock, 3), round(clock + word_seconds, 3), speaker, kind))
            clock += word_seconds
        clock += pause
    return words


def utterances_of(script: list[tuple[str | None, str]]) -> list[Utterance]:
    return build_utterances(words_of(script))


# -- build_utterances ------------------------------------------------------------------------------


def test_speaker_changes_split_utterances():
    result = utterances_of([("s0", "Клиника Улыбка, здравствуйте."), ("s1", "Добрый день."), ("s0", "Слушаю вас.")])
    assert [(u.speaker, u.text) for u in result] == [
        ("s0", "Клиника Улыбка, здравствуйте."),
        ("s1", "Добрый день."),
        ("s0", "Слушаю вас."),
    ]
    assert (result[0].start, result[0].end) == (0.0, 0.9)
    assert result[1].start == 1.5


def test_long_pause_splits_the_same_speaker_and_short_pause_does_not():
    words = [
        Word("Одну", 0.0, 0.3, "s0"),
        Word("минуту.", 0.3, 0.7, "s0"),
        Word("Так,", 2.5, 2.8, "s0"),  # 1.8 s later
        Word("смотрю.", 3.9, 4.3, "s0"),  # 1.1 s later
    ]
    result = build_utterances(words, max_pause=1.5)
    assert [u.text for u in result] == ["Одну минуту.", "Так, смотрю."]
    assert [(u.start, u.end) for u in result] == [(0.0, 0.7), (2.5, 4.3)]


def test_a_long_monologue_is_cut_at_a_sentence_end_after_max_turn():
    sentence = "Наша клиника работает ежедневно с девяти до девяти."
    result = build_utterances(words_of([("s0", " ".join([sentence] * 6))], word_seconds=1.0), max_turn_seconds=10)
    assert len(result) > 1
    assert all(u.text.endswith(".") for u in result)
    assert all(u.end - u.start <= 15 for u in result)
    assert " ".join(u.text for u in result) == " ".join([sentence] * 6)


def test_a_monologue_without_sentence_ends_is_cut_hard():
    result = build_utterances(words_of([("s0", "слово " * 40)], word_seconds=1.0), max_turn_seconds=10)
    assert len(result) >= 3
    assert max(u.end - u.start for u in result) <= 15


def test_audio_events_are_inline_markers_that_do_not_split_or_lengthen():
    words = [
        Word("Да", 0.0, 0.3, "s1"),
        Word("(смех)", 0.3, 1.2, "s1", "audio_event"),
        Word("конечно.", 1.2, 1.6, "s1"),
        Word("(музыка)", 1.6, 25.0, None, "audio_event"),  # hold music
        Word("Спасибо", 25.1, 25.5, "s0"),
    ]
    result = build_utterances(words)
    assert [(u.speaker, u.text, u.start, u.end) for u in result] == [
        ("s1", "Да [смех] конечно. [музыка]", 0.0, 1.6),
        ("s0", "Спасибо", 25.1, 25.5),
    ]


def test_events_before_any_speech_lead_the_first_utterance_and_events_alone_make_none():
    leading = build_utterances([Word("(гудки)", 0, 5, None, "audio_event"), Word("Алло?", 7.0, 7.4, "s1")])
    assert [u.text for u in leading] == ["[гудки] Алло?"]
    assert leading[0].start == 7.0
    assert build_utterances([Word("(музыка)", 0, 30, None, "audio_event")]) == []


def test_words_without_speaker_and_out_of_order_are_handled():
    result = build_utterances([Word("мир", 0.5, 0.9, None), Word("привет", 0.0, 0.4, None)])
    assert result == [Utterance(UNKNOWN_SPEAKER, 0.0, 0.9, "привет мир")]


# -- assign_roles ----------------------------------------------------------------------------------


def test_inbound_two_speakers():
    utterances = utterances_of(
        [
            ("speaker_0", "Клиника Улыбка, администратор Анна, здравствуйте! Чем могу помочь?"),
            ("speaker_1", "Здравствуйте, хочу записаться на чистку зубов. Сколько стоит?"),
            ("speaker_0", "Чистка стоит четыре тысячи. Как к вам обращаться?"),
            ("speaker_1", "Иван."),
        ]
    )
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC, admin_names=ADMINS)
    assert result.roles == {"speaker_0": "administrator", "speaker_1": "patient"}
    assert result.confidence >= 0.9
    admin_reason = next(r for r in result.reasons if r.startswith("speaker_0"))
    assert "names the clinic" in admin_reason
    assert "known administrator's name" in admin_reason
    assert "asks whether this is the clinic" not in admin_reason


def test_patient_addressing_the_administrator_by_name_is_not_self_introduction():
    utterances = utterances_of(
        [
            ("s0", "Улыбка, здравствуйте."),
            ("s1", "Анна, здравствуйте! Мне нужно перенести запись."),
        ]
    )
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC, admin_names=ADMINS)
    assert result.roles == {"s0": "administrator", "s1": "patient"}
    assert not any("known administrator" in r for r in result.reasons if r.startswith("s1"))


def test_outbound_the_patient_answers_and_the_caller_is_the_administrator():
    utterances = utterances_of(
        [
            ("speaker_0", "Алло?"),
            ("speaker_1", "Здравствуйте! Меня зовут Мария, звоню из клиники Улыбка. Напоминаем о записи на завтра."),
            ("speaker_0", "Да, помню, спасибо."),
        ]
    )
    result = assign_roles(utterances, direction="outbound", clinic_name=CLINIC, admin_names=ADMINS)
    assert result.roles == {"speaker_0": "patient", "speaker_1": "administrator"}
    assert result.confidence >= 0.8
    assert any("outbound" in r for r in result.reasons)


@pytest.mark.parametrize(("direction", "admin"), [("inbound", "s0"), ("outbound", "s1")])
def test_direction_decides_when_nothing_else_does(direction, admin):
    utterances = utterances_of([("s0", "Да."), ("s1", "Добрый день."), ("s0", "Угу.")])
    result = assign_roles(utterances, direction=direction, clinic_name=CLINIC)
    assert result.roles[admin] == "administrator"
    assert 0 < result.confidence < 0.5  # direction alone is weak evidence


def test_three_speakers_with_an_ivr_greeting():
    utterances = utterances_of(
        [
            ("speaker_0", "Здравствуйте! Вы позвонили в клинику Улыбка. Ваш звонок очень важен для нас."),
            ("speaker_0", "Разговор записывается в целях контроля качества. Оставайтесь на линии."),
            ("speaker_1", "Да, слушаю вас."),
            ("speaker_2", "Добрый день, я хотела бы записаться к ортодонту. У вас есть время в субботу?"),
            ("speaker_1", "Есть свободное окно в одиннадцать. Как я могу к вам обращаться?"),
            ("speaker_2", "Ольга."),
        ]
    )
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC, admin_names=ADMINS)
    assert result.roles == {"speaker_0": "other", "speaker_1": "administrator", "speaker_2": "patient"}
    ivr_reason = next(r for r in result.reasons if r.startswith("speaker_0"))
    assert "recorded announcement" in ivr_reason
    assert result.confidence >= 0.8


def test_an_ivr_diarized_into_the_callers_voice_does_not_make_them_the_answering_party():
    utterances = utterances_of(
        [
            ("s1", "Ваш звонок очень важен для нас."),
            ("s0", "Слушаю вас."),
            ("s1", "Добрый день, подскажите время работы в субботу и воскресенье, пожалуйста."),
            ("s0", "С девяти до трёх."),
        ]
    )
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC)
    assert result.roles == {"s0": "administrator", "s1": "patient"}
    assert any(r.startswith("s0") and "speaks first" in r for r in result.reasons)


def test_a_third_human_speaker_is_other():
    utterances = utterances_of(
        [
            ("a", "Клиника Улыбка, здравствуйте, чем могу помочь?"),
            ("b", "Хочу записаться к хирургу."),
            ("c", "Да."),
            ("a", "Могу вас записать на среду."),
        ]
    )
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC)
    assert result.roles == {"a": "administrator", "b": "patient", "c": "other"}


def test_one_speaker_greeting_nobody():
    utterances = utterances_of([("speaker_0", "Клиника Улыбка, здравствуйте! Алло? Вас не слышно.")])
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC)
    assert result.roles == {"speaker_0": "administrator"}
    assert result.confidence <= 0.5


def test_one_speaker_leaving_a_patient_message():
    utterances = utterances_of([("speaker_0", "Здравствуйте, я хотел записаться, у меня болит зуб. Перезвоните.")])
    result = assign_roles(utterances, direction="outbound", clinic_name=CLINIC)
    assert result.roles == {"speaker_0": "patient"}


def test_voicemail_only_is_other():
    utterances = utterances_of([("speaker_0", "Абонент не отвечает. Оставьте сообщение после звукового сигнала.")])
    result = assign_roles(utterances, direction="outbound", clinic_name=CLINIC)
    assert result.roles == {"speaker_0": "other"}


def test_undiarized_transcript_has_low_confidence():
    utterances = utterances_of([(None, "Клиника Улыбка, здравствуйте! Хочу записаться. Записываю вас.")])
    result = assign_roles(utterances, direction="inbound", clinic_name=CLINIC)
    assert list(result.roles) == [UNKNOWN_SPEAKER]
    assert result.confidence <= 0.2
    assert any("no speaker labels" in r for r in result.reasons)


def test_empty_and_invalid_input():
    assert assign_roles([], direction="inbound", clinic_name=CLINIC).roles == {}
    with pytest.raises(ValueError, match="direction"):
        assign_roles(utterances_of([("s0", "Да")]), direction="incoming", clinic_name=CLINIC)  # type: ignore[arg-type]


def test_end_to_end_from_an_elevenlabs_response():
    fake = FakeElevenLabs()  # only its response builder is used; no server is started
    fake.script = [
        ("speaker_1", "Алло."),
        ("speaker_0", "Добрый день! Беспокоит клиника Улыбка, администратор Анна. Вы оставляли заявку на сайте."),
        ("speaker_1", "(смех) Да, оставлял. Сколько стоит имплант?"),
    ]
    result = result_from_elevenlabs(fake.transcript({"diarize": "true"}))
    utterances = build_utterances(result.words)
    assert utterances[2].text == "[смех] Да, оставлял. Сколько стоит имплант?"
    roles = assign_roles(utterances, direction="outbound", clinic_name="Улыбка", admin_names=["Анна"])
    assert roles.roles == {"speaker_1": "patient", "speaker_0": "administrator"}

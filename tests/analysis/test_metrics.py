"""Conversation metrics from timestamps (analysis.metrics) on a hand-made transcript."""

import pytest

from analysis.metrics import conversation_metrics

# 0–2 IVR; admin 3–10 (two utterances in a row = one monologue 3–14); patient interrupts at 13.5;
# admin interrupts the patient at 19.5; a 6 s silence 20–26; call recorded for 30 s.
UTTERANCES = [
    {"speaker": "ivr", "role": "other", "start": 0.0, "end": 2.0, "text": "Ваш звонок важен для нас."},
    {"speaker": "A", "role": "administrator", "start": 3.0, "end": 10.0, "text": "Клиника, здравствуйте! Как вас зовут? Чем помочь?"},
    {"speaker": "A", "role": "administrator", "start": 10.5, "end": 14.0, "text": "У нас сегодня акция."},
    {"speaker": "B", "role": "patient", "start": 13.5, "end": 20.0, "text": "Сколько стоит чистка?"},
    {"speaker": "A", "role": "administrator", "start": 19.5, "end": 20.0, "text": "Шесть тысяч."},
    {"speaker": "B", "role": "patient", "start": 26.0, "end": 28.0, "text": "Дорого. Я подумаю."},
    {"speaker": "A", "role": "administrator", "start": 28.1, "end": 28.5, "text": "Хорошо?"},
]


def test_metrics_of_a_hand_made_transcript():
    m = conversation_metrics(UTTERANCES, duration_seconds=30)
    assert m["duration_seconds"] == 30.0
    assert m["talk_seconds"] == {"administrator": 11.4, "other": 2.0, "patient": 8.5}
    assert m["talk_share"] == {"administrator": 0.521, "other": 0.091, "patient": 0.388}
    assert m["talk_listen_ratio"] == 1.34
    # speech covers 0–2, 3–10, 10.5–20, 26–28, 28.1–28.5 = 20.9 s of 30
    assert m["silence_seconds"] == 9.1
    assert m["silence_share"] == 0.303
    assert m["longest_monologue"] == {"role": "administrator", "seconds": 11.0}
    assert m["longest_monologue_by_role"]["patient"] == 6.5
    assert m["interruptions"] == {"administrator": 1, "patient": 1}  # 13.5 < 14.0 and 19.5 < 20.0
    assert m["interruptions_total"] == 2
    assert m["admin_questions"] == 3
    assert m["first_response_seconds"] == 3.0
    assert m["admin_response_avg_seconds"] == pytest.approx(0.1)  # 20.0→19.5 counts 0, 28.0→28.1 is 0.1
    assert (m["utterances"], m["speakers"]) == (7, 3)


def test_small_overlaps_are_jitter_not_interruptions():
    utterances = [
        {"speaker": "A", "role": "administrator", "start": 0.0, "end": 5.0, "text": "Здравствуйте."},
        {"speaker": "B", "role": "patient", "start": 4.9, "end": 6.0, "text": "Добрый день."},
    ]
    assert conversation_metrics(utterances)["interruptions_total"] == 0


def test_word_timestamps_give_talk_time_without_pauses_inside_an_utterance():
    utterances = [{"speaker": "A", "role": "administrator", "start": 0.0, "end": 10.0, "text": "Алло ... да"}]
    words = [
        {"text": "Алло", "start": 0.0, "end": 1.0, "speaker": "A", "kind": "word"},
        {"text": " ", "start": 1.0, "end": 9.0, "speaker": "A", "kind": "spacing"},
        {"text": "да", "start": 9.0, "end": 10.0, "speaker": "A", "kind": "word"},
    ]
    m = conversation_metrics(utterances, words=words, roles={"A": "administrator"}, duration_seconds=10)
    assert m["talk_seconds"] == {"administrator": 2.0}
    assert m["silence_share"] == 0.8


def test_empty_transcript_has_no_metrics():
    assert conversation_metrics([]) == {}

from datetime import date

import pytest
from django.utils import translation

from telegrambot import texts
from tests.factories import ClinicFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("count", "word"), [(1, "звонок"), (2, "звонка"), (5, "звонков"), (21, "звонок"), (12, "звонков")])
def test_russian_plurals(count, word):
    clinic = ClinicFactory(name="Улыбка")
    payloads = [{"call_id": i, "step": "transcribe", "error": "HTTP 500"} for i in range(count)]
    with translation.override("ru"):
        text = texts.failures_alert(clinic, payloads)
    assert text.startswith(f"❗ «Улыбка»: {count} {word} не удалось обработать.")


def test_formatting_helpers():
    assert texts.fmt_duration(151) == "2:31"
    assert texts.fmt_duration(None) == "—"
    assert texts.fmt_pct(80.0) == "80 %" and texts.fmt_pct(33.33) == "33.3 %" and texts.fmt_pct(None) == "—"
    assert texts.fmt_range(date(2026, 11, 9), date(2026, 11, 15)) == "09.11–15.11.2026"
    assert texts.mask_phone("+79161234567") == "…45 67"
    assert texts.mask_phone("") == ""


def test_english_and_russian_stats():
    clinic = ClinicFactory(name="Smile")
    figures = {"calls": 4, "answered": 3, "analysed": 2, "booked": 1, "quality_pct": 75.0, "good_calls_pct": 50.0, "conversion_pct": 33.33, "duration_avg_s": 95}
    with translation.override("en"):
        en = texts.stats(clinic, "week", date(2026, 11, 16), date(2026, 11, 18), figures)
    with translation.override("ru"):
        ru = texts.stats(clinic, "week", date(2026, 11, 16), date(2026, 11, 18), figures)
    assert en.splitlines()[1] == "Calls: 4 (answered 3, not answered 1)"
    assert ru.splitlines()[0] == "📊 Smile — Эта неделя, 16.11–18.11.2026"
    assert ru.splitlines()[1] == "Звонков: 4 (отвечено 3, без ответа 1)"
    assert "конверсия 33.3 %" in ru

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from analysis.models import Analysis
from calls.models import Call
from clinics.quotas import quota_reserve
from reports.models import Report
from reports.rollups import rollups_recompute
from telegrambot.models import ReportRequest
from tests.factories import AdministratorFactory, AnalysisFactory, CallFactory, ClinicFactory, TranscriptFactory
from tests.fakes.telegram import callback_update, message_update

pytestmark = pytest.mark.django_db

# Wednesday 18 Nov 2026, 10:00 UTC = 13:00 in Moscow.
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=True):
        yield


def _answered_call(clinic, *, at, score=None, booked=None, admin=None, phone="+79161234567", call_type="first_contact"):
    call = CallFactory(
        clinic=clinic, started_at=at, status="answered", duration_seconds=150, booked=booked, phone=phone,
        administrator=admin, stage="done",
    )
    if score is not None:
        AnalysisFactory(call=call, overall_score=Decimal(str(score)), call_type=call_type, summary="Пациент записан на приём.")
    return call


def _keyboard(message):
    return [[b["callback_data"] for b in row] for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])]


def test_help_in_russian_and_english(run_bot, link_chat, clinic):
    link_chat(clinic, 800)
    fake = run_bot(message_update(800, "/help", language_code="ru"), message_update(800, "/help", language_code="en-GB"))
    ru, en = fake.texts(800)
    assert "/stats — звонки и качество" in ru and clinic.name in ru
    assert "/stats — calls and quality" in en


def test_stats_today_week_month_in_the_clinics_time_zone(run_bot, link_chat, clinic):
    admin = AdministratorFactory(clinic=clinic, name="Анна")
    # 17 Nov 22:30 UTC is already 18 Nov in Moscow: it counts as today.
    _answered_call(clinic, at=datetime(2026, 11, 17, 22, 30, tzinfo=UTC), score=8, booked=True, admin=admin)
    _answered_call(clinic, at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC), score=6, booked=False, admin=admin)
    CallFactory(clinic=clinic, started_at=datetime(2026, 11, 18, 9, 0, tzinfo=UTC), status="missed", duration_seconds=0)
    # Monday of this week, and earlier this month.
    _answered_call(clinic, at=datetime(2026, 11, 16, 9, 0, tzinfo=UTC), score=10, booked=True)
    _answered_call(clinic, at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC), score=4, booked=False)
    # Another clinic's calls never count.
    other = ClinicFactory()
    _answered_call(other, at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC), score=9, booked=True)
    for each in (clinic, other):  # what the pipeline's roll-up step does
        rollups_recompute(clinic=each, date_from=date(2026, 11, 1), date_to=date(2026, 11, 18))
    link_chat(clinic, 801, language="en")

    fake = run_bot(message_update(801, "/stats", language_code="en"))
    text = fake.sent[-1]["text"]
    assert "Today, 18.11.2026" in text
    assert "Calls: 3 (answered 2, not answered 1)" in text
    assert "quality 70 %" in text and "good calls 50 %" in text
    assert "Booked: 1 · conversion 50 %" in text
    assert "Average answered call: 2:30" in text
    assert _keyboard(fake.sent[-1]) == [["stats:today", "stats:week", "stats:month"]]

    message_id = 4242
    run_bot(callback_update(801, "stats:week", message_id=message_id, language_code="en"))
    edited = fake.sent[-1]
    assert edited["edited"] == message_id
    assert "This week, 16.11–18.11.2026" in edited["text"] and "Calls: 4 " in edited["text"]
    assert fake.answered  # the button's spinner is stopped

    run_bot(callback_update(801, "stats:month", message_id=message_id, language_code="en"))
    assert "Calls: 5 " in fake.sent[-1]["text"] and "This month, 01.11–18.11.2026" in fake.sent[-1]["text"]


def test_limits_shows_quota_usage(run_bot, link_chat, clinic):
    quota_reserve(clinic=clinic, call_id=1, seconds=600)
    link_chat(clinic, 802)
    fake = run_bot(message_update(802, "/limits", language_code="en"))
    text = fake.texts(802)[-1]
    assert "Month from 01.11.2026: used 10 of 3000 min" in text
    assert "Week from 16.11.2026: used 10 of 750 min" in text and "left 740 min" in text


def test_calls_lists_latest_with_scores_and_a_button_for_details(run_bot, link_chat, clinic):
    admin = AdministratorFactory(clinic=clinic, name="Анна")
    call = _answered_call(clinic, at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC), score=7.5, booked=True, admin=admin)
    TranscriptFactory(call=call)
    Analysis.objects.filter(call=call).update(recommendations=["Назовите своё имя"])
    link_chat(clinic, 803, language="en")

    fake = run_bot(message_update(803, "/calls", language_code="en"))
    text = fake.texts(803)[-1]
    assert "18.11 11:00 ⬅ · Анна · …45 67 · 2:30 · score 7.5 · booked" in text
    assert "+79161234567" not in text  # phones are masked in chats
    assert _keyboard(fake.sent[-1]) == [[f"call:{call.pk}"]]

    run_bot(callback_update(803, f"call:{call.pk}", language_code="en"))
    card = fake.texts(803)[-1]
    assert f"Call #{call.pk}" in card and "Administrator: Анна" in card
    assert "Type: First contact · score 7.5" in card
    assert "Summary:\nПациент записан на приём." in card
    assert "• Назовите своё имя" in card
    assert "Administrator: Клиника, здравствуйте!" in card and "Patient: Здравствуйте, хочу записаться." in card
    assert "/reports/call/" in card  # a signed link to the full transcript


def test_a_chat_never_sees_another_clinics_call(run_bot, link_chat, clinic):
    other = ClinicFactory()
    secret_call = _answered_call(other, at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC), score=5)
    Analysis.objects.filter(call=secret_call).update(summary="Секрет другой клиники")
    TranscriptFactory(call=secret_call)
    link_chat(clinic, 804, language="en")

    fake = run_bot(
        callback_update(804, f"call:{secret_call.pk}", language_code="en"),
        message_update(804, "/calls", language_code="en"),
        message_update(804, "/find записаться", language_code="en"),
        message_update(804, "/find +7 916 123-45-67", language_code="en"),
    )
    assert fake.answered[-1]["text"] == "Call not found."
    everything = "\n".join(fake.texts(804))
    assert "Секрет" not in everything and f"#{secret_call.pk}" not in everything
    assert fake.texts(804)[0].endswith("No calls.")


def test_find_by_phone_and_by_phrase(run_bot, link_chat, clinic):
    by_phone = _answered_call(clinic, at=datetime(2026, 11, 18, 7, 0, tzinfo=UTC), phone="+79035550011")
    by_text = _answered_call(clinic, at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC), phone="+79990001122")
    TranscriptFactory(
        call=by_text,
        utterances=[{"speaker": "B", "role": "patient", "start": 0, "end": 2, "text": "Сколько стоит имплант?"}],
    )
    link_chat(clinic, 805, language="en")
    fake = run_bot(
        message_update(805, "/find 8 (903) 555-00-11", language_code="en"),
        message_update(805, "/find имплант", language_code="en"),
        message_update(805, "/find", language_code="en"),
    )
    by_phone_text, by_text_text, usage = fake.texts(805)
    assert "…00 11" in by_phone_text and "…11 22" not in by_phone_text
    assert "…11 22" in by_text_text and "…00 11" not in by_text_text
    assert _keyboard(fake.sent[-3]) == [[f"call:{by_phone.pk}"]]
    assert _keyboard(fake.sent[-2]) == [[f"call:{by_text.pk}"]]
    assert usage.startswith("Send /find with a phone number")


def test_report_builds_pdf_and_xlsx_and_sends_them_back(run_bot, link_chat, clinic, settings):
    _answered_call(clinic, at=datetime(2026, 11, 10, 8, 0, tzinfo=UTC), score=8, booked=True)
    link = link_chat(clinic, 806, language="en")
    fake = run_bot(message_update(806, "/report", language_code="en"))
    assert _keyboard(fake.sent[-1]) == [["report:this_week", "report:last_week"], ["report:this_month", "report:last_month"]]

    run_bot(callback_update(806, "report:last_week", message_id=77, language_code="en"))
    assert fake.sent[-1]["text"].startswith("Preparing the report for 09.11–15.11.2026")
    reports = Report.objects.filter(clinic=clinic).order_by("kind")
    assert [(r.kind, r.date_from, r.date_to) for r in reports] == [
        ("pdf", date(2026, 11, 9), date(2026, 11, 15)),
        ("xlsx", date(2026, 11, 9), date(2026, 11, 15)),
    ]
    # Tapping again while they build adds nothing.
    run_bot(callback_update(806, "report:last_week", message_id=77, language_code="en"))
    assert Report.objects.filter(clinic=clinic).count() == 2

    from reports.services import report_build
    from telegrambot.notifications import outbox_deliver

    for report in reports:
        assert report_build(report.pk) == "done"
    outbox_deliver()
    documents = fake.documents(806)
    assert sorted(d["document"] for d in documents) == sorted(r.filename for r in reports)
    assert documents[0]["content"][:4] in (b"%PDF", b"PK\x03\x04")
    assert all(d["caption"] == f"Report of {clinic.name} for 09.11–15.11.2026" for d in documents)
    assert set(ReportRequest.objects.filter(chat_link=link).values_list("outcome", flat=True)) == {"sent"}
    # The report_ready events of these reports are not announced again as text.
    assert not [t for t in fake.texts(806) if "is ready" in t]
    outbox_deliver()
    assert len(fake.documents(806)) == 2


def test_report_that_failed_is_reported_as_failed(run_bot, fake_tg, link_chat, clinic):
    link_chat(clinic, 807, language="en")
    run_bot(callback_update(807, "report:this_month", message_id=78, language_code="en"))
    Report.objects.filter(clinic=clinic).update(status=Report.Status.FAILED, error="boom")
    from telegrambot.notifications import outbox_deliver

    outbox_deliver()
    texts = [t for t in fake_tg.texts(807) if "could not be built" in t]
    assert texts == ["The report for 01.11–18.11.2026 could not be built. Please try again later."] * 2


def test_unknown_command_and_plain_text(run_bot, link_chat, clinic):
    link_chat(clinic, 808, language="en")
    fake = run_bot(message_update(808, "/frobnicate", language_code="en"), message_update(808, "hi", language_code="en"))
    assert fake.texts(808)[0] == "I don't know this command. /help lists what I can do."
    assert "/stats" in fake.texts(808)[1]


def test_a_stale_button_is_answered(run_bot, link_chat, clinic):
    link_chat(clinic, 809, language="en")
    fake = run_bot(callback_update(809, "nonsense:1", language_code="en"))
    assert fake.answered[-1]["text"] == "This button is no longer valid."


def test_the_same_update_is_handled_once(run_bot, link_chat, clinic):
    link_chat(clinic, 810, language="en")
    update = message_update(810, "/limits", language_code="en")
    fake = run_bot(update)
    run_bot(json.loads(json.dumps(update)))
    assert len(fake.texts(810)) == 1


def test_a_chat_that_blocked_the_bot_is_unlinked_when_replying(run_bot, fake_tg, link_chat, clinic):
    link = link_chat(clinic, 811)
    fake_tg.block(811)
    run_bot(message_update(811, "/limits"))
    link.refresh_from_db()
    assert link.unlinked_at is not None and link.unlink_reason == "blocked"


def test_call_lines_show_missed_and_failed(run_bot, link_chat, clinic):
    CallFactory(clinic=clinic, started_at=datetime(2026, 11, 18, 9, 0, tzinfo=UTC), status="missed", duration_seconds=0)
    CallFactory(
        clinic=clinic, started_at=datetime(2026, 11, 18, 9, 30, tzinfo=UTC), stage="failed", failed_stage="transcribed"
    )
    link_chat(clinic, 812, language="en")
    text = run_bot(message_update(812, "/calls", language_code="en")).texts(812)[-1]
    assert "not answered" in text and "processing failed" in text
    assert Call.objects.filter(clinic=clinic).count() == 2

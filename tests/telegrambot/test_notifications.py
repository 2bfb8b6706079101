import threading
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from clinics.models import OutboxEvent
from telegrambot.models import ChatLink, TelegramSettings
from telegrambot.notifications import digests_send_due, outbox_deliver
from tests.factories import ClinicFactory

pytestmark = pytest.mark.django_db


def _quota_event(clinic, percent=80, dedup="month:2026-11-01:80"):
    return OutboxEvent.objects.create(
        clinic=clinic,
        kind=OutboxEvent.Kind.QUOTA_THRESHOLD,
        dedup_key=dedup,
        payload={"period": "month", "start": "2026-11-01", "percent": percent, "used_minutes": 2400.0, "limit_minutes": 3000.0},
    )


def _failure(clinic, call_id, step="transcribe"):
    return OutboxEvent.objects.create(
        clinic=clinic, kind=OutboxEvent.Kind.PIPELINE_FAILED, payload={"call_id": call_id, "step": step, "error": "HTTP 500"}
    )


def test_quota_alert_is_delivered_once_in_each_chats_language(fake_tg, link_chat, clinic):
    link_chat(clinic, 900, language="en")
    link_chat(clinic, 901, language="ru")
    other_clinic_chat = link_chat(ClinicFactory(), 902)
    event = _quota_event(clinic)

    outbox_deliver()
    outbox_deliver()

    assert fake_tg.texts(900) == [f"⚠️ {clinic.name} has used 80% of its monthly minutes (2400 of 3000)."]
    assert fake_tg.texts(901) == [f"⚠️ «{clinic.name}»: израсходовано 80% минут (месячный лимит: 2400 из 3000)."]
    assert fake_tg.texts(other_clinic_chat.chat_id) == []
    event.refresh_from_db()
    assert event.delivered_at is not None


def test_quota_exhausted_and_crm_broken(fake_tg, link_chat, clinic):
    link_chat(clinic, 903, language="en")
    _quota_event(clinic, percent=100, dedup="month:2026-11-01:100")
    OutboxEvent.objects.create(
        clinic=clinic, kind=OutboxEvent.Kind.CRM_BROKEN, payload={"connection_id": 1, "error": "invalid_grant"}
    )
    outbox_deliver()
    quota, crm = fake_tg.texts(903)
    assert quota.startswith(f"⛔ {clinic.name} has used up its monthly minutes") and "New calls wait" in quota
    assert "amoCRM connection" in crm and "invalid_grant" in crm


def test_two_workers_never_deliver_the_same_event_twice(fake_tg, link_chat, clinic):
    link_chat(clinic, 904, language="en")
    _quota_event(clinic)
    from telegrambot import notifications

    real_claim = notifications._claim

    def claim_after_a_competitor(ids, stamp):
        # Another worker claims every row between our read and our UPDATE.
        OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True).update(delivered_at=stamp - timedelta(seconds=1))
        return real_claim(ids, stamp)

    notifications._claim = claim_after_a_competitor
    try:
        outbox_deliver()
    finally:
        notifications._claim = real_claim
    assert fake_tg.texts(904) == []


def test_pipeline_failures_are_batched(fake_tg, link_chat, clinic, settings):
    settings.TELEGRAM_FAILURE_BATCH_MINUTES = 15
    link_chat(clinic, 905, language="en")
    for call_id in range(1, 41):
        _failure(clinic, call_id, step="transcribe" if call_id % 4 else "analyse")

    outbox_deliver()
    assert len(fake_tg.texts(905)) == 1
    text = fake_tg.texts(905)[0]
    assert text.startswith(f"❗ 40 calls of {clinic.name} failed processing.")
    assert "transcribe: 30, analyse: 10" in text
    assert text.count("HTTP 500") == 3  # a few examples, not forty lines

    # More failures inside the window wait, then go out as one more message.
    for call_id in range(41, 51):
        _failure(clinic, call_id)
    outbox_deliver()
    assert len(fake_tg.texts(905)) == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=True):
        outbox_deliver()
    assert len(fake_tg.texts(905)) == 2
    assert fake_tg.texts(905)[1].startswith("❗ 10 calls")
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_a_chat_that_blocked_the_bot_is_unlinked(fake_tg, link_chat, clinic):
    blocked = link_chat(clinic, 906)
    link_chat(clinic, 907, language="en")
    fake_tg.block(906)
    _quota_event(clinic)
    outbox_deliver()
    blocked.refresh_from_db()
    assert blocked.unlinked_at is not None and blocked.unlink_reason == ChatLink.UnlinkReason.BLOCKED
    assert len(fake_tg.texts(907)) == 1
    # Later events no longer try the blocked chat.
    _quota_event(clinic, percent=100, dedup="x")
    fake_tg.requests.clear()
    outbox_deliver()
    assert all('"chat_id": 906' not in r.body.decode(errors="replace") for r in fake_tg.requests)
    assert len(fake_tg.texts(907)) == 2


def test_flood_control_is_waited_out(fake_tg, link_chat, clinic):
    link_chat(clinic, 908, language="en")
    fake_tg.flood("sendMessage", retry_after=1)
    _quota_event(clinic)
    outbox_deliver()
    assert len(fake_tg.texts(908)) == 1
    assert len(fake_tg.requests_to("POST", fake_tg.path("sendMessage"))) == 2


def test_a_long_flood_wait_releases_the_event_for_the_next_run(fake_tg, link_chat, clinic, settings):
    settings.TELEGRAM_MAX_RETRY_AFTER = 5
    link_chat(clinic, 909, language="en")
    fake_tg.flood("sendMessage", retry_after=60)
    event = _quota_event(clinic)
    delivery = outbox_deliver()
    event.refresh_from_db()
    assert event.delivered_at is None and delivery.released == 1
    outbox_deliver()
    assert len(fake_tg.texts(909)) == 1


def test_events_without_chats_or_too_old_are_not_sent_later(fake_tg, link_chat, clinic, settings):
    settings.TELEGRAM_OUTBOX_MAX_AGE_HOURS = 24
    lonely = _quota_event(clinic)
    outbox_deliver()
    lonely.refresh_from_db()
    assert lonely.delivered_at is not None

    link_chat(clinic, 910, language="en")
    old = _quota_event(clinic, dedup="old")
    OutboxEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert outbox_deliver().dropped == 1
    assert fake_tg.texts(910) == []


def test_report_ready_from_elsewhere_is_announced(fake_tg, link_chat, clinic):
    link_chat(clinic, 911, language="en")
    OutboxEvent.objects.create(
        clinic=clinic,
        kind=OutboxEvent.Kind.REPORT_READY,
        payload={"report_id": 999, "kind": "pdf", "date_from": "2026-11-01", "date_to": "2026-11-30", "url": "https://x/files/report/t/"},
    )
    outbox_deliver()
    assert fake_tg.texts(911) == [
        f"📄 The PDF report of {clinic.name} for 01.11–30.11.2026 is ready.\n"
        "Download (the link works for a limited time): https://x/files/report/t/"
    ]


def test_nothing_to_send_opens_no_bot_session(fake_tg, db):
    outbox_deliver()
    digests_send_due()
    assert fake_tg.requests == []


# --- digests ---------------------------------------------------------------------------------------
def test_digest_is_sent_once_a_day_at_the_clinics_time(fake_tg, link_chat, settings):
    moscow = ClinicFactory(time_zone="Europe/Moscow")
    vladivostok = ClinicFactory(time_zone="Asia/Vladivostok")
    TelegramSettings.objects.create(clinic=moscow, digest_time=time(9, 0))
    TelegramSettings.objects.create(clinic=vladivostok, digest_time=time(9, 0))
    link_chat(moscow, 920, language="en")
    link_chat(vladivostok, 921, language="en")

    # 05:55 UTC: 08:55 in Moscow (not yet), 15:55 in Vladivostok (due).
    with time_machine.travel(datetime(2026, 11, 18, 5, 55, tzinfo=UTC), tick=False):
        digests_send_due()
        digests_send_due()
    assert fake_tg.texts(920) == []
    assert len(fake_tg.texts(921)) == 1
    assert fake_tg.texts(921)[0].startswith(f"☀️ Daily digest of {vladivostok.name} for 17.11.2026")

    with time_machine.travel(datetime(2026, 11, 18, 6, 5, tzinfo=UTC), tick=False):
        digests_send_due()
    assert len(fake_tg.texts(920)) == 1 and len(fake_tg.texts(921)) == 1
    assert "for 17.11.2026" in fake_tg.texts(920)[0]

    # The next day, again once each.
    with time_machine.travel(datetime(2026, 11, 19, 7, 0, tzinfo=UTC), tick=False):
        digests_send_due()
        digests_send_due()
    assert len(fake_tg.texts(920)) == 2 and len(fake_tg.texts(921)) == 2


def test_digest_content_and_opt_outs(fake_tg, link_chat, clinic):
    from calls.models import Call
    from tests.factories import CallFactory

    CallFactory(clinic=clinic, started_at=datetime(2026, 11, 17, 9, 0, tzinfo=UTC), stage="failed", status="answered")
    link_chat(clinic, 922, language="en")
    muted = link_chat(clinic, 923)
    ChatLink.objects.filter(pk=muted.pk).update(digest_enabled=False)
    with time_machine.travel(datetime(2026, 11, 18, 7, 0, tzinfo=UTC), tick=False):
        digests_send_due()
    text = fake_tg.texts(922)[0]
    assert "Minutes used: month 0 %, week 0 %" in text
    assert "⚠️ 1 call failed processing that day." in text
    assert fake_tg.texts(923) == []
    assert Call.objects.count() == 1

    TelegramSettings.objects.update_or_create(clinic=clinic, defaults={"digest_enabled": False})
    with time_machine.travel(datetime(2026, 11, 19, 7, 0, tzinfo=UTC), tick=False):
        digests_send_due()
    assert len(fake_tg.texts(922)) == 1


def test_a_failed_digest_is_retried_by_the_next_run(fake_tg, link_chat, clinic):
    link = link_chat(clinic, 924, language="en")
    fake_tg.fail_next("POST", fake_tg.path("sendMessage"), status=400, body={"ok": False, "error_code": 400, "description": "Bad Request: x"})
    with time_machine.travel(datetime(2026, 11, 18, 7, 0, tzinfo=UTC), tick=False):
        digests_send_due()
        link.refresh_from_db()
        assert link.last_digest_on is None
        digests_send_due()
    link.refresh_from_db()
    assert str(link.last_digest_on) == "2026-11-18"
    assert len(fake_tg.texts(924)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_digest_runs_send_one_digest(fake_tg, link_chat, clinic):
    link_chat(clinic, 925, language="en")
    errors = []

    def run():
        try:
            digests_send_due(now=datetime(2026, 11, 18, 7, 0, tzinfo=UTC))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(fake_tg.texts(925)) == 1

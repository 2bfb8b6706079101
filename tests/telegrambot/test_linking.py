from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from telegrambot.models import ChatLink, LinkCode, LinkThrottle, hash_link_code
from telegrambot.services import chat_link_redeem, deep_link, link_code_create
from tests.factories import ClinicFactory
from tests.fakes.telegram import message_update

pytestmark = pytest.mark.django_db


def test_code_is_random_single_use_and_stored_hashed(clinic):
    row, code = link_code_create(clinic=clinic, role="owner", label="Dr. Ivanova")
    assert len(code) >= 22  # ≥ 128 bits in base64url
    assert len(set(code)) > 10
    assert row.code_hash == hash_link_code(code)
    assert code not in str(LinkCode.objects.filter(pk=row.pk).values().get())
    other_row, other = link_code_create(clinic=clinic, role="owner")
    assert other != code and other_row.code_hash != row.code_hash
    assert row.expires_at > timezone.now() + timedelta(hours=1)


def test_deep_link_uses_the_bots_username(settings, clinic):
    settings.TELEGRAM_BOT_USERNAME = "@medai_clinic_bot"
    assert deep_link("abc_DEF-123") == "https://t.me/medai_clinic_bot?start=abc_DEF-123"


def test_deep_link_asks_getme_when_the_username_is_not_configured(fake_tg, clinic):
    assert deep_link("xyz") == "https://t.me/medai_test_bot?start=xyz"


def test_start_with_a_valid_code_links_the_chat(run_bot, clinic):
    row, code = link_code_create(clinic=clinic, role="manager")
    fake = run_bot(message_update(700, f"/start {code}", language_code="en"))

    link = ChatLink.objects.get(chat_id=700)
    assert link.clinic == clinic and link.role == "manager" and link.language == "en"
    row.refresh_from_db()
    assert row.used_at is not None and row.used_by_chat_id == 700
    assert clinic.name in fake.texts(700)[-1]
    assert "Done" in fake.texts(700)[-1]


def test_a_used_code_does_not_link_a_second_chat(run_bot, clinic):
    _row, code = link_code_create(clinic=clinic, role="owner")
    fake = run_bot(message_update(701, f"/start {code}"), message_update(702, f"/start {code}", language_code="en"))

    assert ChatLink.objects.filter(chat_id=701).exists()
    assert not ChatLink.objects.filter(chat_id=702).exists()
    assert fake.texts(702) == ["This link has already been used. Ask your MedAI operator for a new one."]


def test_an_expired_code_gets_a_clear_message_and_nothing_else(run_bot, clinic):
    _row, code = link_code_create(clinic=clinic, role="owner", ttl_hours=1)
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=True):
        fake = run_bot(message_update(703, f"/start {code}", language_code="en"))
    assert not ChatLink.objects.filter(chat_id=703).exists()
    assert fake.texts(703) == ["This link has expired. Ask your MedAI operator for a new one."]


def test_an_unknown_code_in_russian(run_bot, clinic):
    fake = run_bot(message_update(704, "/start " + "x" * 32, language_code="ru"))
    assert not ChatLink.objects.filter(chat_id=704).exists()
    assert fake.texts(704) == ["Код недействителен. Проверьте ссылку или попросите у оператора MedAI новую."]


def test_wrong_codes_are_rate_limited_per_chat(run_bot, settings, clinic):
    settings.TELEGRAM_LINK_MAX_FAILURES = 3
    for attempt in range(3):
        run_bot(message_update(705, f"/start wrong-code-{attempt:02d}-aaaaaaaaaaaaaaaa", language_code="en"))
    assert LinkThrottle.objects.get(chat_id=705).failures == 3

    # Even a valid code is not looked at while the chat is locked out: guessing is pointless.
    row, code = link_code_create(clinic=clinic, role="owner")
    fake = run_bot(message_update(705, f"/start {code}", language_code="en"))
    assert fake.texts(705)[-1] == "Too many wrong codes. Try again in an hour."
    assert not ChatLink.objects.filter(chat_id=705).exists()
    row.refresh_from_db()
    assert row.used_at is None

    # Another chat is not affected, and the lock ends with the window.
    assert chat_link_redeem(chat_id=706, code=link_code_create(clinic=clinic, role="owner")[1]).status == "linked"
    with time_machine.travel(timezone.now() + timedelta(minutes=61), tick=True):
        assert chat_link_redeem(chat_id=705, code=code).status == "linked"
    assert not LinkThrottle.objects.filter(chat_id=705).exists()


def test_a_linked_chat_keeps_its_clinic_and_the_new_code_stays_unused(link_chat, clinic):
    link_chat(clinic, 707)
    other_clinic = ClinicFactory()
    row, code = link_code_create(clinic=other_clinic, role="owner")
    outcome = chat_link_redeem(chat_id=707, code=code)
    assert outcome.status == "already_linked" and outcome.link.clinic == clinic
    row.refresh_from_db()
    assert row.used_at is None


def test_codes_of_an_inactive_clinic_do_not_work(clinic):
    _row, code = link_code_create(clinic=clinic, role="owner")
    clinic.is_active = False
    clinic.save()
    assert chat_link_redeem(chat_id=708, code=code).status == "unknown"


def test_unlinked_chats_get_only_start_and_help(run_bot, clinic):
    fake = run_bot(
        message_update(709, "/stats", language_code="en"),
        message_update(709, "/calls", language_code="en"),
        message_update(709, "/help", language_code="en"),
        message_update(709, "hello", language_code="en"),
    )
    texts = fake.texts(709)
    assert texts[0] == texts[1] == (
        "This chat is not connected to a clinic. Open the link from your MedAI operator, or see /help."
    )
    assert "/start <code>" in texts[2] and "/stats" not in texts[2]
    assert "/start <code>" in texts[3]


def test_unlink_stops_access(run_bot, link_chat, clinic):
    link_chat(clinic, 710, language="en")
    fake = run_bot(message_update(710, "/unlink", language_code="en"), message_update(710, "/limits", language_code="en"))
    assert "disconnected" in fake.texts(710)[0]
    assert "not connected" in fake.texts(710)[1]
    link = ChatLink.objects.get(chat_id=710)
    assert link.unlinked_at is not None and link.unlink_reason == "user"
    # The chat can be linked again with a new code.
    assert chat_link_redeem(chat_id=710, code=link_code_create(clinic=clinic, role="owner")[1]).status == "linked"


def test_group_commands_addressed_to_another_bot_are_ignored(run_bot, link_chat, clinic):
    link_chat(clinic, -100500)
    fake = run_bot(message_update(-100500, "/stats@some_other_bot", chat_type="supergroup", user_id=1))
    assert fake.texts(-100500) == []


def test_admin_shows_the_link_once_and_stores_only_the_hash(client, settings, clinic):
    from tests.factories import UserFactory

    settings.TELEGRAM_BOT_USERNAME = "medai_clinic_bot"
    admin = UserFactory(is_superuser=True)
    client.force_login(admin)
    response = client.post(
        "/admin/telegrambot/linkcode/add/",
        {"clinic": clinic.pk, "role": "owner", "label": "Owner", "valid_hours": 24},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "?start=" in str(m)]
    assert len(shown) == 1 and "https://t.me/medai_clinic_bot?start=" in shown[0]
    code = shown[0].split("?start=")[1].split()[0]
    row = LinkCode.objects.get()
    assert row.code_hash == hash_link_code(code) and row.created_by == admin
    assert row.expires_at - row.created_at == pytest.approx(timedelta(hours=24), abs=timedelta(seconds=5))
    # The change page never shows the code again.
    page = client.get(f"/admin/telegrambot/linkcode/{row.pk}/change/").content.decode()
    assert code not in page
    assert chat_link_redeem(chat_id=711, code=code).status == "linked"

"""Campaigns: contact import (CSV/XLSX), do-not-call, dispatch within windows and concurrency, retries,
pause / resume / cancel."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from openpyxl import Workbook

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall
from calls.outbound import campaigns, selectors, services
from calls.outbound.services import Outcome
from tests.fakes.voximplant import API_PREFIX, Scripted
from tests.outbound.conftest import deliver

MSK = ZoneInfo("Europe/Moscow")
MONDAY_NOON = datetime(2026, 11, 16, 12, 0, tzinfo=MSK)
START = f"{API_PREFIX}/StartScenarios"
State = CampaignContact.State


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+7999{1000000 + start + i:07d}" for i in range(n)]


def csv_bytes(rows: list[str], header: str = "phone,name") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def make_campaign(clinic, numbers: list[str], *, start: bool = True, **fields) -> Campaign:
    values = {
        "name": "Напоминание о визите",
        "greeting": "Здравствуйте! Это клиника «Улыбка», напоминаем о приёме.",
        "script": "Вам удобно прийти?\nСпасибо, ждём вас!",
        "max_concurrency": 3,
        **fields,
    }
    campaign = campaigns.campaign_create(clinic=clinic, **values)
    campaigns.campaign_import(campaign=campaign, filename="contacts.csv", data=csv_bytes(numbers, header="phone"))
    if start:
        campaigns.campaign_start(campaign=campaign)
    return campaign


def live_calls(campaign) -> int:
    return OutboundCall.objects.filter(campaign=campaign, status__in=OutboundCall.ACTIVE).count()


def finish(call: OutboundCall, status: str, *, now: datetime) -> None:
    outcome = Outcome(status=status, session_id=call.session_id, error="x" if status == "failed" else "")
    assert services.outbound_result_record(call=call, outcome=outcome, now=now)


def contact(campaign, phone) -> CampaignContact:
    return CampaignContact.objects.get(campaign=campaign, phone=phone)


# --- import -------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_csv_import_reports_row_errors_and_imports_the_valid_rows(clinic, vox_settings):
    campaign = make_campaign(clinic, [], start=False)
    data = "\n".join(
        [
            "Телефон;Имя;Сделка",
            "8 (999) 000-11-22;Анна;101",
            "12345;Борис;",
            "+79990001122;Анна снова;",  # the same number: collapsed
            "+79990001133;Вера;abc",
            ";;",
            "+7 999 000 11 44;;",
        ]
    ).encode("cp1251")  # Excel's Russian CSV export
    report = campaigns.campaign_import(campaign=campaign, filename="list.csv", data=data)
    assert (report.rows, report.imported, report.duplicates, report.error_count) == (5, 2, 1, 2)
    assert report.errors[0]["row"] == 3 and report.errors[0]["value"] == "12345"
    assert report.errors[1]["row"] == 5 and "lead id" in report.errors[1]["error"]
    rows = list(CampaignContact.objects.filter(campaign=campaign).values_list("phone", "name", "crm_lead_id", "row_number"))
    assert rows == [("+79990001122", "Анна", 101, 2), ("+79990001144", "", None, 7)]
    campaign.refresh_from_db()
    assert campaign.import_report["imported"] == 2 and campaign.import_report["error_count"] == 2


@pytest.mark.django_db
def test_xlsx_import_reads_numbers_stored_as_numbers(clinic, vox_settings):
    campaign = make_campaign(clinic, [], start=False)
    book = Workbook()
    sheet = book.active
    sheet.append(["ФИО", "Номер телефона"])
    sheet.append(["Анна", 79990001122])
    sheet.append(["Борис", 79990001133.0])
    sheet.append(["Вера", "not a phone"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = campaigns.campaign_import(campaign=campaign, filename="list.xlsx", data=buffer.getvalue())
    assert (report.imported, report.error_count) == (2, 1)
    assert report.errors == [{"row": 4, "value": "not a phone", "error": "Not a phone number."}]
    assert set(CampaignContact.objects.values_list("phone", flat=True)) == {"+79990001122", "+79990001133"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("list.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
        ("list.xlsx", b"PK\x03\x04 broken zip", "XLSX"),
        ("list.csv", b"name,comment\nAnna,hello\n", "No phone column"),
        ("list.csv", b"\n\n", "empty"),
        ("list.pdf", b"%PDF-1.4", ".csv or .xlsx"),
    ],
)
def test_unreadable_files_are_refused_as_a_whole(clinic, vox_settings, filename, data, message):
    campaign = make_campaign(clinic, [], start=False)
    with pytest.raises(ValidationError) as error:
        campaigns.campaign_import(campaign=campaign, filename=filename, data=data)
    assert message in str(error.value)
    assert not CampaignContact.objects.exists()


@pytest.mark.django_db
def test_a_campaign_needs_valid_windows_and_content(clinic, vox_settings):
    with pytest.raises(ValidationError) as error:
        make_campaign(clinic, [], start=False, calling_windows={"0": [["20:00", "09:00"]]})
    assert "calling_windows" in error.value.message_dict
    with pytest.raises(ValidationError):
        make_campaign(clinic, [], start=False, calling_windows={"8": [["09:00", "20:00"]]})
    with pytest.raises(ValidationError) as error:
        make_campaign(clinic, [], start=False, script="", prompt="")
    assert "prompt" in error.value.message_dict
    empty = make_campaign(clinic, [], start=False)
    with pytest.raises(ValidationError, match="Import contacts"):
        campaigns.campaign_start(campaign=empty)


# --- do-not-call --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_numbers_on_the_do_not_call_list_are_never_dialled(clinic, vox, vox_settings):
    listed, later_listed, raced, fine = phones(4)
    DoNotCall.objects.create(clinic=clinic, phone=listed)
    campaign = make_campaign(clinic, [listed, later_listed, raced, fine], max_concurrency=10)
    assert contact(campaign, listed).state == State.DO_NOT_CALL
    campaigns.do_not_call_add(clinic=clinic, phone="8" + later_listed[2:], reason="asked")  # any format
    assert contact(campaign, later_listed).state == State.DO_NOT_CALL
    DoNotCall.objects.create(clinic=clinic, phone=raced)  # written behind the service's back
    campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
    assert contact(campaign, raced).state == State.DO_NOT_CALL
    assert [s.phone for s in vox.sessions] == ["+79990000000"]  # the fake does not know numbers: one session
    assert list(OutboundCall.objects.values_list("phone", flat=True)) == [fine]


# --- dispatching ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_dispatch_never_exceeds_the_concurrency_limit(client, clinic, vox, vox_settings):
    campaign = make_campaign(clinic, phones(11), max_concurrency=3)
    peak, rounds = 0, 0
    while rounds < 50:
        rounds += 1
        result = campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
        peak = max(peak, live_calls(campaign))
        assert live_calls(campaign) <= 3 and result.in_progress <= 3
        assert CampaignContact.objects.filter(campaign=campaign, state=State.IN_PROGRESS).count() <= 3
        assert campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON).calls == []  # no free slot left
        session = next((s for s in vox.sessions if not s.delivered), None)
        if session is None:
            break
        assert deliver(client, vox, session).status_code == 200
    campaign.refresh_from_db()
    assert peak == 3 and campaign.status == Campaign.Status.COMPLETED
    assert len(vox.requests_to("POST", START)) == 11
    assert set(CampaignContact.objects.values_list("state", flat=True)) == {State.DONE}


@pytest.mark.django_db
def test_nothing_is_dialled_outside_the_calling_windows(clinic, vox, vox_settings):
    weekdays = {str(d): [["09:00", "20:00"]] for d in range(5)}
    campaign = make_campaign(clinic, phones(2), calling_windows=weekdays)
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=MSK)
    result = campaigns.campaign_dispatch(campaign.pk, now=saturday)
    assert result.calls == [] and vox.sessions == []
    assert result.next_wake_at == datetime(2026, 11, 23, 9, 0, tzinfo=MSK)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING and campaign.next_wake_at == result.next_wake_at
    assert len(campaigns.campaign_dispatch(campaign.pk, now=result.next_wake_at).calls) == 2


@pytest.mark.django_db
def test_retries_wait_their_interval_and_only_happen_inside_windows(clinic, vox, vox_settings):
    a, b, c = phones(3)
    campaign = make_campaign(clinic, [a, b, c], max_concurrency=3, max_attempts=2, retry_no_answer_minutes=120, retry_busy_minutes=20)
    evening = datetime(2026, 11, 16, 19, 30, tzinfo=MSK)
    campaigns.campaign_dispatch(campaign.pk, now=evening)
    calls = {call.phone: call for call in OutboundCall.objects.filter(campaign=campaign)}
    finish(calls[a], "no_answer", now=evening)  # +2 h is 21:30: after the window → next morning
    finish(calls[b], "busy", now=evening)  # +20 min is 19:50: inside the window
    finish(calls[c], "failed", now=evening)  # failures are not retried
    assert contact(campaign, a).retry_at == datetime(2026, 11, 17, 9, 0, tzinfo=MSK)
    assert contact(campaign, b).retry_at == datetime(2026, 11, 16, 19, 50, tzinfo=MSK)
    assert contact(campaign, c).state == State.DONE
    assert campaigns.campaign_dispatch(campaign.pk, now=evening + timedelta(minutes=10)).calls == []
    retried = campaigns.campaign_dispatch(campaign.pk, now=evening + timedelta(minutes=20))
    assert [OutboundCall.objects.get(pk=pk).phone for pk in retried.calls] == [b]
    assert contact(campaign, b).attempts == 2
    assert campaigns.campaign_dispatch(campaign.pk, now=datetime(2026, 11, 16, 23, 0, tzinfo=MSK)).calls == []
    # The second attempt is the last one (max_attempts=2), whatever the outcome.
    finish(OutboundCall.objects.get(pk=retried.calls[0]), "busy", now=evening + timedelta(minutes=25))
    assert contact(campaign, b).state == State.DONE
    morning = campaigns.campaign_dispatch(campaign.pk, now=datetime(2026, 11, 17, 9, 0, tzinfo=MSK))
    assert [OutboundCall.objects.get(pk=pk).phone for pk in morning.calls] == [a]


@pytest.mark.django_db
def test_pause_resume_and_cancel(client, clinic, vox, vox_settings):
    numbers = phones(6)
    campaign = make_campaign(clinic, numbers, max_concurrency=2)
    assert len(campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON).calls) == 2
    campaigns.campaign_pause(campaign=campaign)
    deliver(client, vox, vox.sessions[0])  # calls in progress still finish and are recorded
    assert campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON).calls == []
    with pytest.raises(ValidationError):
        campaigns.campaign_pause(campaign=campaign)
    campaigns.campaign_resume(campaign=campaign)
    assert len(campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON).calls) == 1  # one slot was freed
    # A call created but not yet started when the campaign is paused is given back, not dialled.
    deliver(client, vox, vox.sessions[1])
    queued = campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON, start=False).calls
    campaigns.campaign_pause(campaign=campaign)
    assert services.outbound_call_start(queued[0]) == "released"
    assert not OutboundCall.objects.filter(pk=queued[0]).exists()
    assert CampaignContact.objects.filter(campaign=campaign, state=State.PENDING, attempts=0).count() == 3
    campaigns.campaign_cancel(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert CampaignContact.objects.filter(campaign=campaign, state=State.PENDING).count() == 0
    # The call still ringing reports "no answer": recorded, but no retry for a cancelled campaign.
    vox.sessions[2].outcome = Scripted("no_answer")
    deliver(client, vox, vox.sessions[2])
    assert CampaignContact.objects.filter(campaign=campaign, state=State.IN_PROGRESS).count() == 0
    assert not CampaignContact.objects.filter(campaign=campaign, state=State.RETRY).exists()
    assert campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON).calls == []
    with pytest.raises(ValidationError):
        campaigns.campaign_resume(campaign=campaign)
    assert len(vox.sessions) == 3


@pytest.mark.django_db
def test_a_permanent_start_error_pauses_the_campaign_instead_of_failing_every_contact(clinic, vox, vox_settings):
    campaign = make_campaign(clinic, phones(5), max_concurrency=2)
    vox.fail_api_next(100, "Authorization failed", method="StartScenarios")
    campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and "Authorization failed" in campaign.last_error
    assert not OutboundCall.objects.filter(campaign=campaign).exists()
    assert CampaignContact.objects.filter(campaign=campaign, state=State.PENDING, attempts=0).count() == 5


@pytest.mark.django_db
def test_progress_counts_contacts_calls_and_the_funnel(client, clinic, vox, vox_settings):
    from calls import pipeline

    campaign = make_campaign(clinic, phones(4), max_concurrency=2)
    vox.outcomes.extend([Scripted("completed"), Scripted("busy")])
    campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
    for session in vox.sessions:
        deliver(client, vox, session)
    pipeline.drive(OutboundCall.objects.get(status="completed").call_id)
    progress = selectors.campaign_progress(campaign)
    assert progress["contacts"] == 4 and progress["states"]["pending"] == 2 and progress["states"]["retry"] == 1
    assert progress["calls"]["completed"] == 1 and progress["calls"]["busy"] == 1
    assert progress["funnel"]["dialled"] == 2 and progress["funnel"]["reached"] == 1
    assert progress["funnel"]["interested"] == progress["funnel"]["leads"] == 1  # "я приду": booked
    assert progress["percent_done"] == 25.0


@pytest.mark.django_db
def test_the_scheduled_tasks_dispatch_and_reconcile(clinic, vox, vox_settings):
    from importlib import import_module

    from calls.outbound import tasks
    from calls.schedules import SCHEDULES

    make_campaign(clinic, phones(2))
    with time_machine.travel(MONDAY_NOON, tick=True):
        assert tasks.dispatch_campaigns() == 2
        assert tasks.reconcile()["started"] == 0
    scheduled = {t.func for t in SCHEDULES if t.func.startswith("calls.outbound.")}
    assert scheduled == {"calls.outbound.tasks.dispatch_campaigns", "calls.outbound.tasks.reconcile"}
    for path in scheduled:
        module, name = path.rsplit(".", 1)
        assert callable(getattr(import_module(module), name))

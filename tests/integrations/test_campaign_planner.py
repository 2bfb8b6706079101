"""Campaign planning: windows in the clinic's zone, retries inside windows, concurrency, do-not-call."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from medai.integrations.campaign_planner import (
    CallingSchedule,
    Contact,
    ContactState,
    Outcome,
    RetryPolicy,
    Window,
    after_attempt,
    plan,
)

MSK = ZoneInfo("Europe/Moscow")
WEEKDAYS = ("09:00", "20:00")
SCHEDULE = CallingSchedule.weekly("Europe/Moscow", {d: [WEEKDAYS] for d in range(5)} | {5: [("10:00", "16:00")]})
POLICY = RetryPolicy(
    max_attempts=3,
    intervals={
        Outcome.NO_ANSWER: timedelta(hours=2),
        Outcome.BUSY: timedelta(minutes=20),
        Outcome.VOICEMAIL: timedelta(hours=4),
    },
)


def msk(*args) -> datetime:
    return datetime(*args, tzinfo=MSK)


def pending(n: int, start: int = 0) -> list[Contact]:
    return [Contact(id=i, phone=f"+7 999 000-00-{i:02d}") for i in range(start, start + n)]


# 2025-06-02 is a Monday; 2025-06-07 Saturday; 2025-06-08 Sunday.


# -- windows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (msk(2025, 6, 2, 8, 59, 59), False),
        (msk(2025, 6, 2, 9, 0), True),
        (msk(2025, 6, 2, 19, 59, 59), True),
        (msk(2025, 6, 2, 20, 0), False),
        (msk(2025, 6, 7, 9, 30), False),  # Saturday opens at 10
        (msk(2025, 6, 7, 15, 0), True),
        (msk(2025, 6, 7, 16, 0), False),
        (msk(2025, 6, 8, 12, 0), False),  # Sunday closed
    ],
)
def test_window_boundaries_in_the_clinic_zone(moment, is_open):
    assert SCHEDULE.is_open(moment) is is_open


def test_the_zone_of_now_does_not_matter():
    moment = msk(2025, 6, 2, 8, 30)
    for zone in ("UTC", "America/New_York", "Asia/Vladivostok"):
        assert SCHEDULE.is_open(moment.astimezone(ZoneInfo(zone))) is False
        assert SCHEDULE.next_open(moment.astimezone(ZoneInfo(zone))) == msk(2025, 6, 2, 9, 0)


def test_moscow_has_no_dst_so_nine_is_always_six_utc():
    for month in (1, 4, 7, 10, 12):
        monday = datetime(2025, month, 1, tzinfo=UTC) + timedelta(days=(7 - datetime(2025, month, 1).weekday()) % 7)
        opening = SCHEDULE.next_open(monday)  # Monday 03:00 MSK → opens at 09:00 MSK
        assert opening.tzinfo is UTC
        assert (opening.hour, opening.minute) == (6, 0)
        assert opening.astimezone(MSK).hour == 9


def test_next_open_skips_closed_days_and_returns_utc():
    friday_evening = msk(2025, 6, 6, 20, 30)
    assert SCHEDULE.next_open(friday_evening) == msk(2025, 6, 7, 10, 0)  # Saturday 10:00
    saturday_evening = msk(2025, 6, 7, 17, 0)
    assert SCHEDULE.next_open(saturday_evening) == msk(2025, 6, 9, 9, 0)  # Monday
    assert SCHEDULE.next_open(saturday_evening).tzinfo is UTC


def test_next_open_across_a_dst_change():
    berlin = CallingSchedule.weekly("Europe/Berlin", {d: [WEEKDAYS] for d in range(5)})
    # CET → CEST on Sunday 2025-03-30: Friday evening is UTC+1, Monday morning UTC+2.
    friday = datetime(2025, 3, 28, 20, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert berlin.next_open(friday) == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert berlin.is_open(datetime(2025, 3, 31, 7, 0, tzinfo=UTC))
    assert not berlin.is_open(datetime(2025, 3, 31, 6, 59, tzinfo=UTC))  # 08:59 CEST
    # Back to CET on 2025-10-26: 09:00 on Monday is 08:00 UTC.
    assert berlin.next_open(datetime(2025, 10, 25, 12, 0, tzinfo=UTC)) == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)


def test_several_windows_a_day():
    schedule = CallingSchedule.weekly("Europe/Moscow", {0: [("14:00", "18:00"), ("09:00", "12:00")]})
    assert schedule.next_open(msk(2025, 6, 2, 12, 30)) == msk(2025, 6, 2, 14, 0)
    assert schedule.window_at(msk(2025, 6, 2, 10, 0)) == (msk(2025, 6, 2, 9, 0), msk(2025, 6, 2, 12, 0))


def test_schedule_validation():
    with pytest.raises(ValueError, match="before end"):
        Window(time(20), time(9))
    with pytest.raises(ValueError, match="overlapping"):
        CallingSchedule.weekly("Europe/Moscow", {0: [("09:00", "13:00"), ("12:00", "18:00")]})
    with pytest.raises(ValueError, match="weekday"):
        CallingSchedule.weekly("Europe/Moscow", {7: [WEEKDAYS]})
    with pytest.raises(ZoneInfoNotFoundError):
        CallingSchedule.weekly("Mars/Olympus", {0: [WEEKDAYS]})
    with pytest.raises(ValueError, match="timezone-aware"):
        SCHEDULE.is_open(datetime(2025, 6, 2, 10, 0))


# -- plan: windows and concurrency -----------------------------------------------------------------


def test_dials_up_to_the_free_lines_inside_the_window():
    contacts = [Contact(id="busy-line", phone="+79990000999", state=ContactState.IN_PROGRESS), *pending(10)]
    result = plan(contacts, now=msk(2025, 6, 2, 11, 0), schedule=SCHEDULE, max_concurrency=3, policy=POLICY)
    assert result.dial == (0, 1)
    assert result.waiting_for_slots is True
    assert result.next_wake_up is None  # the next completion triggers the next plan
    assert not result.finished


def test_full_lines_dial_nothing():
    running = [Contact(id=f"r{i}", phone=f"+7999111000{i}", state=ContactState.IN_PROGRESS) for i in range(3)]
    result = plan([*running, *pending(5)], now=msk(2025, 6, 2, 11, 0), schedule=SCHEDULE, max_concurrency=3)
    assert result.dial == ()
    assert result.waiting_for_slots


def test_busy_lines_outside_the_campaign_share_the_limit():
    result = plan(pending(5), now=msk(2025, 6, 2, 11, 0), schedule=SCHEDULE, max_concurrency=4, busy_lines=3)
    assert result.dial == (0,)


def test_nothing_is_dialled_outside_the_window_and_wake_up_is_the_next_opening():
    result = plan(pending(3), now=msk(2025, 6, 7, 17, 0), schedule=SCHEDULE, max_concurrency=5)
    assert result.dial == ()
    assert result.next_wake_up == msk(2025, 6, 9, 9, 0)
    assert not result.waiting_for_slots


def test_plan_at_the_opening_minute_dials():
    result = plan(pending(2), now=msk(2025, 6, 9, 9, 0), schedule=SCHEDULE, max_concurrency=5)
    assert result.dial == (0, 1)
    assert result.finished is False and result.next_wake_up is None


def test_empty_schedule_never_dials():
    closed = CallingSchedule("Europe/Moscow", {})
    result = plan(pending(2), now=msk(2025, 6, 2, 11, 0), schedule=closed, max_concurrency=5)
    assert result.dial == () and result.next_wake_up is None and not result.finished


def test_finished_when_nothing_is_left():
    contacts = [
        Contact(id=1, phone="+79990000001", state=ContactState.DONE, attempts=1),
        Contact(id=2, phone="+79990000002", state=ContactState.DO_NOT_CALL),
        Contact(id=3, phone="+79990000003", state=ContactState.RETRY, attempts=3, retry_at=msk(2025, 6, 2, 10, 0)),
    ]
    result = plan(contacts, now=msk(2025, 6, 2, 11, 0), schedule=SCHEDULE, max_concurrency=5, policy=POLICY)
    assert result.dial == () and result.finished


# -- do-not-call ------------------------------------------------------------------------------------


def test_do_not_call_contacts_and_numbers_are_never_dialled():
    contacts = [
        Contact(id="dnc-state", phone="+79990000001", state=ContactState.DO_NOT_CALL),
        Contact(id="dnc-number", phone="+7 (999) 000-00-02"),
        Contact(id="dnc-retry", phone="89990000003", state=ContactState.RETRY, attempts=1, retry_at=msk(2025, 6, 2, 9)),
        Contact(id="ok", phone="+79990000004"),
    ]
    result = plan(
        contacts,
        now=msk(2025, 6, 2, 11, 0),
        schedule=SCHEDULE,
        max_concurrency=10,
        do_not_call={"79990000002", "8-999-000-00-03"},
    )
    assert result.dial == ("ok",)
    assert set(result.blocked) == {"dnc-number", "dnc-retry"}


# -- retries ----------------------------------------------------------------------------------------


def test_retry_inside_the_window_keeps_the_interval():
    decision = after_attempt(
        Outcome.BUSY, attempts=1, finished_at=msk(2025, 6, 2, 12, 0), schedule=SCHEDULE, policy=POLICY
    )
    assert decision.state == ContactState.RETRY
    assert decision.retry_at == msk(2025, 6, 2, 12, 20)


def test_retry_that_falls_after_closing_waits_for_the_next_opening():
    friday = msk(2025, 6, 6, 19, 30)
    decision = after_attempt("no_answer", attempts=1, finished_at=friday, schedule=SCHEDULE, policy=POLICY)
    assert decision.retry_at == msk(2025, 6, 7, 10, 0)  # Saturday opening, not Friday 21:30
    voicemail = after_attempt(
        "voicemail", attempts=2, finished_at=msk(2025, 6, 7, 14, 0), schedule=SCHEDULE, policy=POLICY
    )
    assert voicemail.retry_at == msk(2025, 6, 9, 9, 0)  # Saturday 18:00 is closed, Sunday too


def test_attempts_are_bounded_and_final_outcomes_end_the_contact():
    at = msk(2025, 6, 2, 12, 0)
    assert after_attempt("no_answer", attempts=3, finished_at=at, schedule=SCHEDULE, policy=POLICY).state == "done"
    assert after_attempt("completed", attempts=1, finished_at=at, schedule=SCHEDULE, policy=POLICY).state == "done"
    failed = after_attempt("failed", attempts=1, finished_at=at, schedule=SCHEDULE, policy=POLICY)
    assert failed.state == ContactState.DONE and failed.retry_at is None
    with pytest.raises(ValueError):
        after_attempt("no_answer", attempts=0, finished_at=at, schedule=SCHEDULE, policy=POLICY)
    with pytest.raises(ValueError):
        RetryPolicy(intervals={Outcome.COMPLETED: timedelta(hours=1)})
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_due_retries_go_first_and_future_retries_set_the_wake_up():
    now = msk(2025, 6, 2, 12, 0)
    contacts = [
        *pending(2),
        Contact(
            id="late", phone="+79991110001", state=ContactState.RETRY, attempts=1, retry_at=msk(2025, 6, 2, 11, 30)
        ),
        Contact(
            id="early", phone="+79991110002", state=ContactState.RETRY, attempts=1, retry_at=msk(2025, 6, 2, 10, 0)
        ),
        Contact(
            id="later", phone="+79991110003", state=ContactState.RETRY, attempts=1, retry_at=msk(2025, 6, 2, 15, 0)
        ),
    ]
    result = plan(contacts, now=now, schedule=SCHEDULE, max_concurrency=3, policy=POLICY)
    assert result.dial == ("early", "late", 0)
    assert result.next_wake_up == msk(2025, 6, 2, 15, 0)


def test_a_retry_stored_outside_the_window_wakes_at_the_opening():
    contact = Contact(id=1, phone="+79990000001", state=ContactState.RETRY, attempts=1, retry_at=msk(2025, 6, 2, 21, 0))
    result = plan([contact], now=msk(2025, 6, 2, 19, 0), schedule=SCHEDULE, max_concurrency=1)
    assert result.dial == ()
    assert result.next_wake_up == msk(2025, 6, 3, 9, 0)


def test_retry_state_requires_a_time():
    with pytest.raises(ValueError):
        Contact(id=1, phone="+7999", state=ContactState.RETRY)


# -- invariants over many random situations ------------------------------------------------------------


def test_invariants_hold_for_random_campaigns():
    rng = random.Random(20250602)
    dnc = {"+79990000007", "+79990000013"}
    for _ in range(500):
        now = msk(2025, 6, 2) + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
        max_concurrency = rng.randint(1, 6)
        busy_lines = rng.randint(0, 2)
        contacts = []
        for i in range(rng.randint(0, 25)):
            state = rng.choice(list(ContactState))
            retry_at = now + timedelta(minutes=rng.randint(-600, 600)) if state == ContactState.RETRY else None
            contacts.append(
                Contact(id=i, phone=f"+7999000{i:04d}", state=state, attempts=rng.randint(0, 4), retry_at=retry_at)
            )
        result = plan(
            contacts,
            now=now,
            schedule=SCHEDULE,
            max_concurrency=max_concurrency,
            policy=POLICY,
            do_not_call=dnc,
            busy_lines=busy_lines,
        )
        by_id = {c.id: c for c in contacts}
        in_progress = sum(c.state == ContactState.IN_PROGRESS for c in contacts)
        assert len(set(result.dial)) == len(result.dial)
        assert len(result.dial) <= max(0, max_concurrency - in_progress - busy_lines)
        if result.dial:
            assert SCHEDULE.is_open(now)
        for contact_id in result.dial:
            contact = by_id[contact_id]
            assert contact.state in (ContactState.PENDING, ContactState.RETRY)
            assert contact.phone not in dnc
            assert contact.attempts < POLICY.max_attempts
            if contact.state == ContactState.RETRY:
                assert contact.retry_at <= now
        if result.next_wake_up is not None:
            assert result.next_wake_up > now or SCHEDULE.is_open(result.next_wake_up)
            assert SCHEDULE.is_open(result.next_wake_up)

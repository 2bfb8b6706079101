"""Pure scheduling for outbound call campaigns: who to dial now, and when to look again.

No I/O, no clock: the caller passes ``now`` (an aware datetime) and the contacts' current states, and
stores what comes back. The rules:

* never more calls in progress than ``max_concurrency`` (in-progress contacts and ``busy_lines`` count);
* never dial outside the clinic's calling window (wall-clock windows per weekday in the clinic's time
  zone); a retry that falls outside a window waits for the next opening;
* never dial a contact in ``do_not_call`` state or whose number is on the do-not-call list;
* retries follow :class:`RetryPolicy` (interval per outcome, bounded attempts).

All datetimes returned are aware and in UTC. Comparisons are done in UTC too: Python compares two
datetimes with the *same* tzinfo by wall clock, which is wrong across a DST change.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

_SEARCH_DAYS = 8  # a weekly schedule repeats; 8 days always reaches the next opening if there is one


class ContactState(StrEnum):
    PENDING = "pending"  # never dialled
    IN_PROGRESS = "in_progress"  # a call is running
    RETRY = "retry"  # waiting until ``retry_at``
    DONE = "done"  # finished: completed, or attempts exhausted, or not retryable
    DO_NOT_CALL = "do_not_call"


class Outcome(StrEnum):
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"


def _aware(moment: datetime, name: str = "now") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def normalize_phone(phone: str) -> str:
    """Digits only (a leading '+' and formatting are dropped) — for do-not-call matching."""
    return "".join(ch for ch in phone if ch.isdigit())


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # exclusive

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are wall-clock times in the schedule's zone; give naive times")
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before end {self.end} (same day)")


@dataclass(frozen=True)
class CallingSchedule:
    """Calling windows per weekday (0 = Monday) in ``tz``; a weekday without windows is closed."""

    tz: str
    windows: Mapping[int, Sequence[Window]]

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # raises for an unknown zone
        for weekday, windows in self.windows.items():
            if weekday not in range(7):
                raise ValueError(f"weekday must be 0..6, got {weekday}")
            ordered = sorted(windows, key=lambda w: w.start)
            for first, second in zip(ordered, ordered[1:], strict=False):
                if second.start < first.end:
                    raise ValueError(f"overlapping windows on weekday {weekday}")

    @classmethod
    def weekly(cls, tz: str, spec: Mapping[int, Iterable[tuple[str, str]]]) -> CallingSchedule:
        """``CallingSchedule.weekly("Europe/Moscow", {0: [("09:00", "20:00")], 5: [("10:00", "16:00")]})``."""
        return cls(
            tz=tz,
            windows={
                day: tuple(Window(time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans)
                for day, spans in spec.items()
            },
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's windows as UTC intervals (a wall time that does not exist in a DST gap shifts forward)."""
        zone = self.zone
        result = []
        for window in sorted(self.windows.get(day.weekday(), ()), key=lambda w: w.start):
            start = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
            end = datetime.combine(day, window.end, tzinfo=zone).astimezone(UTC)
            if start < end:
                result.append((start, end))
        return result

    def window_at(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The open window containing ``moment`` (UTC bounds), or None when closed."""
        moment = _aware(moment, "moment")
        local_day = moment.astimezone(self.zone).date()
        for start, end in self._intervals_on(local_day):
            if start <= moment < end:
                return start, end
        return None

    def is_open(self, moment: datetime) -> bool:
        return self.window_at(moment) is not None

    def next_open(self, moment: datetime) -> datetime | None:
        """``moment`` itself when open, else the next window opening (UTC); None if the schedule is empty."""
        moment = _aware(moment, "moment")
        if self.is_open(moment):
            return moment
        local_day = moment.astimezone(self.zone).date()
        for offset in range(_SEARCH_DAYS):
            for start, _end in self._intervals_on(local_day + timedelta(days=offset)):
                if start > moment:
                    return start
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` dials per contact; after a retryable outcome wait its interval.

    An outcome missing from ``intervals`` (by default ``completed`` and ``failed``) ends the contact.
    """

    max_attempts: int = 3
    intervals: Mapping[Outcome, timedelta] = field(
        default_factory=lambda: {
            Outcome.NO_ANSWER: timedelta(hours=2),
            Outcome.BUSY: timedelta(minutes=20),
            Outcome.VOICEMAIL: timedelta(hours=4),
        }
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if Outcome.COMPLETED in self.intervals:
            raise ValueError("a completed call is never retried")
        for outcome, interval in self.intervals.items():
            if interval <= timedelta(0):
                raise ValueError(f"retry interval for {outcome} must be positive")


@dataclass(frozen=True)
class Contact:
    id: Hashable
    phone: str
    state: ContactState = ContactState.PENDING
    attempts: int = 0
    retry_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts must not be negative")
        if self.state == ContactState.RETRY and self.retry_at is None:
            raise ValueError(f"contact {self.id!r} is in retry state without retry_at")


@dataclass(frozen=True)
class RetryDecision:
    state: ContactState  # RETRY or DONE
    retry_at: datetime | None  # UTC, inside a window; None when DONE
    reason: str


def after_attempt(
    outcome: Outcome | str,
    *,
    attempts: int,
    finished_at: datetime,
    schedule: CallingSchedule,
    policy: RetryPolicy,
) -> RetryDecision:
    """What happens to a contact whose ``attempts``-th call just ended with ``outcome``."""
    outcome = Outcome(outcome)
    finished_at = _aware(finished_at, "finished_at")
    if attempts < 1:
        raise ValueError("attempts counts the call that just finished, so it is at least 1")
    if outcome == Outcome.COMPLETED:
        return RetryDecision(ContactState.DONE, None, "completed")
    interval = policy.intervals.get(outcome)
    if interval is None:
        return RetryDecision(ContactState.DONE, None, f"{outcome} is not retried")
    if attempts >= policy.max_attempts:
        return RetryDecision(ContactState.DONE, None, f"{attempts} attempts made, limit {policy.max_attempts}")
    retry_at = schedule.next_open(finished_at + interval)
    if retry_at is None:
        return RetryDecision(ContactState.DONE, None, "the schedule has no calling windows")
    return RetryDecision(ContactState.RETRY, retry_at, f"{outcome}: retry {interval} later, inside a window")


@dataclass(frozen=True)
class Plan:
    dial: tuple[Hashable, ...]  # contact ids to dial now, in order
    next_wake_up: datetime | None  # UTC; None = nothing time-based to wait for
    waiting_for_slots: bool  # due contacts left undialled because all lines are busy: re-plan on completion
    blocked: tuple[Hashable, ...] = ()  # due contacts skipped because their number is on the do-not-call list
    finished: bool = False  # nothing left to dial, ever


def plan(
    contacts: Iterable[Contact],
    *,
    now: datetime,
    schedule: CallingSchedule,
    max_concurrency: int,
    policy: RetryPolicy | None = None,
    do_not_call: Collection[str] = (),
    busy_lines: int = 0,
) -> Plan:
    """Which contacts to dial at ``now`` and when to plan again.

    Order: due retries first (earliest ``retry_at`` first), then never-dialled contacts in the given order.
    ``busy_lines`` are calls running outside this campaign that share the same concurrency limit.
    """
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    if busy_lines < 0:
        raise ValueError("busy_lines must not be negative")
    policy = policy or RetryPolicy()
    now = _aware(now)
    blocked_numbers = {normalize_phone(p) for p in do_not_call}

    in_progress = 0
    due_retries: list[tuple[datetime, int, Contact]] = []
    pending: list[Contact] = []
    future_retries: list[datetime] = []
    blocked: list[Hashable] = []
    for index, contact in enumerate(contacts):
        if contact.state == ContactState.IN_PROGRESS:
            in_progress += 1
            continue
        if contact.state in (ContactState.DONE, ContactState.DO_NOT_CALL):
            continue
        if contact.attempts >= policy.max_attempts:
            continue  # exhausted; the caller should have marked it done
        if normalize_phone(contact.phone) in blocked_numbers:
            blocked.append(contact.id)
            continue
        if contact.state == ContactState.PENDING:
            pending.append(contact)
        else:  # RETRY
            retry_at = _aware(contact.retry_at, "retry_at")  # type: ignore[arg-type]
            if retry_at <= now:
                due_retries.append((retry_at, index, contact))
            else:
                future_retries.append(retry_at)

    due = [c for _, _, c in sorted(due_retries, key=lambda item: (item[0], item[1]))] + pending
    free = max(0, max_concurrency - in_progress - busy_lines)
    window_open = schedule.is_open(now)

    dial: list[Hashable] = []
    if window_open:
        dial = [c.id for c in due[:free]]
    left_due = len(due) - len(dial)

    wake_candidates: list[datetime] = []
    if left_due and not window_open:
        opening = schedule.next_open(now)
        if opening is not None:
            wake_candidates.append(opening)
    for retry_at in future_retries:
        opening = schedule.next_open(retry_at)
        if opening is not None:
            wake_candidates.append(opening)
    waiting_for_slots = bool(left_due and window_open)
    finished = not due and not future_retries and in_progress == 0
    return Plan(
        dial=tuple(dial),
        next_wake_up=min(wake_candidates) if wake_candidates else None,
        waiting_for_slots=waiting_for_slots,
        blocked=tuple(blocked),
        finished=finished,
    )

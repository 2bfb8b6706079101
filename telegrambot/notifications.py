"""Everything the bot sends without being asked: outbox alerts, report files, daily digests.

* **Outbox** (:class:`clinics.models.OutboxEvent`): each event is claimed with a conditional
  ``UPDATE … SET delivered_at WHERE delivered_at IS NULL`` before it is sent, so two workers never
  deliver it twice. If no chat could be reached for a temporary reason (network, long flood
  wait) the claim is released and the next run tries again; a chat that blocked the bot is
  unlinked. Pipeline failures are batched: at most one message per clinic per
  ``TELEGRAM_FAILURE_BATCH_MINUTES``, however many calls fail. Events older than
  ``TELEGRAM_OUTBOX_MAX_AGE_HOURS`` are dropped unsent.
* **Report files** asked for with /report go to the chat that asked, once each.
* **Digests**: one per chat per clinic-local day, at the clinic's digest time; claimed by a
  conditional UPDATE of ``ChatLink.last_digest_on``.

Nothing here opens a bot session (one ``getMe``) unless there is something to send.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation

from clinics.models import Clinic, OutboxEvent
from medai.integrations.telegram import ChatGone, RetryLater, TelegramFailure
from medai.signing import signed_url
from reports.models import Report
from reports.services import report_request
from telegrambot import conf, selectors, services, texts
from telegrambot.models import ChatLink, ReportRequest, TelegramSettings

logger = logging.getLogger("medai.telegram")

# Reports asked for in the chat; ``Report.Via`` has no Telegram choice yet (see the README notes).
REPORT_VIA = getattr(Report.Via, "TELEGRAM", Report.Via.API)
REPORT_WAIT_HOURS = 6


class _Session:
    """Opens a bot session on first use only."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self.session: Any = None

    def get(self) -> Any:
        if self.session is None:
            session = self.factory()
            self.session = session.__enter__()
        return self.session

    def close(self) -> None:
        if self.session is not None:
            self.session.__exit__(None, None, None)
            self.session = None


@dataclass
class Delivery:
    sent: int = 0
    chats_gone: int = 0
    released: int = 0
    dropped: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, released {self.released}, dropped {self.dropped}, skipped {self.skipped}, "
            f"chats gone {self.chats_gone}"
        )


def _send(session: _Session, link: ChatLink, text: str, delivery: Delivery) -> str:
    """Send to one chat: "sent", "gone" (unlinked now), "retry" or "failed"."""
    try:
        session.get().send_text(link.chat_id, text)
    except ChatGone:
        services.chat_unlink_gone(chat_id=link.chat_id)
        delivery.chats_gone += 1
        return "gone"
    except RetryLater as exc:
        delivery.errors.append(str(exc))
        return "retry"
    except TelegramFailure as exc:
        delivery.errors.append(str(exc))
        logger.warning("notification to chat link %s failed: %s", link.pk, exc)
        return "failed"
    delivery.sent += 1
    return "sent"


def _broadcast(session: _Session, links: list[ChatLink], render: Callable[[], str], delivery: Delivery) -> str:
    """Send ``render()`` (in each chat's language) to every link. "retry" only if none got it and
    some failure was temporary."""
    outcomes = []
    for link in links:
        with translation.override(link.language):
            outcomes.append(_send(session, link, render(), delivery))
    if "sent" not in outcomes and "retry" in outcomes:
        return "retry"
    return "done"


# --- outbox ----------------------------------------------------------------------------------------
def _claim(event_ids: list[int], stamp: datetime) -> list[int]:
    """Claim events one by one with a conditional UPDATE: a row goes to exactly one worker."""
    return [pk for pk in event_ids if OutboxEvent.objects.filter(pk=pk, delivered_at__isnull=True).update(delivered_at=stamp)]


def _release(event_ids: list[int], stamp: datetime) -> int:
    return OutboxEvent.objects.filter(pk__in=event_ids, delivered_at=stamp).update(delivered_at=None)


def _alert_links(clinic_id: int) -> list[ChatLink]:
    return list(ChatLink.objects.active().filter(clinic_id=clinic_id, alerts_enabled=True).select_related("clinic"))


def _render_event(clinic: Clinic, event: OutboxEvent) -> Callable[[], str]:
    payload = event.payload or {}
    if event.kind == OutboxEvent.Kind.QUOTA_THRESHOLD:
        return lambda: texts.quota_alert(clinic, payload)
    if event.kind == OutboxEvent.Kind.CRM_BROKEN:
        return lambda: texts.crm_alert(clinic, payload)
    if event.kind == OutboxEvent.Kind.REPORT_READY:
        return lambda: texts.report_ready(clinic, payload)
    raise ValueError(f"no text for {event.kind}")


def outbox_deliver(*, session_factory: Callable[[], Any] | None = None, now: datetime | None = None, limit: int = 500) -> Delivery:
    now = now or timezone.now()
    delivery = Delivery()
    session = _Session(session_factory or services.open_session)
    try:
        _drop_stale(now, delivery)
        pending = list(
            OutboxEvent.objects.filter(delivered_at__isnull=True).select_related("clinic").order_by("created_at", "pk")[:limit]
        )
        by_clinic: dict[int, list[OutboxEvent]] = defaultdict(list)
        for event in pending:
            by_clinic[event.clinic_id].append(event)
        for clinic_id, events in by_clinic.items():
            if not _deliver_clinic(session, clinic_id, events, now, delivery):
                break  # Telegram asked us to slow down or is unreachable: the next run goes on
        _deliver_reports(session, now, delivery)
    finally:
        session.close()
    return delivery


def _drop_stale(now: datetime, delivery: Delivery) -> None:
    cutoff = now - timedelta(hours=conf.outbox_max_age_hours())
    dropped = OutboxEvent.objects.filter(delivered_at__isnull=True, created_at__lt=cutoff).update(delivered_at=now)
    if dropped:
        logger.warning("%d notification(s) older than %d h dropped unsent", dropped, conf.outbox_max_age_hours())
    delivery.dropped += dropped


def _deliver_clinic(session: _Session, clinic_id: int, events: list[OutboxEvent], now: datetime, delivery: Delivery) -> bool:
    """Deliver one clinic's events. False when the run should stop (temporary trouble)."""
    links = _alert_links(clinic_id)
    clinic = events[0].clinic
    if not links:
        # Nobody to tell: a chat linked later must not receive a backlog of stale alerts.
        delivery.skipped += len(_claim([e.pk for e in events], now))
        return True
    failures = [e for e in events if e.kind == OutboxEvent.Kind.PIPELINE_FAILED]
    for event in events:
        if event.kind == OutboxEvent.Kind.PIPELINE_FAILED:
            continue
        if event.kind == OutboxEvent.Kind.REPORT_READY and _asked_in_chat(event):
            delivery.skipped += len(_claim([event.pk], now))  # the file goes to the chat that asked
            continue
        if not _claim([event.pk], now):
            continue  # another worker has it
        try:
            render = _render_event(clinic, event)
        except (ValueError, KeyError) as exc:
            logger.warning("notification %s not sendable: %s", event.pk, exc)
            delivery.skipped += 1
            continue
        if _broadcast(session, links, render, delivery) == "retry":
            delivery.released += _release([event.pk], now)
            return False
    if failures:
        return _deliver_failures(session, clinic, links, failures, now, delivery)
    return True


def _asked_in_chat(event: OutboxEvent) -> bool:
    report_id = (event.payload or {}).get("report_id")
    return bool(report_id) and ReportRequest.objects.filter(report_id=report_id).exists()


def _deliver_failures(
    session: _Session, clinic: Clinic, links: list[ChatLink], events: list[OutboxEvent], now: datetime, delivery: Delivery
) -> bool:
    settings_row, _ = TelegramSettings.objects.get_or_create(clinic=clinic)
    told_at = settings_row.failures_told_at
    if told_at is not None and now - told_at < timedelta(minutes=conf.failure_batch_minutes()):
        return True  # the batch window is open: these wait and go out together
    # Claim the window itself first: of two workers, only one sends this batch.
    if not TelegramSettings.objects.filter(pk=settings_row.pk, failures_told_at=told_at).update(failures_told_at=now):
        return True
    claimed = _claim([e.pk for e in events], now)
    if not claimed:
        TelegramSettings.objects.filter(pk=settings_row.pk, failures_told_at=now).update(failures_told_at=told_at)
        return True
    payloads = [e.payload or {} for e in events if e.pk in set(claimed)]
    if _broadcast(session, links, lambda: texts.failures_alert(clinic, payloads), delivery) == "retry":
        delivery.released += _release(claimed, now)
        TelegramSettings.objects.filter(pk=settings_row.pk, failures_told_at=now).update(failures_told_at=told_at)
        return False
    return True


# --- report files ----------------------------------------------------------------------------------
def report_request_for_chat(*, link: ChatLink, period: str) -> tuple[date, date]:
    """Queue the PDF and the XLSX for ``period``; a second tap while they are building adds nothing."""
    first, last = selectors.report_period(link.clinic, period)
    pending = ReportRequest.objects.filter(
        chat_link=link, delivered_at__isnull=True, report__date_from=first, report__date_to=last
    )
    if pending.exists():
        return first, last
    label = f"Telegram chat link #{link.pk}"  # no person's name in the report's audit fields
    with transaction.atomic():
        for kind in (Report.Kind.PDF, Report.Kind.XLSX):
            report = report_request(
                clinic=link.clinic, kind=kind, date_from=first, date_to=last, via=REPORT_VIA, label=label
            )
            ReportRequest.objects.create(chat_link=link, report=report)
    return first, last


def _finish_request(request: ReportRequest, now: datetime, outcome: str) -> bool:
    return bool(
        ReportRequest.objects.filter(pk=request.pk, delivered_at__isnull=True).update(delivered_at=now, outcome=outcome)
    )


def _deliver_reports(session: _Session, now: datetime, delivery: Delivery) -> None:
    pending = (
        ReportRequest.objects.filter(delivered_at__isnull=True)
        .filter(
            Q(report__status__in=[Report.Status.DONE, Report.Status.FAILED])
            | Q(created_at__lt=now - timedelta(hours=REPORT_WAIT_HOURS))
            | Q(chat_link__unlinked_at__isnull=False)
        )
        .select_related("report", "report__clinic", "chat_link", "chat_link__clinic")
        .order_by("created_at")[:50]
    )
    for request in pending:
        link, report = request.chat_link, request.report
        if not link.is_active:
            _finish_request(request, now, "gone")
            continue
        done = report.status == Report.Status.DONE and report.file
        if not _finish_request(request, now, "sent" if done else "failed"):
            continue
        try:
            with translation.override(link.language):
                if done:
                    _send_report_file(session.get(), link, report)
                else:
                    session.get().send_text(link.chat_id, texts.report_failed(report.date_from, report.date_to))
            delivery.sent += 1
        except ChatGone:
            services.chat_unlink_gone(chat_id=link.chat_id)
            delivery.chats_gone += 1
        except RetryLater as exc:
            ReportRequest.objects.filter(pk=request.pk, delivered_at=now).update(delivered_at=None, outcome="")
            delivery.released += 1
            delivery.errors.append(str(exc))
            return
        except TelegramFailure as exc:
            logger.warning("report %s could not be sent: %s", report.pk, exc)
            delivery.errors.append(str(exc))


def _send_report_file(bot_session: Any, link: ChatLink, report: Report) -> None:
    caption = texts.report_caption(report.clinic, report.date_from, report.date_to)
    if report.size_bytes and report.size_bytes > 49 * 1024 * 1024:
        bot_session.send_text(link.chat_id, texts.report_too_large(signed_url("report", report.pk)))
        return
    with report.file.open("rb") as handle:
        content = handle.read()
    bot_session.send_document(link.chat_id, filename=report.filename, content=content, caption=caption)


# --- daily digests ---------------------------------------------------------------------------------
def _digest_due(links: list[ChatLink], now: datetime) -> list[tuple[ChatLink, date]]:
    settings_by_clinic = {
        s.clinic_id: s for s in TelegramSettings.objects.filter(clinic_id__in={link.clinic_id for link in links})
    }
    default_time = conf.default_digest_time()
    due = []
    for link in links:
        clinic_settings = settings_by_clinic.get(link.clinic_id)
        if clinic_settings is not None and not clinic_settings.digest_enabled:
            continue
        at = clinic_settings.digest_time if clinic_settings is not None else default_time
        local = now.astimezone(link.clinic.tz)
        if local.time() < at or link.last_digest_on == local.date():
            continue
        due.append((link, local.date()))
    return due


def digests_send_due(*, session_factory: Callable[[], Any] | None = None, now: datetime | None = None) -> Delivery:
    """Send each due chat its digest of the clinic's previous day (run every few minutes)."""
    now = now or timezone.now()
    delivery = Delivery()
    links = list(ChatLink.objects.active().filter(digest_enabled=True).select_related("clinic"))
    due = _digest_due(links, now)
    if not due:
        return delivery
    session = _Session(session_factory or services.open_session)
    rendered: dict[tuple[int, date, str], str] = {}
    try:
        for link, today in due:
            previous = link.last_digest_on
            claimed = (
                ChatLink.objects.filter(pk=link.pk, unlinked_at__isnull=True)
                .filter(Q(last_digest_on__isnull=True) | Q(last_digest_on__lt=today))
                .update(last_digest_on=today)
            )
            if not claimed:
                continue  # another worker sent it, or it was sent today already
            key = (link.clinic_id, today, link.language)
            with translation.override(link.language):
                if key not in rendered:
                    rendered[key] = _digest_text(link.clinic, today - timedelta(days=1))
                outcome = _send(session, link, rendered[key], delivery)
            if outcome in {"retry", "failed"}:
                # Not delivered: un-claim so the next run tries again (still once per day at most).
                ChatLink.objects.filter(pk=link.pk, last_digest_on=today).update(last_digest_on=previous)
                delivery.released += 1
                if outcome == "retry":
                    break
    finally:
        session.close()
    return delivery


def _digest_text(clinic: Clinic, day: date) -> str:
    figures = selectors.clinic_figures(clinic, day, day)
    usage = selectors.clinic_quota(clinic)
    failed = selectors.failed_calls_count(clinic, day)
    return texts.digest(clinic, day, figures, usage, failed)

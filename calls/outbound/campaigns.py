"""Campaigns: many AI calls with one script, paced by calling windows, concurrency and retries.

The dispatcher (:func:`campaign_dispatch`, every minute and after every result) locks the campaign
row, reads the contacts that matter (the ones being called, due retries, the next pending ones, the
earliest future retry), asks :func:`medai.integrations.campaign_planner.plan` whom to dial, claims
those contacts with a conditional UPDATE and creates their calls — all in one short transaction.
Slots are the contacts ``in_progress``: only the dispatcher makes a contact ``in_progress`` and only
while holding the campaign's lock, so two dispatchers cannot both fill the same free slot (on
PostgreSQL the row lock serialises them; SQLite's IMMEDIATE transactions do the same). The calls
are started after the commit, outside the lock. A result frees its slot in the transaction that
records it, then wakes the dispatcher.

A number on the do-not-call list is never dialled: it is marked at import, checked again when the
dispatcher picks it, and once more right before StartScenarios.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall
from calls.outbound import imports
from calls.outbound.accounts import account_for
from calls.outbound.services import (
    ensure_configured,
    new_token,
    outbound_call_start,
    validate_call_content,
    validate_phone,
)
from clinics.models import Clinic
from medai.integrations.campaign_planner import (
    CallingSchedule,
    Contact,
    ContactState,
    Outcome,
    RetryPolicy,
    after_attempt,
    plan,
)

logger = logging.getLogger("medai.outbound")

State = CampaignContact.State
MAX_ROW_ERRORS = 200


# --- configuration ----------------------------------------------------------------------------------
def clean_windows(windows) -> dict[str, list[list[str]]]:
    """``{"0": [["09:00", "20:00"]], …}`` checked and normalised; ValidationError says what is wrong."""
    if not isinstance(windows, dict) or not windows:
        raise ValidationError({"calling_windows": [_("Give at least one calling window, e.g. {\"0\": [[\"09:00\", \"20:00\"]]}.")]})
    cleaned: dict[str, list[list[str]]] = {}
    try:
        for day, spans in windows.items():
            if str(day) not in {str(d) for d in range(7)} or not isinstance(spans, list):
                raise ValueError(f"weekday keys are 0 (Monday) to 6 (Sunday), each with a list of [start, end]; got {day!r}")
            rows = []
            for span in spans:
                if not isinstance(span, (list, tuple)) or len(span) != 2:
                    raise ValueError(f"a window is [\"HH:MM\", \"HH:MM\"], got {span!r}")
                start, end = (time.fromisoformat(str(v)) for v in span)
                rows.append([start.strftime("%H:%M"), end.strftime("%H:%M")])
            if rows:
                cleaned[str(day)] = rows
        if not cleaned:
            raise ValueError("no calling window at all")
        CallingSchedule.weekly("UTC", {int(day): [tuple(s) for s in spans] for day, spans in cleaned.items()})
    except (ValueError, TypeError) as exc:
        raise ValidationError({"calling_windows": [str(exc)]}) from exc
    return cleaned


def schedule_for(campaign: Campaign) -> CallingSchedule:
    windows = campaign.calling_windows or {}
    return CallingSchedule.weekly(
        campaign.clinic.time_zone, {int(day): [tuple(span) for span in spans] for day, spans in windows.items()}
    )


def policy_for(campaign: Campaign) -> RetryPolicy:
    intervals = {
        Outcome.NO_ANSWER: campaign.retry_no_answer_minutes,
        Outcome.BUSY: campaign.retry_busy_minutes,
        Outcome.VOICEMAIL: campaign.retry_voicemail_minutes,
    }
    return RetryPolicy(
        max_attempts=campaign.max_attempts,
        intervals={outcome: timedelta(minutes=minutes) for outcome, minutes in intervals.items() if minutes},
    )


# --- create, import, control ----------------------------------------------------------------------
def campaign_create(*, clinic: Clinic, name: str, greeting: str, actor: str = "", **fields) -> Campaign:
    """A draft campaign (contacts come from :func:`campaign_import`; :func:`campaign_start` runs it)."""
    campaign = Campaign(clinic=clinic, name=name.strip()[:200], greeting=greeting.strip(), created_by=actor[:150], **fields)
    campaign.calling_windows = clean_windows(campaign.calling_windows)
    validate_call_content(
        language=campaign.language,
        voice=campaign.voice,
        greeting=campaign.greeting,
        prompt=campaign.prompt,
        script=campaign.script,
    )
    campaign.full_clean(exclude=["clinic"])
    campaign.save()
    return campaign


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    do_not_call: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "do_not_call": self.do_not_call,
            "error_count": self.error_count,
            "errors": self.errors,
            "at": timezone.now().isoformat(),
        }


def campaign_import(*, campaign: Campaign, filename: str, data: bytes, actor: str = "") -> ImportReport:
    """Validate every row, import the valid ones (E.164, duplicates collapsed), report the others.

    A file that cannot be read at all raises ValidationError; row problems never do.
    """
    if campaign.status == Campaign.Status.CANCELLED:
        raise ValidationError(_("The campaign is cancelled."))
    try:
        parsed = imports.read_contacts(filename, data)
    except imports.ImportFileError as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    report = ImportReport(file=filename[:200], rows=parsed.total_rows)
    seen = set(CampaignContact.objects.filter(campaign=campaign).values_list("phone", flat=True))
    blocked = set(DoNotCall.objects.filter(clinic_id=campaign.clinic_id).values_list("phone", flat=True))
    position = (CampaignContact.objects.filter(campaign=campaign).aggregate(top=Max("position"))["top"] or 0) + 1
    new: list[CampaignContact] = []
    for row in parsed.rows:
        try:
            phone = validate_phone(row.phone, strict=False)
            lead = int(row.crm_lead_id) if row.crm_lead_id else None
            if lead is not None and lead <= 0:
                raise ValueError
        except ValidationError as exc:
            _row_error(report, row, exc.messages[0])
            continue
        except ValueError:
            _row_error(report, row, _("The CRM lead id must be a positive whole number, got “%(value)s”.") % {"value": row.crm_lead_id})
            continue
        if phone in seen:
            report.duplicates += 1
            continue
        seen.add(phone)
        on_list = phone in blocked
        report.do_not_call += on_list
        new.append(
            CampaignContact(
                campaign=campaign,
                clinic_id=campaign.clinic_id,
                position=position,
                row_number=row.row,
                phone=phone,
                name=row.name,
                crm_lead_id=lead,
                state=State.DO_NOT_CALL if on_list else State.PENDING,
                finished_reason=_("On the do-not-call list") if on_list else "",
            )
        )
        position += 1
    with transaction.atomic():
        created = CampaignContact.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        report.imported = len(created) - report.do_not_call
        Campaign.objects.filter(pk=campaign.pk).update(import_report=report.as_dict())
        if campaign.status == Campaign.Status.COMPLETED and report.imported:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.COMPLETED).update(
                status=Campaign.Status.RUNNING, finished_at=None
            )
            _wake(campaign.pk)
    logger.info("campaign %s: imported %d contact(s), %d row error(s)", campaign.pk, report.imported, report.error_count)
    return report


def _row_error(report: ImportReport, row: imports.ContactRow, message: str) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_ROW_ERRORS:
        report.errors.append({"row": row.row, "value": row.phone[:40], "error": message})


def _transition(campaign: Campaign, *, from_states, to_state: str, **extra) -> bool:
    changed = Campaign.objects.filter(pk=campaign.pk, status__in=from_states).update(status=to_state, **extra)
    campaign.refresh_from_db()
    return bool(changed)


def campaign_start(*, campaign: Campaign) -> Campaign:
    if not CampaignContact.objects.filter(campaign=campaign).exists():
        raise ValidationError(_("Import contacts before starting the campaign."))
    ensure_configured(account_for(campaign.clinic))
    with transaction.atomic():
        if not _transition(campaign, from_states=[Campaign.Status.DRAFT], to_state=Campaign.Status.RUNNING, started_at=timezone.now(), last_error=""):
            raise ValidationError(_("Only a draft campaign can be started (this one is %(status)s).") % {"status": campaign.get_status_display()})
        _wake(campaign.pk)
    return campaign


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """No new calls; the calls in progress finish and their results are recorded."""
    if not _transition(campaign, from_states=[Campaign.Status.RUNNING], to_state=Campaign.Status.PAUSED):
        raise ValidationError(_("Only a running campaign can be paused."))
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    ensure_configured(account_for(campaign.clinic))
    with transaction.atomic():
        if not _transition(campaign, from_states=[Campaign.Status.PAUSED], to_state=Campaign.Status.RUNNING, last_error=""):
            raise ValidationError(_("Only a paused campaign can be resumed."))
        _wake(campaign.pk)
    return campaign


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Stop for good: waiting contacts are closed; calls already ringing finish and are recorded."""
    active = [Campaign.Status.DRAFT, Campaign.Status.RUNNING, Campaign.Status.PAUSED]
    with transaction.atomic():
        if not _transition(campaign, from_states=active, to_state=Campaign.Status.CANCELLED, finished_at=timezone.now()):
            raise ValidationError(_("The campaign has already finished."))
        CampaignContact.objects.filter(campaign=campaign, state__in=[State.PENDING, State.RETRY]).update(
            state=State.DONE, retry_at=None, finished_reason=_("Campaign cancelled")
        )
    for call in OutboundCall.objects.filter(campaign=campaign, status=OutboundCall.Status.QUEUED):
        if OutboundCall.objects.filter(pk=call.pk, status=OutboundCall.Status.QUEUED).update(status=OutboundCall.Status.DIALING):
            release_unstarted(call, reason="cancelled")
    return campaign


def _wake(campaign_id: int) -> None:
    from calls.outbound import tasks

    tasks.enqueue("dispatch_campaign", campaign_id)


# --- dispatching ----------------------------------------------------------------------------------
@dataclass
class DispatchResult:
    calls: list[int] = field(default_factory=list)  # outbound calls created (and started unless start=False)
    started: int = 0
    in_progress: int = 0
    next_wake_at: datetime | None = None
    waiting_for_slots: bool = False
    finished: bool = False


def _planner_contact(row: CampaignContact) -> Contact:
    return Contact(id=row.pk, phone=row.phone, state=ContactState(row.state), attempts=row.attempts, retry_at=row.retry_at)


def campaign_dispatch(campaign_id: int, *, now: datetime | None = None, start: bool = True) -> DispatchResult:
    """Start as many calls as the campaign's free slots and windows allow (see the module doc)."""
    now = now or timezone.now()
    result = DispatchResult()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("clinic").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.RUNNING:
            return result
        contacts = CampaignContact.objects.filter(campaign=campaign)
        busy = contacts.filter(state=State.IN_PROGRESS).count()
        free = max(0, campaign.max_concurrency - busy)
        # Enough rows for the planner to decide: the next `free` candidates of each kind, and the
        # earliest future retry (for the wake-up time). At least one of each so "finished" is right.
        window = max(free, 1)
        due_retries = list(contacts.filter(state=State.RETRY, retry_at__lte=now).order_by("retry_at", "position")[:window])
        pending = list(contacts.filter(state=State.PENDING).order_by("position", "id")[:window])
        future = list(contacts.filter(state=State.RETRY, retry_at__gt=now).order_by("retry_at")[:1])
        candidates = [*due_retries, *pending]
        blocked_numbers = set(
            DoNotCall.objects.filter(clinic_id=campaign.clinic_id, phone__in=[c.phone for c in candidates]).values_list(
                "phone", flat=True
            )
        )
        placeholders = [Contact(id=("busy", i), phone="", state=ContactState.IN_PROGRESS) for i in range(busy)]
        decision = plan(
            [*placeholders, *(_planner_contact(c) for c in (*due_retries, *future, *pending))],
            now=now,
            schedule=schedule_for(campaign),
            max_concurrency=campaign.max_concurrency,
            policy=policy_for(campaign),
            do_not_call=blocked_numbers,
        )
        if decision.blocked:
            contacts.filter(pk__in=decision.blocked, state__in=[State.PENDING, State.RETRY]).update(
                state=State.DO_NOT_CALL, retry_at=None, finished_reason=_("On the do-not-call list")
            )
        by_id = {c.pk: c for c in candidates}
        for contact_id in decision.dial:
            claimed = contacts.filter(pk=contact_id, state__in=[State.PENDING, State.RETRY]).update(
                state=State.IN_PROGRESS, attempts=F("attempts") + 1, retry_at=None
            )
            if not claimed:
                continue
            contact = by_id[contact_id]
            call = OutboundCall.objects.create(
                clinic_id=campaign.clinic_id,
                campaign=campaign,
                contact=contact,
                token=new_token(),
                phone=contact.phone,
                language=campaign.language,
                voice=campaign.voice,
                greeting=campaign.greeting,
                prompt=campaign.prompt,
                script=campaign.script,
                purpose=campaign.purpose,
                crm_lead_id=contact.crm_lead_id,
                created_by=f"campaign {campaign.pk}",
            )
            result.calls.append(call.pk)
        result.in_progress = busy + len(result.calls)
        result.next_wake_at = decision.next_wake_up
        result.waiting_for_slots = decision.waiting_for_slots
        update = {"next_wake_at": decision.next_wake_up}
        if decision.finished and not result.calls:
            update.update(status=Campaign.Status.COMPLETED, finished_at=now)
            result.finished = True
        Campaign.objects.filter(pk=campaign.pk).update(**update)
    if start and result.calls:
        result.started = _start_calls(campaign, result.calls)
    return result


def _start_calls(campaign: Campaign, call_ids: list[int]) -> int:
    account = account_for(campaign.clinic)
    try:
        client = account.client()
    except Exception:  # each start then reports the problem on its own (and pauses the campaign)
        client = None
    started = 0
    try:
        for call_id in call_ids:
            started += outbound_call_start(call_id, client=client) == "started"
    finally:
        if client is not None:
            client.close()
    return started


def campaigns_dispatch_running(*, now: datetime | None = None) -> int:
    """Every minute: give each running campaign a dispatch (windows opening, retries falling due)."""
    count = 0
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("pk", flat=True):
        count += len(campaign_dispatch(campaign_id, now=now).calls)
    return count


# --- results and releases -------------------------------------------------------------------------
def contact_after_call(call: OutboundCall, *, outcome: str, now: datetime, do_not_call: bool = False) -> None:
    """Free the contact's slot: done, or a retry inside the calling windows. Wakes the dispatcher."""
    contact = (
        CampaignContact.objects.select_for_update().select_related("campaign__clinic").filter(pk=call.contact_id).first()
    )
    if contact is None or contact.state != State.IN_PROGRESS:
        return
    campaign = contact.campaign
    contact.last_outcome = outcome
    contact.retry_at = None
    if do_not_call:
        contact.state, contact.finished_reason = State.DO_NOT_CALL, _("On the do-not-call list")
    elif campaign.status == Campaign.Status.CANCELLED:
        contact.state, contact.finished_reason = State.DONE, _("Campaign cancelled")
    else:
        decision = after_attempt(
            outcome,
            attempts=max(1, contact.attempts),
            finished_at=now,
            schedule=schedule_for(campaign),
            policy=policy_for(campaign),
        )
        contact.state, contact.retry_at, contact.finished_reason = decision.state.value, decision.retry_at, decision.reason[:200]
    contact.save(update_fields=["state", "retry_at", "last_outcome", "finished_reason", "updated_at"])
    _wake(campaign.pk)


def release_unstarted(call: OutboundCall, *, reason: str) -> None:
    """A claimed call that was never sent to Voximplant: delete it and give the contact its attempt back."""
    now = timezone.now()
    with transaction.atomic():
        # Only ever called when StartScenarios was not sent (or was refused): no session can exist.
        deleted, _rows = OutboundCall.objects.filter(pk=call.pk, session_id__isnull=True).delete()
        if not deleted or call.contact_id is None:
            return
        contact = CampaignContact.objects.select_for_update().filter(pk=call.contact_id, state=State.IN_PROGRESS).first()
        if contact is None:
            return
        contact.attempts = max(0, contact.attempts - 1)
        if reason == "cancelled":
            contact.state, contact.retry_at, contact.finished_reason = State.DONE, None, _("Campaign cancelled")
        elif contact.attempts:
            contact.state, contact.retry_at = State.RETRY, now
        else:
            contact.state, contact.retry_at = State.PENDING, None
        contact.save(update_fields=["state", "retry_at", "attempts", "finished_reason", "updated_at"])


def pause_on_start_error(call: OutboundCall, *, error: str) -> None:
    """Voximplant refused for good (credentials, rule, arguments): pause rather than fail every contact."""
    release_unstarted(call, reason="paused")
    Campaign.objects.filter(pk=call.campaign_id, status=Campaign.Status.RUNNING).update(
        status=Campaign.Status.PAUSED, last_error=error
    )
    logger.warning("campaign %s paused: StartScenarios refused: %s", call.campaign_id, error[:300])


# --- do-not-call list --------------------------------------------------------------------------------
def do_not_call_add(*, clinic: Clinic, phone: str, reason: str = "", actor: str = "") -> DoNotCall:
    """Add a number; waiting contacts of every campaign of the clinic with it are closed at once."""
    try:
        phone = validate_phone(phone, strict=False)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from exc
    with transaction.atomic():
        entry, _created = DoNotCall.objects.get_or_create(
            clinic=clinic, phone=phone, defaults={"reason": reason.strip()[:200], "created_by": actor[:150]}
        )
        CampaignContact.objects.filter(clinic=clinic, phone=phone, state__in=[State.PENDING, State.RETRY]).update(
            state=State.DO_NOT_CALL, retry_at=None, finished_reason=_("On the do-not-call list")
        )
    return entry


def do_not_call_remove(*, entry: DoNotCall) -> None:
    """Remove a number. Contacts closed because of it stay closed (re-import them to call again)."""
    entry.delete()

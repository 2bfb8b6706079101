"""Reads for outbound calls and campaigns: listings, a call's live status, a campaign's progress.

"Interested" and "lead" mean what they mean in the reports' funnel (reports.rollups): an answered
call whose analysis found high or medium interest, or a booking; a lead is a booking.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, Q, QuerySet

from calls.models import Campaign, CampaignContact, OutboundCall

INTERESTED_LEVELS = ("high", "medium")  # the same as reports.rollups.INTERESTED_LEVELS
Status = OutboundCall.Status


def outbound_call_list(
    *,
    queryset: QuerySet[OutboundCall] | None = None,
    status: str | None = None,
    campaign_id: int | None = None,
    clinic_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    phone: str | None = None,
) -> QuerySet[OutboundCall]:
    qs = (queryset if queryset is not None else OutboundCall.objects.all()).select_related(
        "clinic", "campaign", "call", "call__analysis"
    )
    if status:
        qs = qs.filter(status=status)
    if campaign_id:
        qs = qs.filter(campaign_id=campaign_id)
    if clinic_id:
        qs = qs.filter(clinic_id=clinic_id)
    if date_from:
        qs = qs.filter(created_at__date__gte=date_from)
    if date_to:
        qs = qs.filter(created_at__date__lte=date_to)
    if phone:
        qs = qs.filter(phone=phone)
    return qs.order_by("-created_at", "-id")


def analysis_of(call: OutboundCall) -> dict[str, Any] | None:
    """The five outputs and the scorecard of the call's analysis, once the pipeline produced it."""
    ingested = call.call
    analysis = getattr(ingested, "analysis", None) if ingested is not None and hasattr(ingested, "analysis") else None
    if analysis is None:
        return None
    return {
        "call_type": analysis.call_type,
        "summary": analysis.summary,
        "disposition": analysis.disposition,
        "follow_up": analysis.follow_up,
        "interest": analysis.interest,
        "crm_status": analysis.crm_status,
        "booked": ingested.booked,
        "overall_score": float(analysis.overall_score) if analysis.overall_score is not None else None,
        "criteria": analysis.criteria,
    }


def outbound_call_status(call: OutboundCall) -> dict[str, Any]:
    """What the admin's live view polls: state, timings, the pipeline stage and the analysis."""
    ingested = call.call
    return {
        "id": call.pk,
        "status": call.status,
        "status_label": str(call.get_status_display()),
        "terminal": call.is_terminal,
        "duration_seconds": call.duration_seconds,
        "error": call.error,
        "dial_started_at": call.dial_started_at.isoformat() if call.dial_started_at else None,
        "finished_at": call.finished_at.isoformat() if call.finished_at else None,
        "call_id": ingested.pk if ingested else None,
        "stage": ingested.stage if ingested else None,
        "stage_label": str(ingested.get_stage_display()) if ingested else None,
        "pipeline_finished": bool(ingested and ingested.is_terminal) or (call.is_terminal and ingested is None),
        "analysis": analysis_of(call),
    }


def campaign_progress(campaign: Campaign) -> dict[str, Any]:
    """Contacts by state, calls by status, and the contact funnel dialled → reached → interested → leads."""
    contacts = CampaignContact.objects.filter(campaign=campaign)
    by_state = {state: 0 for state in CampaignContact.State.values}
    by_state.update(dict(contacts.values_list("state").annotate(n=Count("id")).order_by()))
    by_status = {status: 0 for status in Status.values}
    by_status.update(dict(OutboundCall.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("id")).order_by()))
    total = sum(by_state.values())
    answered = Q(calls__status=Status.COMPLETED)
    interested = answered & (Q(calls__call__booked=True) | Q(calls__call__analysis__interest__in=INTERESTED_LEVELS))
    funnel = contacts.aggregate(
        dialled=Count("id", filter=Q(attempts__gt=0), distinct=True),
        reached=Count("id", filter=answered, distinct=True),
        interested=Count("id", filter=interested, distinct=True),
        leads=Count("id", filter=answered & Q(calls__call__booked=True), distinct=True),
    )
    finished = by_state[CampaignContact.State.DONE] + by_state[CampaignContact.State.DO_NOT_CALL]
    return {
        "contacts": total,
        "states": by_state,
        "calls": by_status,
        "calls_total": sum(by_status.values()),
        "in_progress": by_state[CampaignContact.State.IN_PROGRESS],
        "percent_done": round(finished * 100 / total, 1) if total else 0.0,
        "funnel": {"contacts": total, **funnel},
    }

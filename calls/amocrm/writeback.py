"""The pipeline's ``write_back`` step: one note on the call's amoCRM lead, never two.

The note holds the score summary (call type, overall score, booking, recommendations) and the
start of the transcript with roles. Idempotency: before posting, a ``crm_note`` row is written to
the call's audit trail (:class:`~calls.models.CallEvent`); it becomes "succeeded" with amoCRM's note
id after the post, and is removed only when amoCRM certainly did not take the note (429, 4xx).
A retry that finds the row posts nothing: either the note is there, or the previous attempt's
outcome is unknown (a timeout or a dead worker after sending), where a duplicate is the worse risk.

Calls without a lead, clinics without a (working) connection or with write-back off: a no-op.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import translation
from django.utils.translation import gettext as _

from calls.models import Call, CallEvent, Transcript
from calls.pipeline import StepResult
from clinics.models import CrmConnection
from medai.http import HttpError

from .connection import AmoSession, CrmUnavailable

logger = logging.getLogger("medai.amocrm")

NOTE_STAGE = "crm_note"
NOTE_UTTERANCES = 12
UTTERANCE_CHARS = 300
NOTE_MAX_CHARS = 4000


def _trim(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _duration(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def note_text(call: Call) -> str:
    """The note for the lead, in the deployment's language; empty when there is nothing to say."""
    try:
        analysis = call.analysis
    except (AttributeError, ObjectDoesNotExist):
        analysis = None
    transcript = Transcript.objects.filter(call=call).first()
    utterances = transcript.utterances if transcript else []
    if analysis is None and not utterances:
        return ""
    with translation.override(settings.LANGUAGE_CODE):
        local = call.started_at.astimezone(call.clinic.tz)
        lines = [
            _("MedAI: call of %(when)s, %(direction)s, %(duration)s")
            % {"when": f"{local:%d.%m.%Y %H:%M}", "direction": call.get_direction_display().lower(), "duration": _duration(call.duration_seconds)}
        ]
        if call.administrator_id:
            lines.append(_("Administrator: %(name)s") % {"name": call.administrator.name})
        if analysis is not None:
            score = _("not scored") if analysis.overall_score is None else f"{float(analysis.overall_score):.1f}/10"
            lines.append(_("Call type: %(type)s · Score: %(score)s") % {"type": analysis.get_call_type_display(), "score": score})
        if call.booked is not None:
            lines.append(_("Booked: %(answer)s") % {"answer": _("yes") if call.booked else _("no")})
        recommendations = [r for r in (analysis.recommendations if analysis is not None else []) or [] if str(r).strip()]
        if recommendations:
            lines.append(_("Recommendations:"))
            lines += [f"{n}. {_trim(str(r), 300)}" for n, r in enumerate(recommendations[:3], start=1)]
        if utterances:
            shown = utterances[:NOTE_UTTERANCES]
            lines.append("")
            lines.append(_("Transcript (%(shown)d of %(total)d lines):") % {"shown": len(shown), "total": len(utterances)})
            for utterance in shown:
                role = utterance.get("role") or Transcript.Role.OTHER
                label = Transcript.Role(role).label if role in Transcript.Role.values else role
                lines.append(f"{label}: {_trim(utterance.get('text', ''), UTTERANCE_CHARS)}")
            if len(utterances) > len(shown):
                lines.append("…")
    return _trim_lines(lines, NOTE_MAX_CHARS)


def _trim_lines(lines: list[str], limit: int) -> str:
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _certainly_not_posted(exc: HttpError) -> bool:
    """amoCRM rejected the request before creating anything (rate limit, validation, auth)."""
    return exc.status is not None and 400 <= exc.status < 500


def step_write_back(call: Call) -> StepResult:
    if not call.crm_lead_id:
        return StepResult(detail={"write_back": "no lead"})
    connection = CrmConnection.objects.filter(clinic_id=call.clinic_id).first()
    if connection is None:
        return StepResult(detail={"write_back": "no connection"})
    if not connection.write_back:
        return StepResult(detail={"write_back": "off"})
    if connection.status != CrmConnection.Status.ACTIVE:
        return StepResult(detail={"write_back": f"connection {connection.status}"})
    record = CallEvent.objects.filter(call=call, stage=NOTE_STAGE).order_by("-id").first()
    if record is not None:
        if record.status == CallEvent.Status.SUCCEEDED:
            return StepResult(detail={"write_back": "already posted", "note_id": record.detail.get("note_id")})
        return StepResult(detail={"write_back": "not re-posted: a previous attempt may have posted it"})
    text = note_text(call)
    if not text:
        return StepResult(detail={"write_back": "nothing to post"})

    lead_id = call.crm_lead_id
    record = CallEvent.objects.create(
        call=call, stage=NOTE_STAGE, status=CallEvent.Status.RETRY, detail={"lead_id": lead_id, "state": "posting"}
    )
    try:
        with AmoSession(connection) as session:
            note_id = session.run(lambda client: client.add_lead_note(lead_id, text))
    except CrmUnavailable as exc:
        record.delete()  # 401/403 or a refused refresh: nothing was posted; the connection is broken and alerted
        return StepResult(detail={"write_back": "connection unavailable", "error": str(exc)[:300]})
    except HttpError as exc:
        if _certainly_not_posted(exc):
            record.delete()
            if exc.status in (400, 404):  # the lead was deleted or merged: nothing to write back to
                return StepResult(detail={"write_back": "rejected by amoCRM", "error": str(exc)[:300]})
        else:
            record.detail = {"lead_id": lead_id, "state": "unknown", "error": str(exc)[:300]}
            record.error = str(exc)[:2000]
            record.save(update_fields=["detail", "error"])
        raise
    record.status = CallEvent.Status.SUCCEEDED
    record.detail = {"lead_id": lead_id, "note_id": note_id}
    record.save(update_fields=["status", "detail"])
    return StepResult(detail={"write_back": "posted", "lead_id": lead_id, "note_id": note_id})

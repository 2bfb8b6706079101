"""Writes that concern calls: ingestion, attribution, the pipeline's own step handlers, reprocessing."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from calls import pipeline
from calls.models import Call, Recording, SkipReason, Transcript
from calls.pipeline import SkipCall, StepResult
from clinics.models import Administrator, Clinic, WorkSchedule
from medai.timeutils import local_date

logger = logging.getLogger("medai.calls")


# --- small pure helpers ------------------------------------------------------------------------
def normalize_phone(raw: str, *, region: str = "RU") -> str:
    """E.164 form of a phone number; raises ValidationError when it is not a plausible number."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    candidate = raw
    digits = "".join(ch for ch in raw if ch.isdigit())
    # Russian habits: 8XXXXXXXXXX and 7XXXXXXXXXX without a plus.
    if not raw.startswith("+") and len(digits) == 11 and digits[0] in "78":
        candidate = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("Not a phone number.")) from exc
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(_("Not a valid phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def administrator_for(
    clinic: Clinic, started_at: datetime, *, crm_user_id: int | None = None, name: str = ""
) -> Administrator | None:
    """Who handled the call: the CRM responsible user, else a named administrator, else the shift."""
    if crm_user_id:
        admin = Administrator.objects.filter(clinic=clinic, crm_user_id=crm_user_id).first()
        if admin:
            return admin
    if name:
        admin = Administrator.objects.filter(clinic=clinic, name__iexact=name.strip()).first()
        if admin:
            return admin
    local = started_at.astimezone(clinic.tz)
    shifts = list(
        WorkSchedule.objects.filter(clinic=clinic, date=local.date(), administrator__is_active=True).select_related(
            "administrator"
        )
    )
    timed = [s for s in shifts if s.start_time and s.end_time and s.start_time <= local.time() < s.end_time]
    if len(timed) == 1:
        return timed[0].administrator
    untimed = [s for s in shifts if not s.start_time]
    if not timed and len(untimed) == 1:
        return untimed[0].administrator
    return None  # nobody, or ambiguous: better unknown than wrong


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


# --- transcripts ---------------------------------------------------------------------------------
ROLE_VALUES = {choice.value for choice in Transcript.Role}


def words_as_dicts(words) -> list[dict]:
    return [{"text": w.text, "start": w.start, "end": w.end, "speaker": w.speaker, "kind": w.kind} for w in words]


def utterances_as_dicts(utterances) -> list[dict]:
    return [{"speaker": u.speaker, "start": round(u.start, 2), "end": round(u.end, 2), "text": u.text} for u in utterances]


def parse_transcript(payload: Any) -> tuple[list[dict], list[dict]]:
    """Validate an imported transcript. Returns (words, utterances).

    Accepted shapes:
    * ``{"utterances": [{"speaker", "start", "end", "text", "role"?}, ...]}`` or the bare list;
    * an ElevenLabs speech-to-text response: ``{"words": [{"text", "start", "end", "type", "speaker_id"}]}``.
    """
    from calls.diarization import build_utterances
    from medai.integrations.transcription_types import words_from_elevenlabs

    if isinstance(payload, dict) and "words" in payload and "utterances" not in payload:
        try:
            words = words_from_elevenlabs(payload)
        except ValueError as exc:
            raise ValidationError(_("Invalid ElevenLabs transcript: %(error)s") % {"error": exc}) from exc
        if not words:
            raise ValidationError(_("The transcript has no words."))
        return words_as_dicts(words), utterances_as_dicts(build_utterances(words))
    items = payload.get("utterances") if isinstance(payload, dict) else payload
    if not isinstance(items, list) or not items:
        raise ValidationError(
            _("A transcript must be a non-empty list of utterances, or an object with 'utterances' or 'words'.")
        )
    utterances: list[dict] = []
    previous_start = -1.0
    for index, item in enumerate(items):
        where = _("utterance %(n)d") % {"n": index + 1}
        if not isinstance(item, dict):
            raise ValidationError(_("%(where)s: must be an object.") % {"where": where})
        text = str(item.get("text", "")).strip()
        speaker = str(item.get("speaker", "")).strip()
        if not text or not speaker:
            raise ValidationError(_("%(where)s: 'speaker' and 'text' are required.") % {"where": where})
        try:
            start = float(item["start"])
            end = float(item["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(_("%(where)s: 'start' and 'end' must be numbers (seconds).") % {"where": where}) from exc
        if start < 0 or end < start:
            raise ValidationError(_("%(where)s: needs 0 <= start <= end.") % {"where": where})
        if start < previous_start:
            raise ValidationError(_("%(where)s: utterances must be in time order.") % {"where": where})
        previous_start = start
        utterance = {"speaker": speaker, "start": round(start, 2), "end": round(end, 2), "text": text}
        role = item.get("role")
        if role is not None:
            if role not in ROLE_VALUES:
                raise ValidationError(
                    _("%(where)s: role must be one of %(roles)s.") % {"where": where, "roles": ", ".join(sorted(ROLE_VALUES))}
                )
            utterance["role"] = role
        utterances.append(utterance)
    return [], utterances


def transcript_assign_roles(transcript: Transcript, *, call: Call) -> None:
    """Decide who is the administrator and who the patient (unless an operator set roles by hand)."""
    from calls.diarization import Utterance, assign_roles

    if transcript.roles_overridden:
        roles = transcript.roles
    else:
        given = {u["speaker"]: u["role"] for u in transcript.utterances if u.get("role")}
        if given:
            roles, confidence = given, 1.0
        else:
            assignment = assign_roles(
                [Utterance(u["speaker"], u["start"], u["end"], u["text"]) for u in transcript.utterances],
                direction=call.direction,
                clinic_name=call.clinic.name,
                admin_names=list(call.clinic.administrators.values_list("name", flat=True)),
            )
            roles, confidence = assignment.roles, assignment.confidence
        transcript.roles = roles
        transcript.role_confidence = confidence
    transcript.utterances = [{**u, "role": roles.get(u["speaker"], Transcript.Role.OTHER)} for u in transcript.utterances]
    transcript.text = "\n".join(u["text"] for u in transcript.utterances)


def transcript_set_roles(*, transcript: Transcript, roles: dict[str, str]) -> Transcript:
    """An operator's manual override of speaker roles; later automatic passes keep it."""
    unknown = set(roles.values()) - ROLE_VALUES
    if unknown:
        raise ValidationError(_("Unknown role(s): %(roles)s") % {"roles": ", ".join(sorted(unknown))})
    transcript.roles = roles
    transcript.roles_overridden = True
    transcript.role_confidence = 1.0
    transcript_assign_roles(transcript, call=transcript.call)
    transcript.save()
    return transcript


# --- ingestion -------------------------------------------------------------------------------------
@dataclass
class IngestResult:
    call: Call
    created: bool


def call_ingest(
    *,
    clinic: Clinic,
    started_at: datetime,
    source: str = Call.Source.UPLOAD,
    direction: str = Call.Direction.INBOUND,
    status: str = Call.Status.ANSWERED,
    external_id: str = "",
    duration_seconds: int | None = None,
    phone: str = "",
    recording_url: str = "",
    audio: bytes | None = None,
    audio_filename: str = "",
    transcript: Any = None,
    administrator: Administrator | None = None,
    administrator_name: str = "",
    crm_lead_id: int | None = None,
    crm_contact_id: int | None = None,
    crm_responsible_user_id: int | None = None,
    traffic_source: str = "",
    lead_processing_minutes: int | None = None,
    enqueue: bool = True,
) -> IngestResult:
    """Store a call (idempotent by clinic + external id) and queue it for the pipeline.

    Everything is validated before anything is written: an invalid file or transcript raises
    ``ValidationError`` and leaves no row behind.
    """
    if timezone.is_naive(started_at):
        raise ValidationError(_("started_at must include a time zone offset."))
    if sum(x is not None and x != "" for x in (audio, recording_url, transcript)) > 1:
        raise ValidationError(_("Give one of: an audio file, a recording URL, or a transcript."))
    phone_e164 = normalize_phone(phone) if phone else ""

    audio_info = None
    if audio is not None:
        from medai.audio import InvalidAudio, probe_audio

        try:
            audio_info = probe_audio(audio, filename=audio_filename)
        except InvalidAudio as exc:
            raise ValidationError(str(exc)) from exc
    words: list[dict] = []
    utterances: list[dict] = []
    if transcript is not None:
        words, utterances = parse_transcript(transcript)

    if not external_id:
        if audio is not None:
            external_id = "audio-" + _digest(audio)[:40]
        elif recording_url:
            external_id = "url-" + _digest(recording_url.encode())[:40]
        elif transcript is not None:
            external_id = "transcript-" + _digest(json.dumps(transcript, sort_keys=True).encode())[:40]
        else:
            raise ValidationError(_("external_id is required when no audio, recording URL or transcript is given."))

    existing = Call.objects.filter(clinic=clinic, external_id=external_id).first()
    if existing:
        return IngestResult(existing, created=False)

    if duration_seconds is None:
        if audio_info is not None:
            duration_seconds = round(audio_info.duration_seconds)
        elif utterances:
            duration_seconds = round(max(u["end"] for u in utterances))
        else:
            duration_seconds = 0

    if administrator is None:
        administrator = administrator_for(
            clinic, started_at, crm_user_id=crm_responsible_user_id, name=administrator_name
        )
    try:
        with transaction.atomic():
            call = Call.objects.create(
                clinic=clinic,
                external_id=external_id,
                source=source,
                direction=direction,
                status=status,
                phone=phone_e164,
                started_at=started_at,
                local_date=local_date(started_at, clinic.time_zone),
                duration_seconds=duration_seconds,
                recording_url=recording_url,
                administrator=administrator,
                crm_lead_id=crm_lead_id,
                crm_contact_id=crm_contact_id,
                crm_responsible_user_id=crm_responsible_user_id,
                traffic_source=traffic_source,
                lead_processing_minutes=lead_processing_minutes,
            )
            if audio is not None and audio_info is not None:
                recording = Recording(
                    call=call,
                    mime=audio_info.mime,
                    size_bytes=audio_info.size_bytes,
                    duration_seconds=audio_info.duration_seconds,
                    sha256=_digest(audio),
                )
                recording.file.save(f"upload.{audio_info.extension}", ContentFile(audio), save=False)
                recording.save()
            if utterances:
                record = Transcript(call=call, words=words, utterances=utterances, provider="import")
                transcript_assign_roles(record, call=call)
                record.save()
            if enqueue:
                pipeline.enqueue_call(call)
    except IntegrityError:
        # A concurrent ingest of the same call won the race: return its row.
        existing = Call.objects.filter(clinic=clinic, external_id=external_id).first()
        if existing is None:
            raise
        return IngestResult(existing, created=False)
    return IngestResult(call, created=True)


# --- step handlers (registered in CallsConfig.ready) ----------------------------------------------
def step_fetch_audio(call: Call) -> StepResult | None:
    """Apply the skip rules and make sure the call has audio (or an imported transcript)."""
    if call.status == Call.Status.MISSED:
        raise SkipCall(SkipReason.MISSED)
    if call.status == Call.Status.BUSY:
        raise SkipCall(SkipReason.BUSY)
    if 0 < call.duration_seconds < call.clinic.min_billable_seconds:
        raise SkipCall(SkipReason.TOO_SHORT)
    if Transcript.objects.filter(call=call).exists():
        return StepResult(detail={"audio": "not needed (transcript imported)"})
    if Recording.objects.filter(call=call).exists():
        return StepResult(detail={"audio": "uploaded"})
    if not call.recording_url:
        raise SkipCall(SkipReason.NO_RECORDING)
    return recording_fetch(call)


def recording_fetch(call: Call) -> StepResult:
    """Download and validate the recording before any money is spent; store it privately."""
    from django.conf import settings

    from medai.audio import InvalidAudio, download_audio, probe_audio

    try:
        data = download_audio(
            call.recording_url,
            max_bytes=settings.MAX_AUDIO_BYTES,
            proxy=call.clinic.proxy_url or None,
            timeout=settings.HTTP_TIMEOUT,
            allow_private=settings.RECORDING_URL_ALLOW_PRIVATE,
        )
        info = probe_audio(data)
    except InvalidAudio as exc:
        raise pipeline.StageError(_("Recording rejected: %(reason)s") % {"reason": exc}) from exc
    with transaction.atomic():
        recording, _created = Recording.objects.get_or_create(call=call)
        recording.mime = info.mime
        recording.size_bytes = info.size_bytes
        recording.duration_seconds = info.duration_seconds
        recording.sha256 = _digest(data)
        recording.file.save(f"recording.{info.extension}", ContentFile(data), save=False)
        recording.save()
        if not call.duration_seconds:
            Call.objects.filter(pk=call.pk).update(duration_seconds=round(info.duration_seconds))
    if info.duration_seconds < call.clinic.min_billable_seconds:
        raise SkipCall(SkipReason.TOO_SHORT)
    return StepResult(detail={"bytes": info.size_bytes, "seconds": round(info.duration_seconds, 1)})


def step_transcribe(call: Call) -> StepResult | None:
    """Use the imported transcript if there is one; else a paid provider (see calls.transcription)."""
    if Transcript.objects.filter(call=call).exists():
        return StepResult(detail={"transcript": "imported"})
    from calls.transcription import call_transcribe

    return call_transcribe(call)


# --- reprocessing -----------------------------------------------------------------------------------
def call_reprocess(*, call: Call, from_step: str, user_label: str = "") -> bool:
    return pipeline.reprocess_queryset(Call.objects.filter(pk=call.pk), from_step=from_step, user_label=user_label) == 1


def calls_reprocess_range(
    *, clinic_ids: list[int], date_from: date, date_to: date, from_step: str, stages: list[str] | None = None,
    user_label: str = "",
) -> int:
    if date_to < date_from:
        raise ValidationError(_("date_to is before date_from."))
    queryset = Call.objects.filter(clinic_id__in=clinic_ids, local_date__gte=date_from, local_date__lte=date_to)
    if stages:
        queryset = queryset.filter(stage__in=stages)
    return pipeline.reprocess_queryset(queryset, from_step=from_step, user_label=user_label)



def calls_resume_quota_skipped(*, clinic_ids: list[int] | None = None) -> int:
    """Re-queue calls waiting in skipped(quota) as far as each clinic's free minutes reach.

    Runs with the sweeper every minute, so a top-up, a raised limit or a new week/month resumes
    the waiting calls without anyone pressing a button.
    """
    from clinics.quotas import quota_available_seconds

    waiting = Call.objects.filter(stage="skipped", skip_reason=SkipReason.QUOTA)
    if clinic_ids is not None:
        waiting = waiting.filter(clinic_id__in=clinic_ids)
    resumed = 0
    for clinic in Clinic.objects.filter(pk__in=waiting.values("clinic_id").distinct(), is_active=True):
        budget = quota_available_seconds(clinic)
        chosen = []
        for call_id, seconds in waiting.filter(clinic=clinic).order_by("started_at").values_list("pk", "duration_seconds"):
            if max(1, seconds) > budget:
                break
            budget -= max(1, seconds)
            chosen.append(call_id)
        if chosen:
            resumed += pipeline.reprocess_queryset(
                Call.objects.filter(pk__in=chosen), from_step="transcribe", user_label="quota available"
            )
    return resumed

"""One amoCRM call (event + call note + lead) → the values MedAI stores on a :class:`~calls.models.Call`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError

from calls.models import Call
from calls.services import normalize_phone
from clinics.models import Administrator
from medai.integrations.amocrm import CallEvent, CallNote, CallStatus, CustomField, Lead, parse_processing_speed

from .conversion import ConversionConfig

RECORDING_URL_MAX = Call._meta.get_field("recording_url").max_length
TRAFFIC_SOURCE_MAX = Call._meta.get_field("traffic_source").max_length


def external_id(note_id: int) -> str:
    return f"amocrm-note-{note_id}"


@dataclass
class Reference:
    """What one sync needs to know about the account besides the calls themselves."""

    admins: dict[int, Administrator]
    conversion: ConversionConfig
    source_field: CustomField | None = None
    speed_field: CustomField | None = None
    confirmation_field: CustomField | None = None


@dataclass
class CallRow:
    external_id: str
    started_at: datetime
    direction: str
    status: str
    duration: int
    phone: str
    recording_url: str
    lead_id: int | None
    lead_pipeline_id: int | None
    contact_id: int | None
    responsible_user_id: int | None
    traffic_source: str = ""
    lead_processing_minutes: int | None = None
    phone_dropped: bool = False
    booked: bool | None = field(default=None)  # the CRM's verdict, None = no opinion


def find_field(fields: Iterable[CustomField], wanted: str) -> CustomField | None:
    """A lead field by name (case-insensitive), code or id, as the operator typed it."""
    wanted = (wanted or "").strip().casefold()
    if not wanted:
        return None
    for candidate in fields:
        if wanted in (candidate.name.strip().casefold(), (candidate.code or "").casefold(), str(candidate.id)):
            return candidate
    return None


def call_status_of(note: CallNote) -> str:
    """amoCRM ``call_status`` → Call.status. Only 4 ("talked") is surely answered."""
    status = note.call_status
    if status == CallStatus.TALKED:
        return Call.Status.ANSWERED
    if status == CallStatus.BUSY:
        return Call.Status.BUSY
    if status in (CallStatus.NOT_GOT_THROUGH, CallStatus.NOT_AVAILABLE, CallStatus.LEFT_MESSAGE):
        return Call.Status.MISSED
    # Call back later, wrong number, undefined or absent: a conversation happened if it lasted.
    return Call.Status.ANSWERED if (note.duration or 0) > 0 else Call.Status.MISSED


def field_text(lead: Lead | None, custom_field: CustomField | None) -> str:
    """A lead field's value(s) as text; enum ids are turned into their labels."""
    if lead is None or custom_field is None:
        return ""
    values = []
    for value in lead.custom_fields.get(custom_field.id) or []:
        if isinstance(value, int) and value in custom_field.enums:
            value = custom_field.enums[value]
        if value is not None and str(value).strip():
            values.append(str(value).strip())
    return ", ".join(values)


def field_minutes(lead: Lead | None, custom_field: CustomField | None) -> int | None:
    """Lead processing speed in minutes: a number field as is, a range ("5-10 мин") by its lower bound."""
    text = field_text(lead, custom_field)
    if not text:
        return None
    if custom_field is not None and custom_field.type == "numeric":
        try:
            return max(0, int(float(text.split(",")[0].replace(" ", ""))))
        except ValueError:
            return None
    return parse_processing_speed(text)


def recording_url(link: str) -> str:
    link = (link or "").strip()
    if not link.startswith(("http://", "https://")) or len(link) > RECORDING_URL_MAX:
        return ""
    return link


def call_row(event: CallEvent, note: CallNote, lead: Lead | None, reference: Reference) -> CallRow:
    try:
        phone, dropped = normalize_phone(note.phone), False
    except ValidationError:
        phone, dropped = "", True  # keep the call, drop the unusable number
    lead_id = event.entity_id if event.entity_type == "lead" else None
    if event.entity_type == "contact":
        contact_id = event.entity_id
    else:
        contact_id = lead.contact_ids[0] if lead is not None and lead.contact_ids else None
    # The note's responsible user took the call; the event's author next; the lead's owner last.
    responsible = note.responsible_user_id or (event.created_by or None) or (lead.responsible_user_id if lead else None)
    return CallRow(
        external_id=external_id(note.note_id),
        started_at=event.created_at,
        direction=Call.Direction.INBOUND if event.direction == "inbound" else Call.Direction.OUTBOUND,
        status=call_status_of(note),
        duration=max(0, note.duration or 0),
        phone=phone,
        recording_url=recording_url(note.link),
        lead_id=lead_id,
        lead_pipeline_id=lead.pipeline_id if lead is not None else None,
        contact_id=contact_id,
        responsible_user_id=responsible,
        traffic_source=field_text(lead, reference.source_field)[:TRAFFIC_SOURCE_MAX],
        lead_processing_minutes=field_minutes(lead, reference.speed_field),
        phone_dropped=dropped,
    )

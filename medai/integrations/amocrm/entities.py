"""Typed views of the amoCRM API v4 objects MedAI reads and writes.

Each ``from_api`` knows one documented wire shape (amoCRM developer docs, "API v4"); nothing else in
the project looks at raw amoCRM JSON. Unix timestamps become aware UTC datetimes here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Literal

from medai.http import ProviderResponseError

PROVIDER = "amoCRM"

# System statuses every pipeline has (docs: "Leads pipelines and statuses", common information).
STATUS_WON = 142
STATUS_LOST = 143

CallEventType = Literal["incoming_call", "outgoing_call"]
CallDirection = Literal["inbound", "outbound"]


class CallStatus(IntEnum):
    """``params.call_status`` of a call_in/call_out note (amoCRM PHP SDK ``CallInterface``)."""

    LEFT_MESSAGE = 1
    CALL_BACK_LATER = 2
    NOT_AVAILABLE = 3
    TALKED = 4  # "разговор состоялся": the only status meaning the call was answered
    WRONG_NUMBER = 5
    NOT_GOT_THROUGH = 6
    BUSY = 7
    UNDEFINED = 8


def from_unix(value: Any) -> datetime | None:
    """A Unix timestamp as an aware UTC datetime; None for null or garbage."""
    number = as_int(value)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _require_int(raw: dict[str, Any], key: str, what: str) -> int:
    number = as_int(raw.get(key)) if isinstance(raw, dict) else None
    if number is None:
        raise ProviderResponseError(f"{PROVIDER}: {what} without a numeric {key!r}")
    return number


def _custom_fields(raw: Any) -> dict[int | str, list[Any]]:
    """``custom_fields_values`` → {field_id: [value, ...]}, also keyed by ``field_code`` when set."""
    result: dict[int | str, list[Any]] = {}
    for item in raw or []:
        field_id = as_int(item.get("field_id"))
        values = [v.get("value") for v in item.get("values") or [] if isinstance(v, dict)]
        if field_id is not None:
            result[field_id] = values
        if item.get("field_code"):
            result[str(item["field_code"])] = values
    return result


def _lead_status(values: Any) -> tuple[int | None, int | None]:
    """``value_after``/``value_before`` of lead_status_changed: ``[{"lead_status": {"id", "pipeline_id"}}]``."""
    for item in values or []:
        status = item.get("lead_status") if isinstance(item, dict) else None
        if isinstance(status, dict):
            return as_int(status.get("id")), as_int(status.get("pipeline_id"))
    return None, None


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime

    @classmethod
    def from_api(cls, raw: Any, *, now: datetime | None = None) -> TokenSet:
        if not isinstance(raw, dict) or not raw.get("access_token") or not raw.get("refresh_token"):
            raise ProviderResponseError(f"{PROVIDER}: token response without access_token/refresh_token")
        expires_in = as_int(raw.get("expires_in"))
        if expires_in is None:
            raise ProviderResponseError(f"{PROVIDER}: token response without expires_in")
        issued = now or datetime.now(UTC)
        return cls(str(raw["access_token"]), str(raw["refresh_token"]), issued + timedelta(seconds=expires_in))

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) + timedelta(seconds=seconds) >= self.expires_at


@dataclass(frozen=True, slots=True)
class AmoAccount:
    id: int
    name: str
    subdomain: str
    current_user_id: int | None
    country: str

    @classmethod
    def from_api(cls, raw: Any) -> AmoAccount:
        return cls(
            id=_require_int(raw, "id", "account"),
            name=_str(raw.get("name")),
            subdomain=_str(raw.get("subdomain")),
            current_user_id=as_int(raw.get("current_user_id")),
            country=_str(raw.get("country")),
        )


@dataclass(frozen=True, slots=True)
class AmoUser:
    id: int
    name: str
    email: str

    @classmethod
    def from_api(cls, raw: Any) -> AmoUser:
        return cls(id=_require_int(raw, "id", "user"), name=_str(raw.get("name")), email=_str(raw.get("email")))


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    name: str
    pipeline_id: int
    type: int  # 1 = incoming leads ("unsorted"), 0 = regular stage

    @classmethod
    def from_api(cls, raw: Any, pipeline_id: int) -> Status:
        return cls(
            id=_require_int(raw, "id", "status"),
            name=_str(raw.get("name")),
            pipeline_id=as_int(raw.get("pipeline_id")) or pipeline_id,
            type=as_int(raw.get("type")) or 0,
        )


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: int
    name: str
    is_main: bool
    statuses: list[Status]

    @classmethod
    def from_api(cls, raw: Any) -> Pipeline:
        pipeline_id = _require_int(raw, "id", "pipeline")
        statuses = ((raw.get("_embedded") or {}).get("statuses")) or []
        return cls(
            id=pipeline_id,
            name=_str(raw.get("name")),
            is_main=bool(raw.get("is_main")),
            statuses=[Status.from_api(s, pipeline_id) for s in statuses],
        )


@dataclass(frozen=True, slots=True)
class CustomField:
    id: int
    name: str
    type: str  # "text", "select", "multiselect", "numeric", ...
    enums: dict[int, str]  # enum id → value, empty for fields without enums
    code: str | None = None

    @classmethod
    def from_api(cls, raw: Any) -> CustomField:
        enums = {}
        for enum in raw.get("enums") or []:
            enum_id = as_int(enum.get("id"))
            if enum_id is not None:
                enums[enum_id] = _str(enum.get("value"))
        return cls(
            id=_require_int(raw, "id", "custom field"),
            name=_str(raw.get("name")),
            type=_str(raw.get("type")),
            enums=enums,
            code=raw.get("code") or None,
        )


@dataclass(frozen=True, slots=True)
class CallEvent:
    event_id: str
    type: CallEventType
    created_at: datetime
    entity_type: str  # "lead" | "contact" | "company" (singular, as the Events API spells it)
    entity_id: int
    note_id: int | None  # value_after: [{"note": {"id": ...}}]
    created_by: int | None

    @property
    def direction(self) -> CallDirection:
        return "inbound" if self.type == "incoming_call" else "outbound"

    @classmethod
    def from_api(cls, raw: Any) -> CallEvent:
        event_type = raw.get("type") if isinstance(raw, dict) else None
        if event_type not in ("incoming_call", "outgoing_call"):
            raise ProviderResponseError(f"{PROVIDER}: unexpected call event type {event_type!r}")
        created_at = from_unix(raw.get("created_at"))
        if created_at is None or raw.get("id") in (None, ""):
            raise ProviderResponseError(f"{PROVIDER}: call event without id/created_at")
        note_id = None
        for item in raw.get("value_after") or []:
            note = item.get("note") if isinstance(item, dict) else None
            if isinstance(note, dict) and as_int(note.get("id")) is not None:
                note_id = as_int(note["id"])
                break
        return cls(
            event_id=str(raw["id"]),
            type=event_type,
            created_at=created_at,
            entity_type=_str(raw.get("entity_type")),
            entity_id=_require_int(raw, "entity_id", "call event"),
            note_id=note_id,
            created_by=as_int(raw.get("created_by")),
        )


@dataclass(frozen=True, slots=True)
class CallNote:
    note_id: int
    entity_type: str  # singular: "lead" | "contact" | "company"
    entity_id: int
    direction: CallDirection
    uniq: str
    duration: int | None  # seconds
    source: str
    link: str  # recording URL, "" when none
    phone: str
    call_result: str
    call_status: int | None  # see CallStatus
    responsible_user_id: int | None
    created_at: datetime | None

    @classmethod
    def from_api(cls, raw: Any, entity_type: str) -> CallNote | None:
        """None for a note that is not a call (call_in/call_out)."""
        note_type = raw.get("note_type") if isinstance(raw, dict) else None
        if note_type not in ("call_in", "call_out"):
            return None
        params = raw.get("params") or {}
        return cls(
            note_id=_require_int(raw, "id", "note"),
            entity_type=entity_type,
            entity_id=_require_int(raw, "entity_id", "note"),
            direction="inbound" if note_type == "call_in" else "outbound",
            uniq=_str(params.get("uniq")),
            duration=as_int(params.get("duration")),
            source=_str(params.get("source")),
            link=_str(params.get("link")),
            phone=_str(params.get("phone")),
            call_result=_str(params.get("call_result")),
            call_status=as_int(params.get("call_status")),
            responsible_user_id=as_int(raw.get("responsible_user_id")),
            created_at=from_unix(raw.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    name: str
    status_id: int | None
    pipeline_id: int | None
    responsible_user_id: int | None
    custom_fields: dict[int | str, list[Any]]  # field_id (and field_code) → values
    contact_ids: list[int]  # main contact first
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Lead:
        contacts = (raw.get("_embedded") or {}).get("contacts") or []
        contacts = sorted(contacts, key=lambda c: not c.get("is_main"))
        return cls(
            id=_require_int(raw, "id", "lead"),
            name=_str(raw.get("name")),
            status_id=as_int(raw.get("status_id")),
            pipeline_id=as_int(raw.get("pipeline_id")),
            responsible_user_id=as_int(raw.get("responsible_user_id")),
            custom_fields=_custom_fields(raw.get("custom_fields_values")),
            contact_ids=[cid for c in contacts if (cid := as_int(c.get("id"))) is not None],
            created_at=from_unix(raw.get("created_at")),
            updated_at=from_unix(raw.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    responsible_user_id: int | None
    phones: list[str]  # the PHONE multitext field
    custom_fields: dict[int | str, list[Any]]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Contact:
        custom_fields = _custom_fields(raw.get("custom_fields_values"))
        return cls(
            id=_require_int(raw, "id", "contact"),
            name=_str(raw.get("name")),
            responsible_user_id=as_int(raw.get("responsible_user_id")),
            phones=[str(p) for p in custom_fields.get("PHONE", []) if p],
            custom_fields=custom_fields,
            created_at=from_unix(raw.get("created_at")),
            updated_at=from_unix(raw.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class StatusChange:
    lead_id: int
    created_at: datetime
    status_id: int | None
    pipeline_id: int | None
    old_status_id: int | None
    old_pipeline_id: int | None
    event_id: str = ""
    created_by: int | None = None

    @classmethod
    def from_api(cls, raw: Any) -> StatusChange:
        created_at = from_unix(raw.get("created_at"))
        if created_at is None:
            raise ProviderResponseError(f"{PROVIDER}: status change event without created_at")
        status_id, pipeline_id = _lead_status(raw.get("value_after"))
        old_status_id, old_pipeline_id = _lead_status(raw.get("value_before"))
        return cls(
            lead_id=_require_int(raw, "entity_id", "status change event"),
            created_at=created_at,
            status_id=status_id,
            pipeline_id=pipeline_id,
            old_status_id=old_status_id,
            old_pipeline_id=old_pipeline_id,
            event_id=_str(raw.get("id")),
            created_by=as_int(raw.get("created_by")),
        )

"""amoCRM API v4: OAuth, the call-sync reads (events, call notes, leads, contacts) and note write-back.

Pure Python: callers pass credentials in and get typed dataclasses or a :class:`medai.http.HttpError`
out. Every request goes through the HTTP chokepoint with amoCRM's limit of 7 requests/s per account.
"""

from .client import AmoClient
from .entities import (
    STATUS_LOST,
    STATUS_WON,
    AmoAccount,
    AmoUser,
    CallEvent,
    CallNote,
    CallStatus,
    Contact,
    CustomField,
    Lead,
    Pipeline,
    Status,
    StatusChange,
    TokenSet,
)
from .fields import parse_processing_speed
from .oauth import AmoOAuth
from .transport import AmoAccessDenied, AmoAuthRevoked, AmoUnauthorized

__all__ = [
    "STATUS_LOST",
    "STATUS_WON",
    "AmoAccessDenied",
    "AmoAccount",
    "AmoAuthRevoked",
    "AmoClient",
    "AmoOAuth",
    "AmoUnauthorized",
    "AmoUser",
    "CallEvent",
    "CallNote",
    "CallStatus",
    "Contact",
    "CustomField",
    "Lead",
    "Pipeline",
    "Status",
    "StatusChange",
    "TokenSet",
    "parse_processing_speed",
]

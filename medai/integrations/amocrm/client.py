"""The amoCRM API v4 client: the reads the call sync needs, and one write (a note on a lead).

List endpoints answer ``{"_page", "_links": {"next"?}, "_embedded": {<key>: [...]}}`` and 204 No
Content when nothing matches. Pages are walked by incrementing ``page`` while ``_links.next`` is
present (the href itself is not followed, so the token never leaves the account's host).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from medai.http import ProviderResponseError, build_client

from .entities import (
    PROVIDER,
    AmoAccount,
    AmoUser,
    CallEvent,
    CallNote,
    Contact,
    CustomField,
    Lead,
    Pipeline,
    StatusChange,
    as_int,
)
from .transport import DEFAULT_RATE, call, normalize_base_url, read_policy, write_policy

# Documented page-size maxima: events 100, other lists 250, custom fields 50.
EVENTS_PAGE = 100
LIST_PAGE = 250
CUSTOM_FIELDS_PAGE = 50
# Ids per filter[id][] request. No maximum is documented for notes/leads/contacts; 100 keeps the URL
# short (~2.5 KB with 100 ids) and one batch always fits one page (250).
ID_BATCH = 100
# filter[entity_id] of the Events API takes at most 10 ids, with exactly one filter[entity].
EVENT_ENTITY_BATCH = 10
MAX_PAGES = 10_000

CALL_EVENT_TYPES = ("incoming_call", "outgoing_call")
NOTE_PATHS = {"lead": "leads", "contact": "contacts", "company": "companies"}


def _entity_path(entity_type: str) -> tuple[str, str]:
    """("lead" or "leads") → ("lead", "leads")."""
    for singular, plural in NOTE_PATHS.items():
        if entity_type in (singular, plural):
            return singular, plural
    raise ValueError(f"amoCRM notes exist for leads, contacts and companies, not {entity_type!r}")


def _window(created_from: datetime, created_to: datetime) -> tuple[int, int]:
    for moment in (created_from, created_to):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("pass aware datetimes; amoCRM timestamps are UTC")
    # Ask for a superset in whole seconds; the exact [from, to) cut is made client-side, so it does
    # not matter whether amoCRM treats [to] as inclusive.
    return math.floor(created_from.timestamp()), math.ceil(created_to.timestamp())


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    unique = list(dict.fromkeys(int(i) for i in ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


class AmoClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        rate_per_second: float = DEFAULT_RATE,
        http: Any = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._access_token = access_token
        self._owns_http = http is None
        self._http = http if http is not None else build_client(policy=read_policy(self.base_url, rate_per_second))
        self._write_http = (
            http if http is not None else build_client(policy=write_policy(self.base_url, rate_per_second))
        )

    def set_access_token(self, access_token: str) -> None:
        """Use a refreshed token (after :class:`AmoUnauthorized`)."""
        self._access_token = access_token

    # -- plumbing --------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        client = self._http if method == "GET" else self._write_http
        headers = {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}
        return call(client, method, self.base_url + path, headers=headers, **kwargs)

    @staticmethod
    def _embedded(payload: Any, path: str, key: str) -> list[dict[str, Any]]:
        if not isinstance(payload, dict):
            raise ProviderResponseError(f"{PROVIDER}: {path} answered {type(payload).__name__}, not an object")
        embedded = payload.get("_embedded")
        items = embedded.get(key) if isinstance(embedded, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ProviderResponseError(f"{PROVIDER}: {path} answered without _embedded.{key}")
        return items

    def _iter_pages(self, path: str, key: str, params: list[tuple[str, Any]], limit: int) -> Iterator[dict[str, Any]]:
        for page in range(1, MAX_PAGES + 1):
            payload = self._request("GET", path, params=[*params, ("limit", limit), ("page", page)])
            if payload is None:  # 204 No Content: nothing (more) matches
                return
            items = self._embedded(payload, path, key)
            yield from items
            if not items or "next" not in (payload.get("_links") or {}):
                return
        raise ProviderResponseError(f"{PROVIDER}: {path} still had a next page after {MAX_PAGES} pages")

    # -- account ---------------------------------------------------------------------------------
    def account(self) -> AmoAccount:
        payload = self._request("GET", "/api/v4/account")
        if not isinstance(payload, dict):
            raise ProviderResponseError(f"{PROVIDER}: /api/v4/account answered no account")
        return AmoAccount.from_api(payload)

    def users(self) -> list[AmoUser]:
        return [AmoUser.from_api(u) for u in self._iter_pages("/api/v4/users", "users", [], LIST_PAGE)]

    def pipelines(self) -> list[Pipeline]:
        path = "/api/v4/leads/pipelines"
        payload = self._request("GET", path)
        return [] if payload is None else [Pipeline.from_api(p) for p in self._embedded(payload, path, "pipelines")]

    def lead_custom_fields(self) -> list[CustomField]:
        fields = self._iter_pages("/api/v4/leads/custom_fields", "custom_fields", [], CUSTOM_FIELDS_PAGE)
        return [CustomField.from_api(f) for f in fields]

    # -- events ----------------------------------------------------------------------------------
    def _iter_events(
        self, types: Iterable[str], created_from: datetime, created_to: datetime, extra: list[tuple[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        start, end = _window(created_from, created_to)
        params: list[tuple[str, Any]] = [("filter[type][]", t) for t in types]
        params += [("filter[created_at][from]", start), ("filter[created_at][to]", end), *extra]
        yield from self._iter_pages("/api/v4/events", "events", params, EVENTS_PAGE)

    def iter_call_events(self, created_from: datetime, created_to: datetime) -> Iterator[CallEvent]:
        """Incoming and outgoing calls with ``created_from <= created_at < created_to``, each once."""
        seen: set[str] = set()
        for raw in self._iter_events(CALL_EVENT_TYPES, created_from, created_to, []):
            event = CallEvent.from_api(raw)
            # Pages of a live feed can shift while we walk them: drop repeats.
            if event.event_id in seen or not created_from <= event.created_at < created_to:
                continue
            seen.add(event.event_id)
            yield event

    def iter_status_changes(
        self, created_from: datetime, created_to: datetime, lead_ids: Iterable[int] | None = None
    ) -> Iterator[StatusChange]:
        """lead_status_changed events in ``[created_from, created_to)``, optionally for some leads only."""
        if lead_ids is None:
            batches: Iterable[list[tuple[str, Any]]] = [[("filter[entity][]", "lead")]]
        else:
            batches = (
                [("filter[entity][]", "lead"), *[("filter[entity_id][]", i) for i in chunk]]
                for chunk in _chunks(lead_ids, EVENT_ENTITY_BATCH)
            )
        seen: set[str] = set()
        for extra in batches:
            for raw in self._iter_events(["lead_status_changed"], created_from, created_to, extra):
                change = StatusChange.from_api(raw)
                key = change.event_id or f"{change.lead_id}:{change.created_at.timestamp()}:{change.status_id}"
                if key in seen or not created_from <= change.created_at < created_to:
                    continue
                seen.add(key)
                yield change

    # -- notes, leads, contacts by id ------------------------------------------------------------
    def notes_by_ids(self, entity_type: str, note_ids: Iterable[int]) -> dict[int, CallNote]:
        """Call notes (call_in/call_out) of one entity type, fetched ``ID_BATCH`` ids per request."""
        singular, plural = _entity_path(entity_type)
        notes: dict[int, CallNote] = {}
        for chunk in _chunks(note_ids, ID_BATCH):
            params: list[tuple[str, Any]] = [("filter[id][]", i) for i in chunk]
            params += [("filter[note_type][]", "call_in"), ("filter[note_type][]", "call_out")]
            for raw in self._iter_pages(f"/api/v4/{plural}/notes", "notes", params, LIST_PAGE):
                note = CallNote.from_api(raw, singular)
                if note is not None:
                    notes[note.note_id] = note
        return notes

    def leads_by_ids(self, ids: Iterable[int]) -> dict[int, Lead]:
        leads: dict[int, Lead] = {}
        for chunk in _chunks(ids, ID_BATCH):
            params: list[tuple[str, Any]] = [("with", "contacts"), *[("filter[id][]", i) for i in chunk]]
            for raw in self._iter_pages("/api/v4/leads", "leads", params, LIST_PAGE):
                lead = Lead.from_api(raw)
                leads[lead.id] = lead
        return leads

    def contacts_by_ids(self, ids: Iterable[int]) -> dict[int, Contact]:
        contacts: dict[int, Contact] = {}
        for chunk in _chunks(ids, ID_BATCH):
            params = [("filter[id][]", i) for i in chunk]
            for raw in self._iter_pages("/api/v4/contacts", "contacts", params, LIST_PAGE):
                contact = Contact.from_api(raw)
                contacts[contact.id] = contact
        return contacts

    # -- write-back ------------------------------------------------------------------------------
    def add_lead_note(self, lead_id: int, text: str) -> int:
        """A text ("common") note on the lead; returns the new note id."""
        body = [{"entity_id": int(lead_id), "note_type": "common", "params": {"text": text}}]
        path = "/api/v4/leads/notes"
        notes = self._embedded(self._request("POST", path, json=body), path, "notes")
        note_id = as_int(notes[0].get("id")) if notes else None
        if note_id is None:
            raise ProviderResponseError(f"{PROVIDER}: adding a note returned no note id")
        return note_id

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_http:
            self._http.close()
            self._write_http.close()

    def __enter__(self) -> AmoClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

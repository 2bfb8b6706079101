"""A fake amoCRM account speaking the documented API v4 wire format.

Populate it from a test, point :class:`medai.integrations.amocrm.AmoClient` at ``fake.url``:

    with FakeAmoCRM() as fake:
        lead = fake.add_lead(name="Иванова")
        call = fake.add_call(entity_id=lead, created_at=moment, duration=95)
        client = AmoClient(fake.url, fake.access_token)

Implements OAuth (code exchange, refresh-token rotation), account, users, pipelines (with statuses),
lead custom fields, events (call and lead_status_changed types, filters by type/created_at/entity/id),
notes by id and type, leads (``with=contacts``) and contacts by id, and POST of a lead note. Lists
paginate with page/limit under the documented maxima, answer 204 when a page is empty, and carry
``_page``, ``_links`` (``next`` while more remain) and ``_embedded``. A wrong bearer token gets a
401 problem+json. ``max_rps`` turns on amoCRM's limit: more than that many requests in a sliding
second get 429 with ``Retry-After: 1`` (counted in ``rate_limited``).
"""

from __future__ import annotations

import itertools
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from tests.fakes.base import FakeRequest, FakeServer, Response

HAL = {"Content-Type": "application/hal+json"}
EVENTS_MAX_LIMIT = 100
LIST_MAX_LIMIT = 250
CUSTOM_FIELDS_MAX_LIMIT = 50
ENTITY_ID_FILTER_MAX = 10
DEFAULT_LIMIT = 50
TOKEN_LIFETIME = 86_400
PLURAL = {"lead": "leads", "contact": "contacts", "company": "companies"}
CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
ACCESS_TOKEN = "fake-access-token"


class FakeCall(NamedTuple):
    event_id: str
    note_id: int


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail}
    return Response(status, body, {"Content-Type": "application/problem+json", **(headers or {})})


def oauth_problem(status: int, hint: str) -> Response:
    body = {
        "hint": hint,
        "title": "Некорректный запрос",
        "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
        "status": status,
        "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
    }
    return Response(status, body, {"Content-Type": "application/problem+json"})


def unix(moment: datetime | int | float | None) -> int:
    if moment is None:
        return int(time.time())
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("use aware datetimes in fakes too")
        return int(moment.timestamp())
    return int(moment)


class FakeAmoCRM(FakeServer):
    def __init__(
        self,
        *,
        subdomain: str = "clinic",
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        redirect_uri: str = "https://medai.example/amocrm/callback",
        access_token: str = ACCESS_TOKEN,
        max_rps: int | None = None,
    ) -> None:
        self.account = {"id": 30_000_001, "name": "Клиника", "subdomain": subdomain, "country": "RU"}
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.access_token = access_token
        self.max_rps = max_rps
        self.rate_limited = 0
        self.refresh_count = 0
        self.users: dict[int, dict[str, Any]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.custom_fields: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.notes: dict[str, dict[int, dict[str, Any]]] = {plural: {} for plural in PLURAL.values()}
        self.events: list[dict[str, Any]] = []
        self.added_notes: list[dict[str, Any]] = []
        self._ids = itertools.count(1_000_001)
        self._event_ids = itertools.count(1)
        self._sorted_events: list[dict[str, Any]] | None = None
        self._access_tokens = {access_token}
        self._refresh_tokens: set[str] = set()
        self._codes: set[str] = set()
        self._arrivals: deque[float] = deque()
        self._state_lock = threading.Lock()
        super().__init__()

    # -- populating ------------------------------------------------------------------------------
    def _id(self, wanted: int | None) -> int:
        return wanted if wanted is not None else next(self._ids)

    def add_user(self, name: str = "Администратор", email: str = "", *, id: int | None = None) -> int:
        user_id = self._id(id)
        self.users[user_id] = {"id": user_id, "name": name, "email": email or f"user{user_id}@clinic.example"}
        return user_id

    def add_pipeline(
        self,
        name: str = "Воронка",
        statuses: Sequence[str] = ("Первичный контакт",),
        *,
        id: int | None = None,
        is_main: bool | None = None,
    ) -> int:
        pipeline_id = self._id(id)
        main = (not self.pipelines) if is_main is None else is_main
        rows = [("Неразобранное", self._id(None), 1), *[(s, self._id(None), 0) for s in statuses]]
        rows += [("Успешно реализовано", 142, 0), ("Закрыто и не реализовано", 143, 0)]
        self.pipelines[pipeline_id] = {
            "id": pipeline_id,
            "name": name,
            "sort": len(self.pipelines) + 1,
            "is_main": main,
            "is_unsorted_on": True,
            "is_archive": False,
            "account_id": self.account["id"],
            "_embedded": {
                "statuses": [
                    {
                        "id": sid,
                        "name": sname,
                        "sort": 10 * (n + 1),
                        "is_editable": sid not in (142, 143),
                        "pipeline_id": pipeline_id,
                        "color": "#99ccff",
                        "type": stype,
                        "account_id": self.account["id"],
                    }
                    for n, (sname, sid, stype) in enumerate(rows)
                ]
            },
        }
        return pipeline_id

    def statuses_of(self, pipeline_id: int) -> dict[str, int]:
        return {s["name"]: s["id"] for s in self.pipelines[pipeline_id]["_embedded"]["statuses"]}

    def add_custom_field(
        self,
        name: str,
        *,
        type: str = "select",
        enums: Sequence[str] = (),
        code: str | None = None,
        id: int | None = None,
    ) -> int:
        field_id = self._id(id)
        self.custom_fields[field_id] = {
            "id": field_id,
            "name": name,
            "type": type,
            "code": code,
            "sort": 500,
            "entity_type": "leads",
            "is_api_only": False,
            "group_id": None,
            "required_statuses": [],
            "enums": [{"id": self._id(None), "value": v, "sort": 10 * (n + 1)} for n, v in enumerate(enums)] or None,
        }
        return field_id

    def _values(self, fields: dict[int, Any] | None) -> list[dict[str, Any]] | None:
        result = []
        for field_id, raw in (fields or {}).items():
            meta = self.custom_fields.get(field_id, {"name": f"field {field_id}", "type": "text", "code": None})
            enums = {e["value"]: e["id"] for e in meta.get("enums") or []}
            values = raw if isinstance(raw, list) else [raw]
            result.append(
                {
                    "field_id": field_id,
                    "field_name": meta["name"],
                    "field_code": meta.get("code"),
                    "field_type": meta["type"],
                    "values": [{"value": v, **({"enum_id": enums[v]} if v in enums else {})} for v in values],
                }
            )
        return result or None

    def add_contact(
        self,
        name: str = "Пациент",
        phones: Iterable[str] = (),
        *,
        responsible_user_id: int | None = None,
        created_at: datetime | int | None = None,
        id: int | None = None,
    ) -> int:
        contact_id = self._id(id)
        phone_values = [{"value": p, "enum_code": "WORK"} for p in phones]
        custom = (
            [
                {
                    "field_id": 1,
                    "field_name": "Телефон",
                    "field_code": "PHONE",
                    "field_type": "multitext",
                    "values": phone_values,
                }
            ]
            if phone_values
            else None
        )
        ts = unix(created_at)
        self.contacts[contact_id] = {
            "id": contact_id,
            "name": name,
            "responsible_user_id": responsible_user_id,
            "group_id": 0,
            "created_at": ts,
            "updated_at": ts,
            "custom_fields_values": custom,
            "account_id": self.account["id"],
        }
        return contact_id

    def add_lead(
        self,
        name: str = "Сделка",
        *,
        status_id: int | None = None,
        pipeline_id: int | None = None,
        responsible_user_id: int | None = None,
        custom_fields: dict[int, Any] | None = None,
        contact_ids: Sequence[int] = (),
        created_at: datetime | int | None = None,
        updated_at: datetime | int | None = None,
        id: int | None = None,
    ) -> int:
        lead_id = self._id(id)
        if pipeline_id is None and self.pipelines:
            pipeline_id = next((p for p, v in self.pipelines.items() if v["is_main"]), next(iter(self.pipelines)))
        if status_id is None and pipeline_id in self.pipelines:
            status_id = self.pipelines[pipeline_id]["_embedded"]["statuses"][1]["id"]
        created = unix(created_at)
        self.leads[lead_id] = {
            "id": lead_id,
            "name": name,
            "price": 0,
            "responsible_user_id": responsible_user_id,
            "group_id": 0,
            "status_id": status_id,
            "pipeline_id": pipeline_id,
            "loss_reason_id": None,
            "created_by": 0,
            "updated_by": 0,
            "created_at": created,
            "updated_at": unix(updated_at) if updated_at else created,
            "closed_at": None,
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": self._values(custom_fields),
            "score": None,
            "account_id": self.account["id"],
            "contact_ids": list(contact_ids),
        }
        return lead_id

    def _add_event(self, **event: Any) -> str:
        event_id = f"01{next(self._event_ids):024x}"
        entity_id = event["entity_id"]
        self.events.append(
            {
                "id": event_id,
                "account_id": self.account["id"],
                "value_before": [],
                "value_after": [],
                **event,
                "_links": {"self": {"href": f"/api/v4/events/{event_id}"}},
                "_embedded": {"entity": {"id": entity_id}},
            }
        )
        self._sorted_events = None
        return event_id

    def add_call(
        self,
        *,
        entity_id: int,
        created_at: datetime | int | None = None,
        direction: str = "inbound",
        entity_type: str = "lead",
        duration: int = 60,
        phone: str = "+79990000000",
        link: str | None = None,
        source: str = "telephony",
        call_status: int | None = 4,
        call_result: str = "",
        uniq: str | None = None,
        responsible_user_id: int | None = None,
        created_by: int = 0,
    ) -> FakeCall:
        """A call note on the entity plus its incoming_call/outgoing_call event."""
        note_id = self._id(None)
        ts = unix(created_at)
        uniq = uniq or f"call-{note_id}"
        params: dict[str, Any] = {
            "uniq": uniq,
            "duration": duration,
            "source": source,
            "phone": phone,
            "link": f"https://records.example/{uniq}.mp3" if link is None else link,
            "call_result": call_result,
        }
        if call_status is not None:
            params["call_status"] = call_status
        self.notes[PLURAL[entity_type]][note_id] = {
            "id": note_id,
            "entity_id": entity_id,
            "created_by": created_by,
            "updated_by": created_by,
            "created_at": ts,
            "updated_at": ts,
            "responsible_user_id": responsible_user_id,
            "group_id": 0,
            "note_type": "call_in" if direction == "inbound" else "call_out",
            "params": params,
            "account_id": self.account["id"],
        }
        event_id = self._add_event(
            type="incoming_call" if direction == "inbound" else "outgoing_call",
            entity_type=entity_type,
            entity_id=entity_id,
            created_by=created_by,
            created_at=ts,
            value_after=[{"note": {"id": note_id}}],
        )
        return FakeCall(event_id, note_id)

    def add_status_change(
        self,
        *,
        lead_id: int,
        status_id: int,
        pipeline_id: int,
        old_status_id: int | None = None,
        old_pipeline_id: int | None = None,
        created_at: datetime | int | None = None,
        created_by: int = 0,
    ) -> str:
        lead = self.leads.get(lead_id)
        if lead is not None:
            old_status_id = lead["status_id"] if old_status_id is None else old_status_id
            old_pipeline_id = lead["pipeline_id"] if old_pipeline_id is None else old_pipeline_id
            lead.update(status_id=status_id, pipeline_id=pipeline_id)
        before = (
            [] if old_status_id is None else [{"lead_status": {"id": old_status_id, "pipeline_id": old_pipeline_id}}]
        )
        return self._add_event(
            type="lead_status_changed",
            entity_type="lead",
            entity_id=lead_id,
            created_by=created_by,
            created_at=unix(created_at),
            value_before=before,
            value_after=[{"lead_status": {"id": status_id, "pipeline_id": pipeline_id}}],
        )

    def _dispatch(self, handler: Any) -> None:
        # The base server writes headers and body separately; with Nagle's algorithm on, the body
        # waits for the client's delayed ACK (~40 ms a response). Paging 5,000 events needs speed.
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._dispatch(handler)

    # -- OAuth helpers for tests -----------------------------------------------------------------
    def issue_code(self) -> str:
        code = f"code-{secrets.token_hex(8)}"
        self._codes.add(code)
        return code

    def revoke_access_tokens(self) -> None:
        with self._state_lock:
            self._access_tokens.clear()

    def _issue_tokens(self) -> dict[str, Any]:
        access, refresh = f"access-{secrets.token_hex(12)}", f"refresh-{secrets.token_hex(12)}"
        self._access_tokens.add(access)
        self._refresh_tokens.add(refresh)
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "access_token": access,
            "refresh_token": refresh,
            "server_time": int(time.time()),
        }

    # -- routes ----------------------------------------------------------------------------------
    def setup_routes(self) -> None:
        self.route("POST", "/oauth2/access_token", self._limited(self._token))
        api = [
            ("GET", "/api/v4/account", self._account),
            ("GET", "/api/v4/users", self._users),
            ("GET", "/api/v4/leads/pipelines", self._pipelines),
            ("GET", "/api/v4/leads/custom_fields", self._custom_fields),
            ("GET", "/api/v4/events", self._events),
            ("GET", "/api/v4/leads", self._leads),
            ("GET", "/api/v4/contacts", self._contacts),
            ("POST", "/api/v4/leads/notes", self._add_notes),
            ("GET", "/api/v4/{entity_type}/notes", self._notes),
        ]
        for method, path, handler in api:
            self.route(method, path, self._limited(self._authorized(handler)))

    def _limited(self, handler: Any) -> Any:
        def wrapped(request: FakeRequest) -> Any:
            if self.max_rps:
                now = time.monotonic()
                with self._state_lock:
                    while self._arrivals and self._arrivals[0] <= now - 1.0:
                        self._arrivals.popleft()
                    if len(self._arrivals) >= self.max_rps:
                        self.rate_limited += 1
                        return problem(429, "Too Many Requests", "Rate limit exceeded", {"Retry-After": "1"})
                    self._arrivals.append(now)
            return handler(request)

        return wrapped

    def _authorized(self, handler: Any) -> Any:
        def wrapped(request: FakeRequest) -> Any:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or token not in self._access_tokens:
                return problem(401, "Unauthorized", "Неверный логин или пароль")
            return handler(request)

        return wrapped

    def _token(self, request: FakeRequest) -> Any:
        content_type = request.headers.get("content-type", "")
        body = request.json() if content_type.startswith("application/json") else request.form()[0]
        if not isinstance(body, dict):
            return oauth_problem(400, "Check the request body")
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return oauth_problem(401, "Client authentication failed")
        if body.get("redirect_uri") != self.redirect_uri:
            return oauth_problem(400, "Check the `redirect_uri` parameter")
        with self._state_lock:
            grant = body.get("grant_type")
            if grant == "authorization_code":
                if body.get("code") not in self._codes:
                    return oauth_problem(400, "Authorization code has been revoked")
                self._codes.discard(body["code"])
            elif grant == "refresh_token":
                if body.get("refresh_token") not in self._refresh_tokens:
                    return oauth_problem(400, "Token has been revoked")
                self._refresh_tokens.discard(body["refresh_token"])  # rotation: one use only
                self.refresh_count += 1
            else:
                return oauth_problem(400, "The authorization grant type is not supported")
            return self._issue_tokens()

    # -- query helpers ---------------------------------------------------------------------------
    @staticmethod
    def _multi(query: dict[str, list[str]], name: str) -> list[str]:
        """Values of ``name``, ``name[]`` and ``name[N]``; comma-separated values are split."""
        indexed = re.compile(re.escape(name) + r"\[\d*\]$")
        values: list[str] = []
        for key, raw in query.items():
            if key == name or indexed.match(key):
                values += [part for item in raw for part in item.split(",") if part]
        return values

    def _ints(self, query: dict[str, list[str]], name: str) -> set[int]:
        return {int(v) for v in self._multi(query, name)}

    def _page(self, request: FakeRequest, key: str, items: list[dict[str, Any]], max_limit: int) -> Response:
        try:
            limit = int(request.query.get("limit", [DEFAULT_LIMIT])[-1])
            page = int(request.query.get("page", ["1"])[-1])
        except ValueError:
            return problem(400, "Bad Request", "limit and page must be integers")
        if not 1 <= limit <= max_limit or page < 1:
            return problem(400, "Bad Request", f"limit must be within 1..{max_limit}, page >= 1")
        chunk = items[(page - 1) * limit : page * limit]
        if not chunk:
            return Response(204)
        links = {"self": {"href": self._href(request, page)}}
        if page * limit < len(items):
            links["next"] = {"href": self._href(request, page + 1)}
        return Response(200, {"_page": page, "_links": links, "_embedded": {key: chunk}}, HAL)

    def _href(self, request: FakeRequest, page: int) -> str:
        query = {k: v for k, v in request.query.items() if k != "page"}
        return f"{self.url}{request.path}?{urlencode({**query, 'page': [str(page)]}, doseq=True)}"

    # -- handlers --------------------------------------------------------------------------------
    def _account(self, request: FakeRequest) -> Any:
        first_user = next(iter(self.users), None)
        return Response(
            200,
            {
                **self.account,
                "current_user_id": first_user,
                "currency": "RUB",
                "created_at": 1_577_836_800,
                "_links": {"self": {"href": f"{self.url}/api/v4/account"}},
            },
            HAL,
        )

    def _users(self, request: FakeRequest) -> Any:
        return self._page(request, "users", list(self.users.values()), LIST_MAX_LIMIT)

    def _pipelines(self, request: FakeRequest) -> Any:
        pipelines = list(self.pipelines.values())
        if not pipelines:
            return Response(204)
        return Response(
            200,
            {
                "_total_items": len(pipelines),
                "_links": {"self": {"href": self._href(request, 1)}},
                "_embedded": {"pipelines": pipelines},
            },
            HAL,
        )

    def _custom_fields(self, request: FakeRequest) -> Any:
        return self._page(request, "custom_fields", list(self.custom_fields.values()), CUSTOM_FIELDS_MAX_LIMIT)

    def _events(self, request: FakeRequest) -> Any:
        query = request.query
        types = set(self._multi(query, "filter[type]"))
        entities = set(self._multi(query, "filter[entity]"))
        entity_ids = self._ints(query, "filter[entity_id]")
        ids = set(self._multi(query, "filter[id]"))
        if entity_ids and len(entities) != 1:
            return problem(400, "Bad Request", "filter[entity_id] needs exactly one filter[entity]")
        if len(entity_ids) > ENTITY_ID_FILTER_MAX:
            return problem(400, "Bad Request", f"filter[entity_id] takes at most {ENTITY_ID_FILTER_MAX} ids")
        start = int(query.get("filter[created_at][from]", ["0"])[-1])
        end = int(query.get("filter[created_at][to]", [str(2**40)])[-1])
        if self._sorted_events is None:  # newest first, like amoCRM
            self._sorted_events = sorted(self.events, key=lambda e: (e["created_at"], e["id"]), reverse=True)
        matching = [
            e
            for e in self._sorted_events
            if start <= e["created_at"] <= end
            and (not types or e["type"] in types)
            and (not entities or e["entity_type"] in entities)
            and (not entity_ids or e["entity_id"] in entity_ids)
            and (not ids or e["id"] in ids)
        ]
        return self._page(request, "events", matching, EVENTS_MAX_LIMIT)

    def _lead_json(self, lead: dict[str, Any], with_contacts: bool) -> dict[str, Any]:
        data = {k: v for k, v in lead.items() if k != "contact_ids"}
        embedded: dict[str, Any] = {"tags": [], "companies": []}
        if with_contacts:
            embedded["contacts"] = [
                {"id": cid, "is_main": n == 0, "_links": {"self": {"href": f"/api/v4/contacts/{cid}"}}}
                for n, cid in enumerate(lead["contact_ids"])
            ]
        return {**data, "_links": {"self": {"href": f"/api/v4/leads/{lead['id']}"}}, "_embedded": embedded}

    def _leads(self, request: FakeRequest) -> Any:
        ids = self._ints(request.query, "filter[id]")
        with_contacts = "contacts" in self._multi(request.query, "with")
        leads = [
            self._lead_json(lead, with_contacts)
            for lead_id, lead in sorted(self.leads.items())
            if not ids or lead_id in ids
        ]
        return self._page(request, "leads", leads, LIST_MAX_LIMIT)

    def _contacts(self, request: FakeRequest) -> Any:
        ids = self._ints(request.query, "filter[id]")
        contacts = [c for cid, c in sorted(self.contacts.items()) if not ids or cid in ids]
        return self._page(request, "contacts", contacts, LIST_MAX_LIMIT)

    def _notes(self, request: FakeRequest) -> Any:
        store = self.notes.get(request.params["entity_type"])
        if store is None:
            return problem(404, "Not Found", "unknown entity type")
        ids = self._ints(request.query, "filter[id]")
        types = set(self._multi(request.query, "filter[note_type]"))
        source = (store[i] for i in sorted(ids) if i in store) if ids else (store[i] for i in sorted(store))
        notes = [n for n in source if not types or n["note_type"] in types]
        return self._page(request, "notes", notes, LIST_MAX_LIMIT)

    def _add_notes(self, request: FakeRequest) -> Any:
        body = request.json()
        if not isinstance(body, list) or not body:
            return problem(400, "Bad Request", "expected a non-empty array of notes")
        created = []
        for n, item in enumerate(body):
            lead_id = item.get("entity_id") if isinstance(item, dict) else None
            text = (item.get("params") or {}).get("text") if isinstance(item, dict) else None
            if lead_id not in self.leads or item.get("note_type") != "common" or not text:
                return problem(400, "Bad Request", f"note {n}: needs an existing entity_id, note_type common, text")
            note_id = self._id(None)
            ts = int(time.time())
            note = {
                "id": note_id,
                "entity_id": lead_id,
                "created_by": 0,
                "updated_by": 0,
                "created_at": ts,
                "updated_at": ts,
                "responsible_user_id": None,
                "group_id": 0,
                "note_type": "common",
                "params": {"text": text},
                "account_id": self.account["id"],
            }
            self.notes["leads"][note_id] = note
            self.added_notes.append(note)
            created.append(
                {
                    "id": note_id,
                    "entity_id": lead_id,
                    "request_id": str(item.get("request_id", n)),
                    "_links": {"self": {"href": f"/api/v4/leads/{lead_id}/notes/{note_id}"}},
                }
            )
        return Response(
            200, {"_links": {"self": {"href": f"{self.url}/api/v4/leads/notes"}}, "_embedded": {"notes": created}}, HAL
        )

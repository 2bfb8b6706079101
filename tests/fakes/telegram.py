"""A fake Telegram Bot API server speaking the documented wire format.

Requests go to ``/bot<token>/<method>`` (JSON, urlencoded or multipart bodies, as
python-telegram-bot sends them); every answer is ``{"ok": true, "result": …}`` or
``{"ok": false, "error_code": N, "description": "…", "parameters": {…}}``. A wrong token gets
401 Unauthorized, an unknown method 404 Not Found — as the real API does.

Implemented: getMe, getUpdates (offset confirms, a short long-poll), sendMessage, sendDocument
(multipart), answerCallbackQuery, editMessageText, setWebhook (HTTPS url, secret_token checked),
deleteWebhook, getWebhookInfo. Faults:

    fake.flood("sendMessage", retry_after=1)         # 429 with parameters.retry_after
    fake.block(chat_id)                                # 403 "Forbidden: bot was blocked by the user"
    fake.fail_next("POST", fake.path("sendMessage"), status=500)   # any FakeServer fault

Updates for polling are queued with :meth:`push_message` / :meth:`push_callback`; the same
builders (:func:`message_update`, :func:`callback_update`) serve webhook tests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from typing import Any

from tests.fakes.base import FakeRequest, FakeServer, Response

TOKEN = "1234567:fake-token-for-tests-only-0000000000"  # shaped like a token, obviously fake
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "MedAI",
    "username": "medai_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_STRING_FIELDS = {"text", "caption", "callback_query_id", "url", "secret_token", "parse_mode", "inline_message_id"}
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ids = itertools.count(1000)


def _now() -> int:
    return int(time.time())


def user(user_id: int = 555, language_code: str | None = "ru", first_name: str = "Ирина") -> dict[str, Any]:
    data = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        data["language_code"] = language_code
    return data


def chat(chat_id: int, chat_type: str = "private", title: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        data["first_name"] = "Ирина"
    else:
        data["title"] = title or "Clinic managers"
    return data


def message_update(
    chat_id: int,
    text: str,
    *,
    update_id: int | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    chat_type: str = "private",
) -> dict[str, Any]:
    """An Update with a text Message; a leading ``/command`` gets its bot_command entity."""
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": _now(),
        "chat": chat(chat_id, chat_type),
        "from": user(user_id or (chat_id if chat_id > 0 else 555), language_code),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id if update_id is not None else next(_ids), "message": message}


def callback_update(
    chat_id: int,
    data: str,
    *,
    message_id: int = 1,
    message_text: str = "…",
    update_id: int | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
) -> dict[str, Any]:
    """An Update with a CallbackQuery from an inline button on message ``message_id``."""
    return {
        "update_id": update_id if update_id is not None else next(_ids),
        "callback_query": {
            "id": str(next(_ids)),
            "from": user(user_id or (chat_id if chat_id > 0 else 555), language_code),
            "chat_instance": f"ci-{chat_id}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": _now(),
                "chat": chat(chat_id),
                "from": BOT_USER,
                "text": message_text,
            },
        },
    }


class FakeTelegram(FakeServer):
    token = TOKEN
    max_poll_wait = 0.3  # getUpdates long-poll cap, seconds (tests stay fast)

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # every message/document the bot delivered, in order
        self.answered: list[dict[str, Any]] = []
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._new_update = threading.Condition()
        super().__init__()

    # -- helpers for tests --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def path(self, method: str) -> str:
        return f"/bot{self.token}/{method}"

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        with self._new_update:
            self.updates.append(update)
            self._new_update.notify_all()
        return update

    def push_message(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.push(message_update(chat_id, text, **kwargs))

    def push_callback(self, chat_id: int, data: str, **kwargs: Any) -> dict[str, Any]:
        return self.push(callback_update(chat_id, data, **kwargs))

    def block(self, chat_id: int) -> None:
        self.blocked.add(chat_id)

    def flood(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        self.fail_next(
            "POST",
            self.path(method),
            times=times,
            status=429,
            body=_error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after),
        )

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [m["text"] for m in self.sent if "text" in m and (chat_id is None or m["chat_id"] == chat_id)]

    def documents(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [m for m in self.sent if "document" in m and (chat_id is None or m["chat_id"] == chat_id)]

    # -- routing -------------------------------------------------------------------------------
    def setup_routes(self) -> None:
        self.route("POST", "/bot{token}/{method}", self.dispatch)
        self.route("GET", "/bot{token}/{method}", self.dispatch)

    def dispatch(self, request: FakeRequest) -> Response:
        if request.params["token"] != self.token:
            return Response(401, _error(401, "Unauthorized"))
        handler = getattr(self, f"api_{request.params['method']}", None)
        if handler is None:
            return Response(404, _error(404, "Not Found"))
        params, files = _params(request)
        try:
            result = handler(params, files)
        except ApiError as exc:
            return Response(exc.code, _error(exc.code, exc.description))
        return Response(200, {"ok": True, "result": result})

    # -- methods -------------------------------------------------------------------------------
    def api_getMe(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        return BOT_USER

    def api_getUpdates(self, params: dict[str, Any], files: dict) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        deadline = time.monotonic() + wait
        with self._new_update:
            if offset:
                # An offset confirms every update before it: they are never returned again.
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self._new_update.wait(max(0.0, deadline - time.monotonic()))
            return list(self.updates[:limit])

    def _chat_message(self, chat_id: Any, extra: dict[str, Any]) -> dict[str, Any]:
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat_id = int(chat_id)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        message = {"message_id": next(_ids), "date": _now(), "chat": chat(chat_id), "from": BOT_USER, **extra}
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def api_sendMessage(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        extra: dict[str, Any] = {"text": text}
        if params.get("reply_markup"):
            extra["reply_markup"] = params["reply_markup"]
        message = self._chat_message(params.get("chat_id"), extra)
        self.sent.append({"chat_id": message["chat"]["id"], "text": text, "reply_markup": params.get("reply_markup")})
        return message

    def api_sendDocument(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        document = files.get("document")
        reference = params.get("document")
        if document is None and isinstance(reference, str) and reference.startswith("attach://"):
            document = files.get(reference.removeprefix("attach://"))
        if document is None:
            raise ApiError(400, "Bad Request: there is no document in the request")
        filename, content = document
        if not content:
            raise ApiError(400, "Bad Request: file must be non-empty")
        caption = params.get("caption") or ""
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        file_info = {
            "file_id": f"file-{next(_ids)}",
            "file_unique_id": f"u{next(_ids)}",
            "file_name": filename,
            "file_size": len(content),
        }
        message = self._chat_message(params.get("chat_id"), {"document": file_info, "caption": caption})
        self.sent.append(
            {"chat_id": message["chat"]["id"], "document": filename, "content": content, "caption": caption}
        )
        return message

    def api_answerCallbackQuery(self, params: dict[str, Any], files: dict) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query_id is empty")
        self.answered.append(params)
        return True

    def api_editMessageText(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        chat_id = int(params.get("chat_id") or 0)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        key = (chat_id, int(params.get("message_id") or 0))
        # Messages from updates pushed by tests are not in self.messages: accept them too.
        message = {
            "message_id": key[1], "date": _now(), "chat": chat(chat_id), "from": BOT_USER, "text": "",
            **self.messages.get(key, {}),
        }
        if message.get("text") == text and message.get("reply_markup") == params.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        message = {**message, "text": text, "edit_date": _now()}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[key] = message
        self.sent.append({"chat_id": chat_id, "text": text, "edited": key[1], "reply_markup": params.get("reply_markup")})
        return message

    def api_setWebhook(self, params: dict[str, Any], files: dict) -> bool:
        url = params.get("url") or ""
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = {k: v for k, v in params.items() if v is not None} if url else {}
        return True

    def api_deleteWebhook(self, params: dict[str, Any], files: dict) -> bool:
        if params.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = {}
        return True

    def api_getWebhookInfo(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
            "max_connections": 40,
            "allowed_updates": self.webhook.get("allowed_updates") or [],
        }


class ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _error(code: int, description: str, *, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _params(request: FakeRequest) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """Parameters from the query string, a JSON body or a form (values JSON-encoded, as PTB sends)."""
    params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
    content_type = request.headers.get("content-type", "")
    files: dict[str, tuple[str, bytes]] = {}
    if content_type.startswith("application/json"):
        params.update(request.json() or {})
        return params, files
    if request.body:
        fields, files = request.form()
        params.update(fields)
    for key, value in list(params.items()):
        if key in _STRING_FIELDS or not isinstance(value, str):
            continue
        with contextlib.suppress(ValueError):
            params[key] = json.loads(value)
    return params, files

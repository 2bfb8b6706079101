"""Outbound AI calls against the fake Voximplant (127.0.0.1): settings, signed requests, helpers."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest

from medai.integrations.voximplant_webhook import result_to_json, signed_headers
from tests.fakes.voximplant import FakeVoximplant

SECRET = "0f3c9a5e7b1d4c2a8e6f0b9d3c5a7e1f"
RULE = 3003
CALLER_ID = "+74950000000"
PHONE = "+79990001122"


@pytest.fixture(autouse=True)
def _english(settings):
    """Messages are asserted in the code's language; the Russian catalogue is tests/test_i18n.py's business."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def vox():
    with FakeVoximplant(rules=(RULE,)) as fake:
        fake.webhook_secret = SECRET.encode()
        yield fake


@pytest.fixture
def vox_settings(settings, vox):
    settings.VOXIMPLANT_ACCOUNT_ID = str(vox.account_id)
    settings.VOXIMPLANT_API_KEY = vox.api_key
    settings.VOXIMPLANT_SERVICE_ACCOUNT_FILE = ""
    settings.VOXIMPLANT_RULE_ID = RULE
    settings.VOXIMPLANT_WEBHOOK_SECRETS = [SECRET]
    settings.VOXIMPLANT_CALLER_ID = CALLER_ID
    settings.VOXIMPLANT_BASE_URL = vox.api_url
    settings.PUBLIC_BASE_URL = "http://testserver"
    settings.HTTP_TIMEOUT = 2.0
    settings.HTTP_RETRIES = 0
    return settings


@pytest.fixture
def enqueued(monkeypatch):
    """Tasks queued by the outbound package (after commit), recorded instead of sent to django-q."""
    sent: list[tuple] = []
    monkeypatch.setattr("calls.outbound.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, *args)))
    return sent


def sign(body: bytes, *, secret: str = SECRET, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    return signed_headers(
        secret.encode(), body, timestamp=int(timestamp if timestamp is not None else time.time()), nonce=nonce or secrets.token_hex(16)
    )


def scenario_get(client, token: str, **kwargs):
    path = f"/api/outbound/scenario/{token}/"
    return client.get(path, headers=sign(path.encode(), **kwargs))


def scenario_turn(client, token: str, text: str, transcript: list | None = None, **kwargs):
    body = json.dumps({"text": text, "transcript": transcript or []}, ensure_ascii=True).encode()
    return client.post(f"/api/outbound/scenario/{token}/turn/", data=body, content_type="application/json", headers=sign(body, **kwargs))


def post_result(client, body: bytes, **kwargs):
    return client.post("/api/outbound/webhook/", data=body, content_type="application/json", headers=sign(body, **kwargs))


def deliver(client, vox: FakeVoximplant, session, **kwargs):
    """Play the scenario's last step for a fake session through the Django test client."""
    response = post_result(client, result_to_json(vox.result_for(session)), **kwargs)
    session.delivered = 200 <= response.status_code < 300
    return response


@pytest.fixture
def web_server(transactional_db):
    """MedAI served over real HTTP on 127.0.0.1 (pytest-django's live_server trips over MEDIA_URL=None)."""
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    from django.db import connections

    connection = connections["default"]
    # An in-memory SQLite test database exists on one connection only: share it, as Django's
    # LiveServerThread does (PostgreSQL: each request thread opens its own).
    shared = connection.vendor == "sqlite" and connection.is_in_memory_db()
    if shared:
        connection.inc_thread_sharing()
    server = ThreadedWSGIServer(
        ("127.0.0.1", 0), QuietHandler, allow_reuse_address=True, connections_override={"default": connection} if shared else None
    )
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    if shared:
        connection.dec_thread_sharing()

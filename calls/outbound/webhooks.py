"""The HTTP contract of ``calls/voxengine/outbound_scenario.js`` (see calls/voxengine/README.md).

* ``GET  /api/outbound/scenario/<token>/``       → the call's settings (the call becomes "ringing");
* ``POST /api/outbound/scenario/<token>/turn/``  → the AI's reply (the call becomes "in progress");
* ``POST /api/outbound/webhook/``                → the final result, idempotent by call token.

Every request is signed (HMAC-SHA256 over timestamp, nonce and the body — or the path of a GET) and
verified before anything else is done; a nonce is accepted once (stored with an expiry). The secret is
the clinic's own (its Voximplant account in the admin) and/or ``VOXIMPLANT_WEBHOOK_SECRET``; with no
secret at all the endpoints do not exist (404) — they never run open.

Answers: 401 for a bad, stale or replayed signature (the scenario does not retry 4xx); 404 for an
unknown or finished token on the settings/turn endpoints; 400 for a result that does not follow the
contract (the reconciler then reads the outcome from the call history); 200 for a duplicate result or
a well-signed result for a token we do not know (acknowledged, logged, nothing else).
"""

from __future__ import annotations

import json
import logging
import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from calls.models import OutboundCall
from calls.outbound import services
from calls.outbound.accounts import account_for, deployment_secrets
from medai.integrations.voximplant_webhook import MAX_BODY_BYTES, InvalidSignature, parse_result, verify

logger = logging.getLogger("medai.outbound")

MAX_TURN_TEXT = 2000
MAX_TURN_SEGMENTS = 500


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _secrets_for(call: OutboundCall | None) -> tuple[bytes, ...]:
    return account_for(call.clinic).webhook_secrets if call is not None else deployment_secrets()


def _check(request: HttpRequest, content: bytes, call: OutboundCall | None) -> JsonResponse | None:
    """None when the request is a fresh, authentic request from our scenario; else the error answer."""
    secrets = _secrets_for(call)
    if not secrets:
        return _error(404, "not_found", "Not found.")
    try:
        verify(list(secrets), request.headers, content, now=time.time(), seen=services.nonce_seen)
    except InvalidSignature as exc:
        logger.warning("outbound scenario request refused: %s", exc.reason)
        return _error(401, "invalid_signature", exc.reason)
    return None


def _body(request: HttpRequest) -> bytes | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return None if length > MAX_BODY_BYTES else request.body


def _call_by_token(token: str) -> OutboundCall | None:
    return OutboundCall.objects.select_related("clinic").filter(token=token[:64]).first()


@csrf_exempt
@require_GET
def scenario_settings(request: HttpRequest, token: str) -> HttpResponse:
    # For a GET the signed content is the path, so a signature cannot be replayed for another token.
    problem = _check(request, request.path_info.encode(), _call_by_token(token))
    if problem is not None:
        return problem
    call = services.scenario_call(token)
    if call is None:
        return _error(404, "not_found", "Unknown, finished or expired call token.")
    return JsonResponse(services.outbound_call_settings(call))


@csrf_exempt
@require_POST
def scenario_turn(request: HttpRequest, token: str) -> HttpResponse:
    body = _body(request)
    if body is None:
        return _error(413, "too_large", "Request body too large.")
    problem = _check(request, body, _call_by_token(token))
    if problem is not None:
        return problem
    call = services.scenario_call(token)
    if call is None:
        return _error(404, "not_found", "Unknown, finished or expired call token.")
    try:
        data = json.loads(body)
        text = data["text"]
        transcript = data.get("transcript") or []
        if not isinstance(text, str) or not isinstance(transcript, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _error(400, "invalid", 'Expected {"text": "...", "transcript": [...]}.')
    segments = [s for s in transcript[-MAX_TURN_SEGMENTS:] if isinstance(s, dict)]
    return JsonResponse(services.outbound_call_turn(call, text=text.strip()[:MAX_TURN_TEXT], transcript=segments))


@csrf_exempt
@require_POST
def result_webhook(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    if body is None:
        return _error(413, "too_large", "Request body too large.")
    try:  # only to pick the clinic's secret; nothing is trusted before the signature is checked
        token = json.loads(body).get("call_token")
    except (ValueError, AttributeError):
        token = None
    call = _call_by_token(token) if isinstance(token, str) and token else None
    problem = _check(request, body, call)
    if problem is not None:
        return problem
    try:
        result = parse_result(body)
    except ValueError as exc:
        logger.warning("outbound result refused: %s", exc)
        return _error(400, "invalid", str(exc)[:300])
    outcome = services.outbound_webhook_result(result)
    if outcome == "unknown":
        logger.warning("outbound result for an unknown call token acknowledged and ignored")
    return JsonResponse({"ok": True, "result": outcome})

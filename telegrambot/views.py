"""The Telegram webhook: verify the secret header, parse strictly, enqueue, answer 200 fast.

Telegram retries a delivery that gets an error, for a long time: anything that is *ours* to
ignore (unknown update kinds, malformed bodies once the secret matched) is acknowledged with 200.
A wrong or missing secret gets 403 and nothing else; with no secret configured the endpoint does
not exist (404) — it never runs open.
"""

from __future__ import annotations

import hmac
import logging

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telegrambot import conf
from telegrambot.updates import MAX_BODY_BYTES, parse_payload

logger = logging.getLogger("medai.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    secret = conf.webhook_secret()
    if not secret or not conf.bot_enabled():
        return HttpResponseNotFound()
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        logger.warning("Telegram webhook: wrong or missing secret token")
        return HttpResponseForbidden()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        logger.warning("Telegram webhook: body of %d bytes ignored", length)
        return HttpResponse(status=200)
    status, data = parse_payload(request.body)
    if status != "ok" or data is None:
        if status == "invalid":
            logger.warning("Telegram webhook: malformed update acknowledged and ignored")
        return HttpResponse(status=200)
    from django_q.tasks import async_task

    # If the broker is down this raises: Telegram gets a 500 and delivers the update again later.
    async_task("telegrambot.tasks.process_update", data, group="telegram", task_name=f"telegram-update-{data['update_id']}")
    return HttpResponse(status=200)

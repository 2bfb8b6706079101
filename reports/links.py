"""Signed, expiring links to one call (its transcript page and its audio) for reports and BI rows.

A report or a BI row is read days after it was made, so these links live longer than the one-hour
file links of :mod:`medai.signing` (``REPORT_LINK_MAX_AGE``, 30 days by default). They have their
own salt, so a short-lived file token is never accepted here and vice versa. The token holds only
the call id and a timestamp — no phone number or name ever appears in the URL.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

_SALT = "medai.reports.call-link"
_PLACEHOLDER = "TOKEN"


def link_max_age() -> int:
    return int(settings.REPORT_LINK_MAX_AGE)


class CallLinkSigner(signing.TimestampSigner):
    """Django's TimestampSigner with the HMAC key derived once per key instead of once per token.

    Signing is the hot loop when a roll-up rebuild writes links for a million calls; the tokens
    are byte-for-byte those of the parent class, which still verifies them.
    """

    def __init__(self) -> None:
        super().__init__(salt=_SALT)
        self._keyed: dict[str, hmac.HMAC] = {}

    def signature(self, value, key=None) -> str:
        key = key or self.key
        keyed = self._keyed.get(key)
        if keyed is None:
            # django.utils.crypto.salted_hmac: the HMAC key is sha256(salt + "signer" + secret).
            derived = hashlib.sha256((self.salt + "signer").encode() + signing.force_bytes(key)).digest()
            keyed = self._keyed[key] = hmac.new(derived, digestmod=hashlib.sha256)
        mac = keyed.copy()
        mac.update(signing.force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=1)
def _url_parts() -> tuple[str, str, str]:
    page = reverse("reports-call-link", kwargs={"token": _PLACEHOLDER})
    audio = reverse("reports-call-audio", kwargs={"token": _PLACEHOLDER})
    prefix, page_suffix = page.split(_PLACEHOLDER)
    audio_suffix = audio.split(_PLACEHOLDER)[1]
    return prefix, page_suffix, audio_suffix


class CallLinks:
    """Builds (page URL, audio URL) pairs; one instance per batch shares the signer."""

    def __init__(self, *, absolute: bool = True) -> None:
        self.signer = CallLinkSigner()
        base = settings.PUBLIC_BASE_URL if absolute else ""
        prefix, self._page_suffix, self._audio_suffix = _url_parts()
        self._prefix = base + prefix
        self.expires_at: datetime = timezone.now() + timedelta(seconds=link_max_age())

    def for_call(self, call_id: int, *, has_recording: bool) -> tuple[str, str]:
        stem = self._prefix + self.signer.sign(str(call_id))
        return stem + self._page_suffix, (stem + self._audio_suffix) if has_recording else ""


def read_call_token(token: str) -> int:
    """The call id of a valid, unexpired token; raises ``signing.BadSignature`` otherwise."""
    value = CallLinkSigner().unsign(token, max_age=link_max_age())
    return int(value)


def _call_or_error(token: str):
    from calls.models import Call

    try:
        call_id = read_call_token(token)
    except signing.SignatureExpired:
        return None, JsonResponse({"error": {"code": "link_expired", "message": _("This link has expired.")}}, status=410)
    except (signing.BadSignature, ValueError) as exc:
        raise Http404 from exc
    call = Call.objects.select_related("clinic", "administrator").filter(pk=call_id).first()
    if call is None:
        raise Http404
    return call, None


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_GET
def call_page(request: HttpRequest, token: str) -> HttpResponse:
    """The call's transcript, analysis and audio player behind a signed link (no login needed)."""
    from calls.admin import render_dialogue
    from calls.models import Recording, Transcript

    call, error = _call_or_error(token)
    if error is not None:
        return error
    transcript = Transcript.objects.filter(call=call).first()
    analysis = getattr(call, "analysis", None) if hasattr(call, "analysis") else None
    has_audio = Recording.objects.filter(call=call).exclude(file="").exists()
    context = {
        "call": call,
        "analysis": analysis,
        "dialogue": render_dialogue(transcript),
        "audio_url": reverse("reports-call-audio", kwargs={"token": token}) if has_audio else "",
    }
    return _private(render(request, "reports/call_link.html", context))


@require_GET
def call_audio(request: HttpRequest, token: str) -> HttpResponse:
    from calls.models import Recording

    call, error = _call_or_error(token)
    if error is not None:
        return error
    recording = Recording.objects.filter(call=call).exclude(file="").first()
    if recording is None:
        raise Http404
    response = FileResponse(recording.file.open("rb"), content_type=recording.mime or "application/octet-stream")
    return _private(response)

"""Signed, expiring links for files (recordings, reports) that can be opened without a login."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "medai.files"


def make_file_token(kind: str, object_id: int) -> str:
    return signing.TimestampSigner(salt=_SALT).sign_object({"k": kind, "id": object_id}, compress=True)


def read_file_token(token: str, *, kind: str, max_age: int | None = None) -> int:
    """The object id in a valid, unexpired token of this kind; raises signing.BadSignature otherwise."""
    data = signing.TimestampSigner(salt=_SALT).unsign_object(token, max_age=max_age or settings.SIGNED_URL_MAX_AGE)
    if data.get("k") != kind:
        raise signing.BadSignature("wrong kind")
    return int(data["id"])


def signed_url(kind: str, object_id: int, *, absolute: bool = True) -> str:
    path = reverse("signed-file", kwargs={"kind": kind, "token": make_file_token(kind, object_id)})
    return f"{settings.PUBLIC_BASE_URL}{path}" if absolute else path

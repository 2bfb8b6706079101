"""Connecting a clinic's amoCRM account and keeping its tokens usable.

* The operator enters the integration's id, secret and redirect URL in the admin and follows the
  "connect" link: amoCRM asks the account owner to grant access and redirects back with a code and
  our signed ``state`` (which names the connection and expires), and we exchange the code.
* Access tokens live 24 h and every refresh rotates the refresh token, so a refresh must happen
  once per connection even with many workers: it runs inside a transaction holding the
  connection's row lock (``select_for_update``), re-checks expiry after acquiring it, and saves
  the new pair before the lock is released.
* A refused refresh token (or a 401/403 right after a fresh token) marks the connection broken,
  with one deduplicated ``CRM_BROKEN`` alert; the scheduler skips it until it is reconnected.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.models import CrmConnection, OutboxEvent
from medai.http import HttpError
from medai.integrations.amocrm import AmoAccessDenied, AmoAuthRevoked, AmoClient, AmoOAuth, AmoUnauthorized
from medai.integrations.amocrm.transport import normalize_base_url
from medai.logging import redact

logger = logging.getLogger("medai.amocrm")

T = TypeVar("T")
STATE_SALT = "medai.amocrm.oauth"
STATE_MAX_AGE = 3600  # seconds between clicking "connect" and amoCRM redirecting back


def rate_per_second() -> float:
    return float(settings.AMOCRM_RATE_PER_SECOND)


def refresh_margin() -> timedelta:
    return timedelta(seconds=int(settings.AMOCRM_TOKEN_REFRESH_MARGIN_SECONDS))


class CrmUnavailable(Exception):
    """The clinic has no usable amoCRM connection (none, not authorised yet, broken or disabled)."""

    temporary = False


class OAuthError(Exception):
    """Connecting failed; the message is shown to the person on the redirect page."""


def redirect_url() -> str:
    """What to enter as the integration's redirect URL in amoCRM."""
    return settings.PUBLIC_BASE_URL + reverse("amocrm:callback")


# --- the OAuth round trip ----------------------------------------------------------------------
def _client_fingerprint(connection: CrmConnection) -> str:
    # Changing the integration id invalidates links made for the old one.
    return hashlib.sha256(f"{connection.pk}:{connection.client_id}".encode()).hexdigest()[:16]


def connection_state(connection: CrmConnection) -> str:
    return signing.dumps({"c": connection.pk, "f": _client_fingerprint(connection)}, salt=STATE_SALT, compress=True)


def connection_from_state(state: str) -> CrmConnection:
    try:
        data = signing.loads(state or "", salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise OAuthError(_("The connection link has expired. Start again from the admin.")) from exc
    except signing.BadSignature as exc:
        raise OAuthError(_("This link was not issued by MedAI (missing or invalid state).")) from exc
    connection = CrmConnection.objects.select_related("clinic").filter(pk=data.get("c")).first()
    if connection is None or _client_fingerprint(connection) != data.get("f"):
        raise OAuthError(_("The connection this link was made for no longer exists or has changed."))
    return connection


def _authorize_base(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    for domain in ("amocrm.ru", "amocrm.com", "kommo.com"):
        if host == domain or host.endswith("." + domain):
            return f"https://www.{domain}/oauth"
    return base_url.rstrip("/") + "/oauth"  # self-hosted gateways and the test fake


def connection_authorize_url(*, connection: CrmConnection) -> str:
    """amoCRM's grant page for this integration, carrying our signed state."""
    query = urlencode({"client_id": connection.client_id, "state": connection_state(connection), "mode": "post_message"})
    return f"{_authorize_base(connection.base_url)}?{query}"


def oauth_for(connection: CrmConnection) -> AmoOAuth:
    return AmoOAuth(connection.base_url, connection.client_id, connection.client_secret, connection.redirect_uri)


def _same_account(base_url: str, referer: str) -> bool:
    try:
        return (urlsplit(normalize_base_url(referer)).hostname or "") == (urlsplit(base_url).hostname or "")
    except ValueError:
        return False


def connection_complete_oauth(*, state: str, code: str, referer: str = "") -> CrmConnection:
    """Exchange the authorisation code amoCRM redirected back with; the connection becomes active."""
    connection = connection_from_state(state)
    if not code:
        raise OAuthError(_("amoCRM did not send an authorisation code."))
    if referer and not _same_account(connection.base_url, referer):
        raise OAuthError(
            _("Access was granted in the account %(referer)s, but this connection is for %(base)s.")
            % {"referer": referer, "base": connection.base_url}
        )
    try:
        with oauth_for(connection) as oauth:
            tokens = oauth.exchange_code(code)
    except AmoAuthRevoked as exc:
        raise OAuthError(
            _("amoCRM refused the code: check the integration's secret key and redirect URL, then try again.")
        ) from exc
    except HttpError as exc:
        raise OAuthError(_("amoCRM could not be reached (%(error)s). Try again in a minute.") % {"error": exc}) from exc
    with transaction.atomic():
        connection = CrmConnection.objects.select_for_update().get(pk=connection.pk)
        connection.access_token = tokens.access_token
        connection.refresh_token = tokens.refresh_token
        connection.expires_at = tokens.expires_at
        connection.status = CrmConnection.Status.ACTIVE
        connection.last_error = ""
        connection.save()
    logger.info("amoCRM connection %s authorised", connection.pk)
    return connection


# --- tokens --------------------------------------------------------------------------------------
def _needs_refresh(connection: CrmConnection) -> bool:
    if not connection.access_token or connection.expires_at is None:
        return True
    return connection.expires_at - timezone.now() <= refresh_margin()


def connection_access_token(*, connection_id: int, stale_token: str | None = None) -> str:
    """A usable access token, refreshed first when it is about to expire (or is ``stale_token``).

    Exactly one worker refreshes: the row lock serialises them and the others, re-checking after
    the lock, find the fresh token already saved.
    """
    refused: AmoAuthRevoked | None = None
    with transaction.atomic():
        connection = CrmConnection.objects.select_for_update().get(pk=connection_id)
        if connection.status != CrmConnection.Status.ACTIVE:
            raise CrmUnavailable(_("The amoCRM connection is %(status)s.") % {"status": connection.get_status_display()})
        if stale_token is not None and connection.access_token != stale_token:
            return connection.access_token  # another worker refreshed while we waited for the lock
        if stale_token is None and not _needs_refresh(connection):
            return connection.access_token
        if not connection.refresh_token:
            refused = AmoAuthRevoked(_("No refresh token stored; reconnect the account."))
        else:
            try:
                with oauth_for(connection) as oauth:
                    tokens = oauth.refresh(connection.refresh_token)
            except AmoAuthRevoked as exc:
                refused = exc
            else:
                connection.access_token = tokens.access_token
                connection.refresh_token = tokens.refresh_token
                connection.expires_at = tokens.expires_at
                connection.save(update_fields=["access_token", "refresh_token", "expires_at", "updated_at"])
                logger.info("amoCRM connection %s: access token refreshed", connection_id)
                return tokens.access_token
    connection_mark_broken(connection_id=connection_id, error=str(refused))
    raise CrmUnavailable(_("amoCRM refused the refresh token; the connection is marked broken.")) from refused


def connection_mark_broken(*, connection_id: int, error: str) -> bool:
    """Mark the connection broken and alert once per breakage. True if this call broke it."""
    with transaction.atomic():
        connection = CrmConnection.objects.select_for_update().select_related("clinic").get(pk=connection_id)
        if connection.status == CrmConnection.Status.BROKEN:
            return False
        connection.status = CrmConnection.Status.BROKEN
        connection.last_error = redact(error)[:2000]
        connection.save(update_fields=["status", "last_error", "updated_at"])
        # A reconnection brings new tokens, hence a new key: the next breakage alerts again.
        episode = hashlib.sha256(f"{connection.refresh_token}:{connection.expires_at}".encode()).hexdigest()[:16]
        try:
            with transaction.atomic():
                OutboxEvent.objects.create(
                    clinic=connection.clinic,
                    kind=OutboxEvent.Kind.CRM_BROKEN,
                    dedup_key=f"amocrm:{connection.pk}:{episode}",
                    payload={"connection_id": connection.pk, "base_url": connection.base_url, "error": connection.last_error[:500]},
                )
        except IntegrityError:
            pass  # already alerted for this breakage
    logger.warning("amoCRM connection %s marked broken: %s", connection_id, redact(error)[:300])
    return True


# --- a session of API calls ----------------------------------------------------------------------
class AmoSession:
    """An :class:`AmoClient` for one connection that survives an expired access token.

    ``run(fn)`` calls ``fn(client)``; on 401 it refreshes the token once and retries once. A 401
    with a fresh token, a refused refresh or a 403 mark the connection broken (the operator must
    act) and raise :class:`CrmUnavailable`. ``fn`` must return materialised results (a list, not a
    generator) so a retry starts clean.
    """

    def __init__(self, connection: CrmConnection, *, client: AmoClient | None = None) -> None:
        if connection.status != CrmConnection.Status.ACTIVE:
            raise CrmUnavailable(_("The amoCRM connection is %(status)s.") % {"status": connection.get_status_display()})
        self.connection_id = connection.pk
        self.token = connection_access_token(connection_id=connection.pk)
        self.client = client or AmoClient(connection.base_url, self.token, rate_per_second=rate_per_second())
        self.client.set_access_token(self.token)

    def run(self, fn: Callable[[AmoClient], T]) -> T:
        try:
            try:
                return fn(self.client)
            except AmoUnauthorized:
                self.token = connection_access_token(connection_id=self.connection_id, stale_token=self.token)
                self.client.set_access_token(self.token)
                return fn(self.client)
        except (AmoUnauthorized, AmoAccessDenied) as exc:
            connection_mark_broken(connection_id=self.connection_id, error=str(exc))
            raise CrmUnavailable(
                _("amoCRM denied access (HTTP %(status)s); the connection is marked broken.") % {"status": exc.status}
            ) from exc

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> AmoSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

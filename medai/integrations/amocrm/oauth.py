"""amoCRM OAuth 2.0: exchange an authorization code, refresh (and rotate) tokens.

``POST /oauth2/access_token`` with client_id, client_secret, grant_type (``authorization_code`` or
``refresh_token``), code or refresh_token, and redirect_uri; the answer carries token_type, expires_in,
access_token and refresh_token. Each refresh returns a new refresh token and the old one stops
working, so callers must store the returned :class:`TokenSet` before using it.
"""

from __future__ import annotations

from typing import Any

from medai.http import PermanentHttpError, build_client

from .entities import TokenSet
from .transport import AmoAuthRevoked, call, normalize_base_url, oauth_policy

OAUTH_PATH = "/oauth2/access_token"


class AmoOAuth:
    def __init__(
        self,
        subdomain_or_base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: Any = None,
    ) -> None:
        self.base_url = normalize_base_url(subdomain_or_base_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._owns_http = http is None
        self._http = http if http is not None else build_client(policy=oauth_policy(self.base_url))

    def exchange_code(self, code: str) -> TokenSet:
        return self._token(grant_type="authorization_code", code=code)

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token(grant_type="refresh_token", refresh_token=refresh_token)

    def _token(self, **grant: str) -> TokenSet:
        body = {
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "redirect_uri": self._redirect_uri,
            **grant,
        }
        try:
            payload = call(self._http, "POST", self.base_url + OAUTH_PATH, json=body)
        except PermanentHttpError as exc:
            if exc.status in (400, 401):
                raise AmoAuthRevoked(
                    f"amoCRM refused the {grant['grant_type']} grant (HTTP {exc.status}); reconnect the account",
                    status=exc.status,
                    request_id=exc.request_id,
                    body=exc.body,
                ) from exc
            raise
        return TokenSet.from_api(payload)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AmoOAuth:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

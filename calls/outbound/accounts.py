"""Which Voximplant account a clinic's AI calls use: its own (admin) or the deployment's (VOXIMPLANT_*).

The credentials are one unit (account id + API key or service account); rule id, caller ID and the
webhook secret fall back one by one, so a clinic on the deployment's account can still call from
its own number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from calls.models import VoximplantConnection
from clinics.models import Clinic
from medai.integrations.voximplant import VoximplantClient, load_service_account

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class NotConfigured(Exception):
    """Voximplant is not set up for this clinic (a message an operator can act on)."""


@dataclass(frozen=True)
class Account:
    account_id: str
    api_key: str = field(default="", repr=False)
    service_account: dict[str, Any] | None = field(default=None, repr=False)
    service_account_file: str = ""
    rule_id: int | None = None
    caller_id: str = ""
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    own: bool = False  # the clinic's own account (not the deployment's)

    @property
    def has_credentials(self) -> bool:
        return bool(self.account_id and (self.api_key or self.service_account or self.service_account_file))

    def problems(self) -> list[str]:
        """What is missing before a call can be placed (empty when ready)."""
        missing = []
        if not self.has_credentials:
            missing.append("account id and API key or service account")
        if not self.rule_id:
            missing.append("routing rule id")
        if not self.caller_id:
            missing.append("caller ID")
        if not self.webhook_secrets:
            missing.append("webhook secret")
        return missing

    def client(self) -> VoximplantClient:
        if not self.has_credentials:
            raise NotConfigured("Voximplant credentials are not configured")
        options: dict[str, Any] = {"base_url": settings.VOXIMPLANT_BASE_URL}
        if self.service_account:
            options["service_account"] = self.service_account
        elif self.service_account_file:
            options["service_account"] = load_service_account(self.service_account_file)
        else:
            options["api_key"] = self.api_key
        return VoximplantClient(self.account_id, **options)


def deployment_secrets() -> tuple[bytes, ...]:
    return tuple(secret.encode() for secret in settings.VOXIMPLANT_WEBHOOK_SECRETS)


def account_for(clinic: Clinic) -> Account:
    own = VoximplantConnection.objects.filter(clinic=clinic).first()
    secrets = deployment_secrets()
    if own is not None and own.webhook_secret:
        secrets = (own.webhook_secret.encode(), *secrets)
    rule_id = (own.rule_id if own else None) or settings.VOXIMPLANT_RULE_ID or None
    caller_id = (own.caller_id if own else "") or settings.VOXIMPLANT_CALLER_ID
    if own is not None and own.account_id:
        service_account = json.loads(own.service_account) if own.service_account else None
        return Account(
            account_id=own.account_id,
            api_key=own.api_key,
            service_account=service_account,
            rule_id=rule_id,
            caller_id=caller_id,
            webhook_secrets=secrets,
            own=True,
        )
    return Account(
        account_id=settings.VOXIMPLANT_ACCOUNT_ID,
        api_key=settings.VOXIMPLANT_API_KEY,
        service_account_file=settings.VOXIMPLANT_SERVICE_ACCOUNT_FILE,
        rule_id=rule_id,
        caller_id=caller_id,
        webhook_secrets=secrets,
    )

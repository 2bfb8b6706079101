"""System checks for the Voximplant settings (``manage.py check`` and start-up)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def voximplant_settings_check(app_configs, **kwargs):
    problems = []
    path = settings.VOXIMPLANT_SERVICE_ACCOUNT_FILE
    if path:
        from medai.integrations.voximplant import load_service_account

        try:
            data = load_service_account(path)
            if str(data.get("account_id")) not in ("None", settings.VOXIMPLANT_ACCOUNT_ID):
                problems.append(
                    Error("VOXIMPLANT_SERVICE_ACCOUNT_FILE belongs to another account than VOXIMPLANT_ACCOUNT_ID", id="outbound.E002")
                )
        except (OSError, ValueError) as exc:
            problems.append(Error(f"VOXIMPLANT_SERVICE_ACCOUNT_FILE cannot be used: {exc}", id="outbound.E001"))
    if settings.VOXIMPLANT_ACCOUNT_ID and not settings.DEBUG and not settings.PUBLIC_BASE_URL.startswith("https://"):
        problems.append(
            Warning(
                "PUBLIC_BASE_URL is not https: Voximplant would send call settings and results over plain HTTP",
                id="outbound.W001",
            )
        )
    return problems

"""Writes for clinics: API keys, staff membership."""

from __future__ import annotations

from django.utils import timezone

from clinics.models import ApiKey, Clinic


def api_key_create(*, clinic: Clinic, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns (row, raw key). The raw key is never stored and cannot be shown again."""
    raw, prefix, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(clinic=clinic, name=name, prefix=prefix, key_hash=key_hash)
    return key, raw


def api_keys_revoke(*, queryset) -> int:
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())

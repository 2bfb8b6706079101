"""API authentication and tenancy.

* ``X-API-Key`` — a per-clinic integration key; sees exactly its clinic.
* JWT (``Authorization: Bearer``) or the admin session — a person; sees the clinics they are a
  member of (superusers: all).

``clinic_ids_for`` is the one place that answers "which clinics may this caller see"; querysets
are filtered through ``medai.api.ClinicScopedMixin`` and never by hand in a view.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication

API_KEY_HEADER = "X-API-Key"
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """The "user" of a request authenticated by an API key."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key) -> None:
        self.api_key = api_key
        self.clinic_id = api_key.clinic_id

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = request.headers.get(API_KEY_HEADER)
        if not raw:
            return None
        from clinics.models import ApiKey, hash_api_key

        key = ApiKey.objects.active().filter(key_hash=hash_api_key(raw.strip())).first()
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return API_KEY_HEADER


def clinic_ids_for(user) -> list[int] | None:
    """Clinics the caller may see: a list of ids, or None for "all" (superusers)."""
    if isinstance(user, ApiKeyPrincipal):
        return [user.clinic_id]
    if not getattr(user, "is_authenticated", False):
        return []
    if user.is_superuser:
        return None
    return list(user.clinics.filter(is_active=True).values_list("pk", flat=True))


def is_staff_caller(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


class IsClinicMember(permissions.BasePermission):
    """An API key, a superuser, or a person assigned to at least one clinic."""

    message = _("You are not assigned to any clinic.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return False
        ids = clinic_ids_for(user)
        return ids is None or bool(ids)


class IsStaffMember(IsClinicMember):
    """Changes an operator makes (limits, scorecards): staff users only, never API keys."""

    message = _("Only staff users may do this.")

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and is_staff_caller(request.user)


class StaffWritesOnly(IsClinicMember):
    """Anyone in the clinic may read; only staff may change."""

    message = _("Only staff users may change this.")

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in permissions.SAFE_METHODS or is_staff_caller(request.user)

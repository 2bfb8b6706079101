"""Shared API pieces: pagination, tenant scoping, clinic resolution for writes."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

from medai.auth import clinic_ids_for


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def scope_queryset(queryset, user, field: str = "clinic"):
    ids = clinic_ids_for(user)
    return queryset if ids is None else queryset.filter(**{f"{field}_id__in": ids})


class ClinicScopedMixin:
    """Restricts a view's queryset to the caller's clinics. Every clinic-owned API view uses it."""

    clinic_field = "clinic"

    def get_queryset(self):
        return scope_queryset(super().get_queryset(), self.request.user, self.clinic_field)


def resolve_clinic(user, clinic_id: int | None):
    """The clinic a write goes to: the key's clinic, the caller's only clinic, or the one asked for."""
    from clinics.models import Clinic

    ids = clinic_ids_for(user)
    if clinic_id is None:
        if ids is not None and len(ids) == 1:
            return Clinic.objects.get(pk=ids[0])
        raise exceptions.ValidationError({"clinic": [_("Say which clinic (you have access to several).")]})
    if ids is not None and clinic_id not in ids:
        raise exceptions.NotFound(_("No such clinic."))
    return get_object_or_404(Clinic, pk=clinic_id, is_active=True)


def resolve_administrator(clinic, administrator_id: int | None):
    """The clinic's administrator with this id (None when not given); a 400 if it is not theirs."""
    if not administrator_id:
        return None
    from clinics.models import Administrator

    administrator = Administrator.objects.filter(clinic=clinic, pk=administrator_id).first()
    if administrator is None:
        raise exceptions.ValidationError({"administrator": [_("No such administrator in this clinic.")]})
    return administrator

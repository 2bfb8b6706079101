"""Reads for calls."""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch, QuerySet

from calls.models import Call, CallEvent


def call_list(
    *,
    queryset: QuerySet[Call] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    direction: str | None = None,
    stage: str | None = None,
    administrator_id: int | None = None,
    booked: bool | None = None,
    source: str | None = None,
    clinic_id: int | None = None,
    phone: str | None = None,
) -> QuerySet[Call]:
    """Calls filtered by clinic-local days and attributes, with what a list row shows joined in."""
    qs = (queryset if queryset is not None else Call.objects.all()).select_related(
        "clinic", "administrator", "analysis"
    )
    if date_from:
        qs = qs.filter(local_date__gte=date_from)
    if date_to:
        qs = qs.filter(local_date__lte=date_to)
    if direction:
        qs = qs.filter(direction=direction)
    if stage:
        qs = qs.filter(stage=stage)
    if administrator_id:
        qs = qs.filter(administrator_id=administrator_id)
    if booked is not None:
        qs = qs.filter(booked=booked)
    if source:
        qs = qs.filter(source=source)
    if clinic_id:
        qs = qs.filter(clinic_id=clinic_id)
    if phone:
        qs = qs.filter(phone__endswith="".join(ch for ch in phone if ch.isdigit())[-10:])
    return qs.order_by("-started_at", "-pk")


def call_detail_queryset(queryset: QuerySet[Call]) -> QuerySet[Call]:
    return queryset.select_related("clinic", "administrator", "analysis", "transcript", "recording").prefetch_related(
        Prefetch("events", queryset=CallEvent.objects.order_by("created_at", "id"))
    )

"""Reads for calls."""

from __future__ import annotations

import re
from datetime import date

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from calls.models import Call, CallEvent, Transcript


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
    q: str | None = None,
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
    if q:
        qs = call_search(qs, q)
    return qs.order_by("-started_at", "-pk")


def call_detail_queryset(queryset: QuerySet[Call]) -> QuerySet[Call]:
    return queryset.select_related("clinic", "administrator", "analysis", "transcript", "recording").prefetch_related(
        Prefetch("events", queryset=CallEvent.objects.order_by("created_at", "id"))
    )


# --- search ------------------------------------------------------------------------------------
_PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")
_TERMS = re.compile(r'"([^"]+)"|(\S+)')
# Endings stripped by the SQLite fallback (longest first), so "записаться" also finds "записала".
_ENDINGS = sorted(
    (
        "ировать", "ировала", "ться", "ешь", "ете", "ала", "ила", "ола", "ыла", "ела", "али", "или", "ать",
        "ять", "ить", "еть", "ует", "уют", "ами", "ями", "ого", "его", "ому", "ему", "ых", "их", "ой", "ей",
        "ий", "ый", "ая", "яя", "ое", "ее", "ые", "ие", "ую", "юю", "ом", "ем", "ам", "ям", "ах", "ях", "ов",
        "ев", "ал", "ил", "ла", "ли", "ло", "ся", "сь", "а", "я", "ы", "и", "е", "у", "ю", "о", "ь",
    ),
    key=len,
    reverse=True,
)


def _crude_stem(word: str) -> str:
    word = word.lower()
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def _contains_any_case(field: str, text: str) -> Q:
    # SQLite's LIKE folds case for ASCII only: look for the lower-case and the capitalised form.
    return Q(**{f"{field}__contains": text}) | Q(**{f"{field}__contains": text[:1].upper() + text[1:]})


def call_search(queryset: QuerySet[Call], query: str) -> QuerySet[Call]:
    """Calls whose transcript, phone, administrator or external id match ``query``.

    * Something that looks like a phone number (``8 (916) 123-45-67``) matches the stored E.164
      number by its last digits.
    * On PostgreSQL the transcript is searched with the Russian full-text configuration
      (``websearch_to_tsquery('russian', …)``: word forms, ``"a phrase"``, ``-word``); a GIN
      index on ``to_tsvector('russian', text)`` serves it (analysis migration 0003).
    * On SQLite every word (or ``"quoted phrase"``) must occur in the transcript; words are cut to
      a crude stem first. A fallback for the embedded demo, not linguistics.
    """
    query = query.strip()
    if not query:
        return queryset
    digits = "".join(ch for ch in query if ch.isdigit())
    if _PHONE_LIKE.match(query) and len(digits) >= 5:
        return queryset.filter(phone__endswith=digits[-10:])
    people = _contains_any_case("administrator__name", query.lower()) | Q(external_id=query)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        matching = (
            Transcript.objects.annotate(document=SearchVector("text", config="russian"))
            .filter(document=SearchQuery(query, config="russian", search_type="websearch"))
            .values("call_id")
        )
        return queryset.filter(Q(pk__in=matching) | people)
    transcripts = Transcript.objects.all()
    for phrase, word in _TERMS.findall(query):
        term = phrase.lower().strip() if phrase else _crude_stem(word.strip(".,!?;:«»"))
        if term:
            transcripts = transcripts.filter(_contains_any_case("text", term))
    return queryset.filter(Q(pk__in=transcripts.values("call_id")) | people)

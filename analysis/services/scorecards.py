"""Writes for scorecards: seeding the default, replacing criteria, versioning.

Every change of a scorecard's criteria bumps ``Scorecard.version`` and stores an immutable
:class:`ScorecardVersion` snapshot, so ``Analysis.scorecard_version`` always points at the exact
criteria a call was scored with.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils.translation import gettext as _

from analysis.catalogue import default_criteria
from analysis.models import (
    SCORED_CALL_TYPES,
    AppliesIf,
    Criterion,
    Scorecard,
    ScorecardVersion,
    criterion_key_validator,
)
from clinics.models import Clinic

CRITERION_FIELDS = ("key", "title_ru", "title_en", "rubric", "binary", "applies_if", "weight", "rule_phrases")


def _snapshot(scorecard: Scorecard, actor: str) -> ScorecardVersion:
    criteria = [c.as_dict() for c in scorecard.criteria.order_by("position", "id")]
    version, _created = ScorecardVersion.objects.update_or_create(
        scorecard=scorecard, version=scorecard.version, defaults={"criteria": criteria, "created_by": actor[:150]}
    )
    return version


def _clean_criteria(rows: list[dict]) -> list[dict]:
    """Validate a full list of criteria; raises ValidationError with every problem found."""
    if not rows:
        raise ValidationError({"criteria": [_("A scorecard needs at least one criterion.")]})
    errors: dict[str, list[str]] = {}
    cleaned: list[dict] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"criteria[{index}]"
        key = str(row.get("key", "")).strip()
        try:
            criterion_key_validator(key)
        except ValidationError as exc:
            errors.setdefault(where, []).extend(exc.messages)
        if key in seen:
            errors.setdefault(where, []).append(_("Duplicate key %(key)s.") % {"key": key})
        seen.add(key)
        title = str(row.get("title_ru", "")).strip()
        if not title:
            errors.setdefault(where, []).append(_("title_ru is required."))
        applies_if = row.get("applies_if") or ""
        if applies_if not in AppliesIf.values:
            errors.setdefault(where, []).append(_("applies_if must be '', 'booked' or 'objection'."))
        try:
            weight = Decimal(str(row.get("weight", "1")))
        except (InvalidOperation, ValueError):
            weight = Decimal(-1)
        if not (Decimal("0.1") <= weight <= Decimal("10")):
            errors.setdefault(where, []).append(_("weight must be between 0.1 and 10."))
        cleaned.append(
            {
                "key": key,
                "title_ru": title[:200],
                "title_en": str(row.get("title_en", "")).strip()[:200],
                "rubric": str(row.get("rubric", "")).strip(),
                "binary": bool(row.get("binary", False)),
                "applies_if": applies_if,
                "weight": weight,
                "rule_phrases": str(row.get("rule_phrases", "")).strip(),
            }
        )
    if errors:
        raise ValidationError(errors)
    return cleaned


def _create_criteria(scorecard: Scorecard, rows: list[dict]) -> None:
    Criterion.objects.bulk_create(
        [Criterion(scorecard=scorecard, position=index, **row) for index, row in enumerate(rows)]
    )


def scorecard_ensure_default(clinic: Clinic, *, actor: str = "system", call_types=SCORED_CALL_TYPES) -> int:
    """Give ``clinic`` the default scorecard for every call type in ``call_types`` it lacks. Idempotent.

    Returns how many scorecards were created. Safe under concurrency: a scorecard another process
    created first is left alone. The outbound AI scorecard (``AI_CALL_TYPES``) is seeded only when a
    clinic's first AI call is analysed.
    """
    existing = set(Scorecard.objects.filter(clinic=clinic).values_list("call_type", flat=True))
    created = 0
    for call_type in call_types:
        if call_type in existing:
            continue
        try:
            with transaction.atomic():
                scorecard = Scorecard.objects.create(clinic=clinic, call_type=call_type, updated_by=actor[:150])
                _create_criteria(scorecard, _clean_criteria(default_criteria(call_type)))
                _snapshot(scorecard, actor)
        except IntegrityError:
            continue  # created concurrently
        created += 1
    return created


def scorecards_ensure_for_clinics(clinic_ids: list[int] | None) -> int:
    """Seed defaults for the given clinics (``None``: every active clinic) that lack a scorecard."""
    clinics = Clinic.objects.filter(is_active=True)
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=clinic_ids)
    created = 0
    for clinic in clinics.exclude(pk__in=_clinics_with_all_scorecards()):
        created += scorecard_ensure_default(clinic)
    return created


def _clinics_with_all_scorecards():
    return (
        Scorecard.objects.values("clinic_id")
        .annotate(types=Count("call_type"))
        .filter(types__gte=len(SCORED_CALL_TYPES))
        .values("clinic_id")
    )


@transaction.atomic
def scorecard_replace_criteria(*, scorecard: Scorecard, criteria: list[dict], actor: str = "") -> Scorecard:
    """Replace all criteria of ``scorecard`` (a PUT) and bump its version."""
    rows = _clean_criteria(criteria)
    locked = Scorecard.objects.select_for_update().get(pk=scorecard.pk)
    locked.criteria.all().delete()
    _create_criteria(locked, rows)
    return scorecard_bump_version(scorecard=locked, actor=actor)


@transaction.atomic
def scorecard_bump_version(*, scorecard: Scorecard, actor: str = "") -> Scorecard:
    """Record that ``scorecard``'s criteria changed: version + 1 and a snapshot (after admin edits)."""
    Scorecard.objects.filter(pk=scorecard.pk).update(version=F("version") + 1, updated_by=actor[:150])
    scorecard.refresh_from_db()
    _snapshot(scorecard, actor)
    return scorecard


def scorecard_record_version(*, scorecard: Scorecard, actor: str = "") -> ScorecardVersion:
    """Snapshot the current criteria under the current version (a scorecard created by hand)."""
    return _snapshot(scorecard, actor)


def scorecard_reset_to_default(*, scorecard: Scorecard, actor: str = "") -> Scorecard:
    return scorecard_replace_criteria(scorecard=scorecard, criteria=default_criteria(scorecard.call_type), actor=actor)

"""amoCRM users → the clinic's :class:`~clinics.models.Administrator` rows (matched by ``crm_user_id``).

A user whose name matches an administrator the operator created by hand (for work schedules) is
linked to that row rather than duplicated. Names an operator changed in MedAI are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction

from calls.models import Call
from clinics.models import Administrator, Clinic
from medai.integrations.amocrm import AmoUser


def administrators_sync(*, clinic: Clinic, users: Iterable[AmoUser]) -> dict[int, Administrator]:
    """Create or link an administrator for every amoCRM user; returns crm user id → administrator."""
    users = list(users)
    rows = list(Administrator.objects.filter(clinic=clinic))
    by_crm_user = {a.crm_user_id: a for a in rows if a.crm_user_id is not None}
    by_name = {a.name.casefold(): a for a in rows}
    for user in users:
        if user.id in by_crm_user:
            continue
        name = (user.name.strip() or f"amoCRM {user.id}")[:200]
        same_name = by_name.get(name.casefold())
        try:
            with transaction.atomic():
                if same_name is not None and same_name.crm_user_id is None:
                    same_name.crm_user_id = user.id
                    if not same_name.email and user.email:
                        same_name.email = user.email[:254]
                    same_name.save(update_fields=["crm_user_id", "email"])
                    admin = same_name
                else:
                    if same_name is not None:  # two amoCRM users with one name
                        name = f"{name[:185]} ({user.id})"
                    admin = Administrator.objects.create(
                        clinic=clinic, name=name, crm_user_id=user.id, email=user.email[:254] if "@" in user.email else ""
                    )
        except IntegrityError:
            # A concurrent sync (or an operator) created it a moment ago.
            admin = Administrator.objects.filter(clinic=clinic, crm_user_id=user.id).first()
            if admin is None:
                continue
        by_crm_user[user.id] = admin
        by_name[admin.name.casefold()] = admin
    return by_crm_user


def calls_fill_administrators(*, clinic: Clinic, admins: dict[int, Administrator], start: datetime, end: datetime) -> int:
    """Attribute calls of the window that have a known responsible user but no administrator yet.

    Only fills gaps: an administrator already on a call (from the CRM, a schedule or an operator)
    is never replaced or cleared by a re-sync.
    """
    filled = 0
    pending = (
        Call.objects.filter(clinic=clinic, started_at__gte=start, started_at__lt=end, administrator__isnull=True)
        .exclude(crm_responsible_user_id__isnull=True)
        .values_list("crm_responsible_user_id", flat=True)
        .distinct()
    )
    for crm_user_id in list(pending):
        admin = admins.get(crm_user_id)
        if admin is not None:
            filled += Call.objects.filter(
                clinic=clinic,
                started_at__gte=start,
                started_at__lt=end,
                administrator__isnull=True,
                crm_responsible_user_id=crm_user_id,
            ).update(administrator=admin)
    return filled

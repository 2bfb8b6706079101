"""The embedded demo: a dental clinic with administrators, shifts and 26 synthetic calls."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from calls.models import Call
from calls.services import call_ingest
from clinics.models import Administrator, Clinic, WorkSchedule
from clinics.services import api_key_create
from medai.integrations.amocrm import parse_processing_speed

DATA_DIR = Path(__file__).resolve().parent / "demo_data" / "calls"
CLINIC_SLUG = "ulybka-demo"
CLINIC_NAME = "Стоматология «Улыбка»"
# Shifts from calls/demo_data/README.md: weekday -> administrator (Sunday closed).
SHIFTS = {0: "Анна Смирнова", 1: "Анна Смирнова", 2: "Ольга Кузнецова", 3: "Ольга Кузнецова", 4: "Марина Волкова", 5: "Марина Волкова"}
DEMO_USERNAME = "demo"


@dataclass
class DemoResult:
    clinic: Clinic
    username: str
    password: str
    api_key: str
    calls: list[Call]
    created: int


def demo_files() -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(DATA_DIR.glob("*.json"))]


def _date_shift(items: list[dict], today) -> timedelta:
    """Whole weeks that move the newest call to within the last 7 days (weekdays are preserved)."""
    newest = max(datetime.fromisoformat(item["started_at"]) for item in items).date()
    weeks = max(0, (today - timedelta(days=1) - newest).days // 7)
    return timedelta(weeks=weeks)


@transaction.atomic
def demo_setup(*, keep_dates: bool = False) -> DemoResult:
    """Create (or refresh) the demo clinic, its people and its calls. Safe to run repeatedly."""
    clinic, _ = Clinic.objects.get_or_create(
        slug=CLINIC_SLUG, defaults={"name": CLINIC_NAME, "time_zone": "Europe/Moscow", "transcription_provider": "none"}
    )
    admins = {
        name: Administrator.objects.get_or_create(clinic=clinic, name=name)[0] for name in sorted(set(SHIFTS.values()))
    }
    items = demo_files()
    shift = timedelta(0) if keep_dates else _date_shift(items, timezone.localdate(timezone=clinic.tz))
    first_day = min(datetime.fromisoformat(i["started_at"]) for i in items).date() + shift - timedelta(days=7)
    last_day = max(datetime.fromisoformat(i["started_at"]) for i in items).date() + shift + timedelta(days=7)
    day = first_day
    while day <= last_day:
        name = SHIFTS.get(day.weekday())
        if name:
            WorkSchedule.objects.get_or_create(
                clinic=clinic, administrator=admins[name], date=day, start_time=time(9), defaults={"end_time": time(20)}
            )
        day += timedelta(days=1)

    user_model = get_user_model()
    password = secrets.token_urlsafe(12)
    user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "demo@example.com"})
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    clinic.members.add(user)
    _key, raw_key = api_key_create(clinic=clinic, name=f"demo {timezone.now():%Y-%m-%d %H:%M}")

    calls: list[Call] = []
    created = 0
    for item in items:
        result = call_ingest(
            clinic=clinic,
            external_id=item["external_id"],
            source=Call.Source.UPLOAD,
            direction=item["direction"],
            status=item["status"],
            started_at=datetime.fromisoformat(item["started_at"]) + shift,
            duration_seconds=item["duration_seconds"],
            phone=item.get("phone") or "",
            transcript=item["utterances"] or None,
            administrator_name=item.get("administrator") or "",
            traffic_source=item.get("traffic_source") or "",
            lead_processing_minutes=parse_processing_speed(item.get("lead_processing_speed")),
            enqueue=False,
        )
        calls.append(result.call)
        created += result.created
    return DemoResult(clinic, user.username, password, raw_key, calls, created)

"""Periodic tasks, upserted by ``manage.py setup_schedules``.

Other apps add their entries to ``SCHEDULES`` here (amoCRM sync, roll-ups, digests) so there is one
list of everything that runs on a timer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    func: str
    minutes: int | None = None  # every N minutes
    cron: str | None = None  # or a cron expression (server time, UTC)


SCHEDULES: list[PeriodicTask] = [
    PeriodicTask("pipeline-sweeper", "calls.tasks.sweep", minutes=1),
]


def setup_schedules() -> tuple[int, int]:
    from django_q.models import Schedule

    created = updated = 0
    for task in SCHEDULES:
        defaults = {"func": task.func, "repeats": -1}
        if task.cron:
            defaults.update(schedule_type=Schedule.CRON, cron=task.cron, minutes=None)
        else:
            defaults.update(schedule_type=Schedule.MINUTES, minutes=task.minutes, cron=None)
        _, was_created = Schedule.objects.update_or_create(name=task.name, defaults=defaults)
        created += was_created
        updated += not was_created
    return created, updated

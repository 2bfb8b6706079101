"""Periodic tasks, upserted by ``manage.py setup_schedules``.

Other apps add their entries to ``SCHEDULES`` here (amoCRM sync, roll-ups, digests) so there is one
list of everything that runs on a timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    func: str
    minutes: int | None = None  # every N minutes
    cron: str | None = None  # or a cron expression (server time, UTC)


SCHEDULES: list[PeriodicTask] = [
    PeriodicTask("pipeline-sweeper", "calls.tasks.sweep", minutes=1),
    # Hourly: the week/month that just closed in each clinic's own time zone (idempotent).
    PeriodicTask("analysis-period-summaries", "analysis.tasks.generate_due_summaries", minutes=60),
    # Queues an incremental amoCRM sync per working connection (broken ones wait for a reconnect).
    PeriodicTask(
        "amocrm-sync",
        "calls.amocrm.tasks.sync_due_connections",
        minutes=int(settings.AMOCRM_SYNC_INTERVAL_MINUTES),
    ),
    # Recompute the BI roll-ups of the days the pipeline touched since the last run.
    PeriodicTask("reports-rollups-refresh", "reports.tasks.refresh_rollups", minutes=1),
    # Nightly: the last ROLLUP_REBUILD_DAYS days again, for changes nobody marked (CRM bookings).
    PeriodicTask("reports-rollups-nightly", "reports.tasks.rebuild_rollups_nightly", cron="30 0 * * *"),
    # Telegram: alerts from the outbox and report files asked for in chats; digests when due
    # (each clinic's digest time, in its time zone); forgetting old update ids and throttles.
    PeriodicTask("telegram-outbox", "telegrambot.tasks.deliver_outbox", minutes=1),
    PeriodicTask("telegram-digests", "telegrambot.tasks.send_due_digests", minutes=5),
    PeriodicTask("telegram-housekeeping", "telegrambot.tasks.housekeeping", minutes=60),
    # Outbound AI calls: campaign dispatch (also woken after every result), and reconciliation of
    # unclear starts and results that never arrived (GetCallHistory).
    PeriodicTask("outbound-dispatch", "calls.outbound.tasks.dispatch_campaigns", minutes=1),
    PeriodicTask("outbound-reconcile", "calls.outbound.tasks.reconcile", minutes=1),
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

"""amoCRM call sync: requests per call and wall time against an account that enforces 7 requests/s.

5,000 call events on 2,000 leads over a week (Moscow days), with users, a booking pipeline,
traffic-source and processing-speed fields and lead status changes, served by the fake amoCRM with
its rate limit on (more than 7 requests in a sliding second get 429). The real range sync runs into
a throwaway database: reference data, events, batched notes and leads, status changes, ingestion
(with the pipeline tasks queued in the ORM broker, as in production) and CRM bookings.

    DEBUG=1 .venv/bin/python bench/amocrm_sync.py [--calls 5000] [--leads 2000] [--rps 7]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from _setup import result, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--rps", type=int, default=7, help="the fake account's limit (requests per second)")
    args = parser.parse_args()
    setup_django(name="amocrm-sync")

    from calls.amocrm.connection import connection_complete_oauth, connection_state
    from calls.amocrm.sync import amocrm_sync_range
    from calls.models import Call
    from clinics.models import Clinic, CrmConnection
    from medai.integrations.amocrm import CallStatus
    from tests.fakes.amocrm import FakeAmoCRM

    rng = random.Random(4)
    first_day, days = date(2026, 11, 9), 7
    day_start = datetime(2026, 11, 9, 5, 0, tzinfo=UTC)  # 08:00 in Moscow

    with FakeAmoCRM(max_rps=args.rps) as fake:
        users = [fake.add_user(f"Администратор {n}") for n in range(8)]
        pipeline = fake.add_pipeline("Первичные", ["Первичный контакт", "Консультация", "Записан"])
        booked_status = fake.statuses_of(pipeline)["Записан"]
        source = fake.add_custom_field("Источник", enums=["Яндекс", "Сайт", "2ГИС", "Рекомендация"])
        speed = fake.add_custom_field("Скорость обработки", enums=["0 мин", "5-10 мин", "10-30 мин", "1-3 часа"])
        leads = [
            fake.add_lead(
                f"Сделка {n}",
                pipeline_id=pipeline,
                responsible_user_id=rng.choice(users),
                custom_fields={source: rng.choice(["Яндекс", "Сайт", "2ГИС"]), speed: rng.choice(["0 мин", "5-10 мин", "1-3 часа"])},
                contact_ids=[fake.add_contact(f"Пациент {n}", phones=[f"+7999{n:07d}"])],
            )
            for n in range(args.leads)
        ]
        statuses = [CallStatus.TALKED] * 7 + [CallStatus.NOT_GOT_THROUGH, CallStatus.BUSY, None]
        for n in range(args.calls):
            moment = day_start + timedelta(days=rng.randrange(days), seconds=rng.randrange(12 * 3600))
            status = rng.choice(statuses)
            lead = leads[n % len(leads)]
            fake.add_call(
                entity_id=lead,
                created_at=moment,
                direction=rng.choice(["inbound", "inbound", "outbound"]),
                duration=rng.randrange(20, 600) if status == CallStatus.TALKED else 0,
                call_status=status,
                phone=f"+7999{n % len(leads):07d}",
                responsible_user_id=rng.choice(users),
            )
            if status == CallStatus.TALKED and rng.random() < 0.15:
                fake.add_status_change(
                    lead_id=lead, status_id=booked_status, pipeline_id=pipeline, created_at=moment + timedelta(minutes=3)
                )

        clinic = Clinic.objects.create(name="Bench clinic", slug=f"bench-{time.time_ns()}", time_zone="Europe/Moscow")
        connection = CrmConnection.objects.create(
            clinic=clinic, base_url=fake.url, client_id=fake.client_id, client_secret=fake.client_secret, redirect_uri=fake.redirect_uri
        )
        connection = connection_complete_oauth(state=connection_state(connection), code=fake.issue_code())
        fake.requests.clear()
        fake.rate_limited = 0

        started = time.monotonic()
        stats = amocrm_sync_range(connection=connection, date_from=first_day, date_to=first_day + timedelta(days=days - 1))
        wall = time.monotonic() - started

        requests = len(fake.requests)
        per_path = Counter(r.path for r in fake.requests)
        calls = Call.objects.filter(clinic=clinic).count()
        print(f"call events:        {stats.events} on {args.leads} leads over {days} days")
        print(f"calls stored:       {calls} (created {stats.created}, booked by CRM {stats.booked}, not booked {stats.not_booked})")
        print(f"HTTP requests:      {requests} ({fake.rate_limited} answered 429 by the {args.rps} req/s limit)")
        for path, count in sorted(per_path.items()):
            print(f"  {count:5d} {path}")
        print(f"wall time:          {wall:.1f} s ({calls / wall:.0f} calls/s)")
        second = time.monotonic()
        again = amocrm_sync_range(connection=connection, date_from=first_day, date_to=first_day + timedelta(days=days - 1))
        print(f"re-sync:            {again.created} created, {len(fake.requests) - requests} requests, {time.monotonic() - second:.1f} s")
        result("calls_per_request", round(calls / requests, 1))
        result("amocrm_sync_wall_s", round(wall, 1))


if __name__ == "__main__":
    main()

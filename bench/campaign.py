"""Campaign pacing: how well the dispatcher keeps a campaign's lines busy.

A 1,000-number campaign at concurrency 10 against the fake Voximplant. Every call lasts a random
0.5–1.5 s (scripted in the fake), after which the fake POSTs the signed result to MedAI's webhook over
real HTTP, as the VoxEngine scenario does. The dispatcher runs in a loop as the scheduler would:
woken by every result (the webhook's "dispatch this campaign" task) and at least once a second.

Achieved average concurrency = Σ call durations (StartScenarios sent → result recorded) / wall time
(first dial → last result); utilisation = that / the limit. The peak is checked against the limit.

    DEBUG=1 .venv/bin/python bench/campaign.py [--contacts 1000] [--concurrency 10] [--min 0.5] [--max 1.5]

SQLite by default (a temporary file); BENCH_DATABASE_URL=postgres://… for PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import threading
import time

from _setup import ROOT, result, setup_django

SECRET = "bench-webhook-secret-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--min", type=float, default=0.5, help="shortest call, s")
    parser.add_argument("--max", type=float, default=1.5, help="longest call, s")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    random.seed(args.seed)

    setup_django(name="campaign")
    import sys

    sys.path.insert(0, str(ROOT))
    from django.conf import settings
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    import calls.outbound.tasks as outbound_tasks
    from calls import pipeline
    from calls.models import Campaign, OutboundCall
    from calls.outbound import campaigns
    from clinics.models import Clinic
    from tests.fakes.voximplant import FakeVoximplant, Scripted

    class TimedVoximplant(FakeVoximplant):
        """Each session "talks" for a random while before the scenario posts its result."""

        def deliver(self, session):
            time.sleep(random.uniform(args.min, args.max))
            return super().deliver(session)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *a):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_port}"

    fake = TimedVoximplant(rules=(3003,)).start()
    fake.webhook_secret = SECRET.encode()
    fake.auto_deliver = True
    fake.default_outcome = Scripted("completed", duration=1, transcript=[("ai", "Здравствуйте! Напоминаем о приёме."), ("customer", "Спасибо, приду.")])
    settings.VOXIMPLANT_ACCOUNT_ID = str(fake.account_id)
    settings.VOXIMPLANT_API_KEY = fake.api_key
    settings.VOXIMPLANT_RULE_ID = 3003
    settings.VOXIMPLANT_WEBHOOK_SECRETS = [SECRET]
    settings.VOXIMPLANT_CALLER_ID = "+74950000000"
    settings.VOXIMPLANT_BASE_URL = fake.api_url
    settings.PUBLIC_BASE_URL = base_url

    # The scheduler's wake-ups: a result's "dispatch this campaign" task sets the event.
    wake = threading.Event()
    wakes = {"dispatch": 0}

    def async_task(func, *a, **kw):
        if func.endswith("dispatch_campaign"):
            wakes["dispatch"] += 1
            wake.set()

    outbound_tasks.async_task = async_task

    clinic = Clinic.objects.create(name="Bench clinic", slug="bench", time_zone="UTC")
    all_day = {str(day): [["00:00", "23:59"]] for day in range(7)}
    campaign = campaigns.campaign_create(
        clinic=clinic,
        name="bench",
        greeting="Здравствуйте! Это клиника, напоминаем о приёме.",
        script="Вам удобно?\nСпасибо!",
        max_concurrency=args.concurrency,
        calling_windows=all_day,
        max_attempts=1,
    )
    rows = "\n".join(["phone", *(f"+7999{1000000 + i:07d}" for i in range(args.contacts))]).encode()
    report = campaigns.campaign_import(campaign=campaign, filename="bench.csv", data=rows)
    assert report.imported == args.contacts, report

    dispatches = 0
    with pipeline.inline_mode():  # analysis is not part of this figure: the pipeline is not enqueued
        campaigns.campaign_start(campaign=campaign)
        started = time.monotonic()
        while time.monotonic() - started < 30 + args.contacts * args.max:
            wake.wait(timeout=1.0)
            wake.clear()
            dispatches += 1
            if campaigns.campaign_dispatch(campaign.pk).finished:
                break
    elapsed = time.monotonic() - started
    fake.stop()
    server.shutdown()

    campaign.refresh_from_db()
    spans = list(OutboundCall.objects.filter(campaign=campaign).values_list("dial_started_at", "finished_at", "status"))
    finished = [(a, b) for a, b, _status in spans if a and b]
    first, last = min(a for a, _ in finished), max(b for _, b in finished)
    wall = (last - first).total_seconds()
    busy = sum((b - a).total_seconds() for a, b in finished)
    events = sorted([(a, 1) for a, _ in finished] + [(b, -1) for _, b in finished], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _moment, delta in events:
        level += delta
        peak = max(peak, level)
    average = busy / wall
    utilisation = 100 * average / args.concurrency
    print(f"campaign status: {campaign.status}; calls: {len(spans)} ({len(finished)} with a result); dispatches: {dispatches}")
    print(f"wall time {wall:.1f} s (loop {elapsed:.1f} s); mean call {busy / len(finished):.2f} s")
    print(f"average concurrency {average:.2f} of {args.concurrency}; peak {peak}")
    print(f"idle line time per call: {(args.concurrency * wall - busy) / len(finished) * 1000:.0f} ms")
    assert campaign.status == Campaign.Status.COMPLETED, campaign.status
    assert peak <= args.concurrency, f"concurrency exceeded: {peak} > {args.concurrency}"
    result("calls", len(finished))
    result("peak_concurrency", peak)
    result("average_concurrency", round(average, 2))
    result("concurrency_utilisation_pct", round(utilisation, 1))


if __name__ == "__main__":
    main()

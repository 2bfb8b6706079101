"""Real threads, real PostgreSQL connections: racing dispatchers never exceed a campaign's concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from calls.models import CampaignContact, OutboundCall
from calls.outbound import campaigns, services
from calls.outbound.services import Outcome
from tests.factories import ClinicFactory
from tests.outbound.test_campaigns import MONDAY_NOON, make_campaign, phones

LIMIT = 4
CONTACTS = 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_exceed_the_limit(vox, vox_settings, enqueued):
    campaign = make_campaign(ClinicFactory(), phones(CONTACTS), max_concurrency=LIMIT)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def in_progress() -> int:
        return CampaignContact.objects.filter(campaign=campaign, state=CampaignContact.State.IN_PROGRESS).count()

    def guarded(body):
        def run():
            try:
                body()
            except BaseException as exc:  # surfaced by the main thread
                errors.append(exc)
                stop.set()
            finally:
                connection.close()

        return run

    def dispatcher():
        barrier.wait()
        while not stop.is_set():
            campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
            seen.append(in_progress())

    def finisher():
        # Results arrive while the dispatchers run: every freed slot is fought over.
        barrier.wait()
        while not stop.is_set():
            for call in OutboundCall.objects.filter(campaign=campaign, status="dialing", session_id__isnull=False)[:2]:
                services.outbound_result_record(call=call, outcome=Outcome(status="completed", session_id=call.session_id))
            if not CampaignContact.objects.filter(campaign=campaign).exclude(state=CampaignContact.State.DONE).exists():
                stop.set()
            time.sleep(0.005)

    def monitor():
        barrier.wait()
        while not stop.is_set():
            seen.append(in_progress())
            time.sleep(0.002)

    barrier = threading.Barrier(6)
    threads = [threading.Thread(target=guarded(dispatcher)) for _ in range(4)]
    threads += [threading.Thread(target=guarded(finisher)), threading.Thread(target=guarded(monitor))]
    for thread in threads:
        thread.start()
    stop.wait(timeout=60)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert seen and max(seen) <= LIMIT
    assert max(seen) == LIMIT  # the limit was actually reached: the test did race
    # Every contact was dialled exactly once: no slot was given twice, no number dialled twice.
    assert len(vox.requests_to("POST", "/platform_api/StartScenarios")) == CONTACTS
    assert set(CampaignContact.objects.filter(campaign=campaign).values_list("attempts", flat=True)) == {1}

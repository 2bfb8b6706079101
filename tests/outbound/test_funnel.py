"""The reports' funnel (called → talked → interested → booked) covers AI calls, per campaign."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import translation

from analysis.models import CallType
from calls import pipeline
from calls.models import Call, OutboundCall
from calls.outbound import campaigns
from reports.rollups import rollups_recompute
from tests.factories import CallFactory, ClinicFactory
from tests.fakes.voximplant import Scripted
from tests.outbound.conftest import deliver
from tests.outbound.test_campaigns import MONDAY_NOON, make_campaign, phones

FUNNEL = "/api/metrics/funnel/"


@pytest.mark.django_db
def test_the_funnel_filters_and_groups_by_campaign_and_call_source(key_client, client, clinic, vox, vox_settings):
    campaign = make_campaign(clinic, phones(3), max_concurrency=3)
    other = make_campaign(clinic, phones(1, start=10), name="Другая")
    vox.outcomes.extend([Scripted("completed"), Scripted("busy"), Scripted("no_answer"), Scripted("completed")])
    campaigns.campaign_dispatch(campaign.pk, now=MONDAY_NOON)
    campaigns.campaign_dispatch(other.pk, now=MONDAY_NOON)
    for session in vox.sessions:
        deliver(client, vox, session)
    for call_id in OutboundCall.objects.values_list("call_id", flat=True):
        pipeline.drive(call_id)
    human = CallFactory(clinic=clinic, source=Call.Source.AMOCRM)
    days = sorted({c.local_date for c in Call.objects.all()})
    rollups_recompute(clinic=clinic, date_from=days[0], date_to=days[-1])
    period = f"date_from={days[0]}&date_to={days[-1]}"

    funnel = key_client.get(f"{FUNNEL}?{period}&campaign={campaign.pk}").json()
    assert [(s["key"], s["count"]) for s in funnel["steps"]] == [("calls", 3), ("answered", 1), ("interested", 1), ("booked", 1)]
    assert funnel["talk_rate"] == pytest.approx(33.33)

    outbound = key_client.get(f"{FUNNEL}?{period}&call_source=outbound").json()
    assert outbound["calls"] == 4 and outbound["answered"] == 2
    everything = key_client.get(f"{FUNNEL}?{period}").json()
    assert everything["calls"] == 4 + 1 and human.source == "amocrm"

    groups = key_client.get(f"{FUNNEL}?{period}&group_by=campaign").json()["groups"]
    by_key = {g["key"]: g for g in groups}
    assert by_key[campaign.pk]["label"] == campaign.name and by_key[campaign.pk]["calls"] == 3
    assert by_key[other.pk]["calls"] == 1 and by_key[None]["calls"] == 1  # the human call has no campaign

    types = key_client.get(f"{FUNNEL}?{period}&group_by=call_type").json()["groups"]
    with translation.override(settings.LANGUAGE_CODE):
        assert {g["key"]: g["label"] for g in types}["outbound"] == str(CallType.OUTBOUND.label)


@pytest.mark.django_db
def test_another_clinics_campaign_is_not_a_valid_filter(key_client, vox_settings):
    theirs = make_campaign(ClinicFactory(), phones(1), start=False)
    response = key_client.get(f"{FUNNEL}?campaign={theirs.pk}")
    assert response.status_code == 400 and "campaign" in response.json()["error"]["fields"]

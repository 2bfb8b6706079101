"""``/api/outbound/…``: campaigns over the API, the do-not-call list, and tenant isolation."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall
from calls.outbound import campaigns, services
from clinics.services import api_key_create
from tests.factories import ClinicFactory, UserFactory
from tests.outbound.test_calls import CALL
from tests.outbound.test_campaigns import csv_bytes, make_campaign, phones

CAMPAIGN = {
    "name": "Подтверждение визитов",
    "greeting": "Здравствуйте! Это клиника «Улыбка».",
    "script": "Подтверждаете визит?\nСпасибо!",
    "max_concurrency": 2,
    "calling_windows": '{"0": [["09:00", "20:00"]], "1": [["09:00", "20:00"]]}',
}


@pytest.mark.django_db
def test_campaign_lifecycle_over_the_api(key_client, clinic, vox_settings, enqueued, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("contacts.csv", csv_bytes(["+79990001122,Анна", "oops,Борис", "+79990001122,Анна"]))
    with django_capture_on_commit_callbacks(execute=True):
        created = key_client.post("/api/outbound/campaigns/", {**CAMPAIGN, "file": upload, "start": "true"}, format="multipart")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "running" and body["calling_windows"] == {"0": [["09:00", "20:00"]], "1": [["09:00", "20:00"]]}
    assert body["import_report"]["imported"] == 1 and body["import_report"]["errors"][0]["row"] == 3
    assert body["progress"]["contacts"] == 1 and body["progress"]["states"]["pending"] == 1
    assert ("calls.outbound.tasks.dispatch_campaign", body["id"]) in enqueued

    more = SimpleUploadedFile("more.csv", csv_bytes(["+79990001133,Вера"]))
    report = key_client.post(f"/api/outbound/campaigns/{body['id']}/import/", {"file": more}, format="multipart").json()
    assert report["imported"] == 1 and report["error_count"] == 0
    contacts = key_client.get(f"/api/outbound/campaigns/{body['id']}/contacts/").json()
    assert [c["phone"] for c in contacts["results"]] == ["+79990001122", "+79990001133"]

    paused = key_client.post(f"/api/outbound/campaigns/{body['id']}/pause/")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = key_client.post(f"/api/outbound/campaigns/{body['id']}/pause/")
    assert again.status_code == 400 and again.json()["error"]["code"] == "validation_error"
    assert key_client.post(f"/api/outbound/campaigns/{body['id']}/resume/").json()["status"] == "running"
    cancelled = key_client.post(f"/api/outbound/campaigns/{body['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["states"]["done"] == 2


@pytest.mark.django_db
def test_campaign_create_reports_invalid_windows_and_files_without_leaving_a_campaign(key_client, clinic, vox_settings):
    response = key_client.post("/api/outbound/campaigns/", {**CAMPAIGN, "calling_windows": {"0": [["21:00", "09:00"]]}}, format="json")
    assert response.status_code == 400 and "calling_windows" in response.json()["error"]["fields"]
    upload = SimpleUploadedFile("contacts.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    bad_file = key_client.post("/api/outbound/campaigns/", {**CAMPAIGN, "file": upload}, format="multipart")
    assert bad_file.status_code == 400 and ".xlsx or .csv" in bad_file.json()["error"]["fields"]["file"][0]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_do_not_call_list_over_the_api(key_client, clinic, vox_settings):
    campaign = make_campaign(clinic, ["+79990001122"], start=False)
    added = key_client.post("/api/outbound/do-not-call/", {"phone": "8 999 000-11-22", "reason": "asked"}, format="json")
    assert added.status_code == 201 and added.json()["phone"] == "+79990001122"
    assert CampaignContact.objects.get(campaign=campaign).state == "do_not_call"
    assert key_client.post("/api/outbound/do-not-call/", {"phone": "123"}, format="json").status_code == 400
    assert [row["phone"] for row in key_client.get("/api/outbound/do-not-call/").json()["results"]] == ["+79990001122"]
    assert key_client.delete(f"/api/outbound/do-not-call/{added.json()['id']}/").status_code == 204
    assert not DoNotCall.objects.exists()


@pytest.mark.django_db
def test_a_key_never_sees_or_touches_another_clinics_outbound_data(key_client, clinic, vox, vox_settings):
    other = ClinicFactory()
    theirs_call = services.outbound_call_create(clinic=other, **CALL, enqueue=False)
    theirs_campaign = make_campaign(other, phones(2), start=False)
    theirs_dnc = campaigns.do_not_call_add(clinic=other, phone="+79990009999")
    mine = services.outbound_call_create(clinic=clinic, **CALL, enqueue=False)

    assert [row["id"] for row in key_client.get("/api/outbound/calls/").json()["results"]] == [mine.pk]
    assert key_client.get(f"/api/outbound/calls/{theirs_call.pk}/").status_code == 404
    assert key_client.get("/api/outbound/campaigns/").json()["results"] == []
    for suffix in ("", "contacts/"):
        assert key_client.get(f"/api/outbound/campaigns/{theirs_campaign.pk}/{suffix}").status_code == 404
    for action in ("start", "pause", "resume", "cancel"):
        assert key_client.post(f"/api/outbound/campaigns/{theirs_campaign.pk}/{action}/").status_code == 404
    upload = SimpleUploadedFile("x.csv", csv_bytes(["+79990001155"]))
    assert key_client.post(f"/api/outbound/campaigns/{theirs_campaign.pk}/import/", {"file": upload}, format="multipart").status_code == 404
    assert key_client.get("/api/outbound/do-not-call/").json()["results"] == []
    assert key_client.delete(f"/api/outbound/do-not-call/{theirs_dnc.pk}/").status_code == 404
    assert key_client.post("/api/outbound/calls/", {**CALL, "clinic": other.pk}, format="json").status_code == 404
    assert key_client.post("/api/outbound/campaigns/", {**CAMPAIGN, "clinic": other.pk}, format="json").status_code == 404
    theirs_campaign.refresh_from_db()
    assert theirs_campaign.status == "draft" and DoNotCall.objects.filter(pk=theirs_dnc.pk).exists()
    assert OutboundCall.objects.filter(clinic=other).count() == 1


@pytest.mark.django_db
def test_a_person_with_two_clinics_says_which_and_anonymous_callers_get_nothing(api_client, clinic, vox_settings):
    assert api_client.get("/api/outbound/calls/").status_code == 401
    user = UserFactory(is_staff=False)
    second = ClinicFactory()
    user.clinics.add(clinic, second)
    api_client.force_authenticate(user)
    ambiguous = api_client.post("/api/outbound/calls/", CALL, format="json")
    assert ambiguous.status_code == 400 and "clinic" in ambiguous.json()["error"]["fields"]
    created = api_client.post("/api/outbound/calls/", {**CALL, "clinic": second.pk}, format="json")
    assert created.status_code == 202 and created.json()["clinic"] == second.pk


@pytest.mark.django_db
def test_openapi_schema_documents_the_outbound_api(api_client):
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (b"/api/outbound/calls/", b"/api/outbound/campaigns/{id}/import/", b"/api/outbound/do-not-call/"):
        assert path in schema.content


@pytest.mark.django_db
def test_api_keys_of_a_clinic_work_for_its_own_campaign(api_client, vox_settings):
    clinic = ClinicFactory()
    _key, raw = api_key_create(clinic=clinic, name="crm")
    api_client.credentials(HTTP_X_API_KEY=raw)
    campaign = make_campaign(clinic, phones(1), start=False)
    assert api_client.post(f"/api/outbound/campaigns/{campaign.pk}/start/").json()["status"] == "running"

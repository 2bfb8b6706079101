"""The admin: "Start call" page, the live status view and its JSON, campaigns with a contacts file,
secrets never shown back, clinic scoping."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from calls.models import Campaign, CampaignContact, DoNotCall, OutboundCall, VoximplantConnection
from calls.outbound import services
from tests.factories import ClinicFactory, UserFactory
from tests.outbound.conftest import PHONE, deliver
from tests.outbound.test_calls import CALL
from tests.outbound.test_campaigns import csv_bytes, make_campaign


@pytest.mark.django_db
def test_start_call_page_starts_a_call_and_the_live_view_follows_it(admin_client, clinic, vox, vox_settings):
    start_url = reverse("admin:calls_outboundcall_start")
    page = admin_client.get(start_url)
    assert page.status_code == 200 and b'name="phone"' in page.content
    assert admin_client.get(reverse("admin:calls_outboundcall_add")).url == start_url

    bad = admin_client.post(start_url, {**CALL, "clinic": clinic.pk, "phone": "12345"})
    assert bad.status_code == 200 and b"E.164" in bad.content and not OutboundCall.objects.exists()

    response = admin_client.post(start_url, {**CALL, "clinic": clinic.pk})
    call = OutboundCall.objects.get()
    live_url = reverse("admin:calls_outboundcall_live", args=[call.pk])
    assert response.status_code == 302 and response.url == live_url
    live = admin_client.get(live_url)
    assert live.status_code == 200
    assert reverse("admin:calls_outboundcall_status", args=[call.pk]).encode() in live.content
    assert b"setTimeout(poll, 3000)" in live.content

    status_url = reverse("admin:calls_outboundcall_status", args=[call.pk])
    assert admin_client.get(status_url).json()["status"] == "queued"
    services.outbound_call_start(call.pk)
    deliver(admin_client, vox, vox.sessions[0])
    data = admin_client.get(status_url).json()
    call.refresh_from_db()
    assert data["status"] == "completed" and data["terminal"] is True and data["call_id"] == call.call_id
    assert data["stage"] == "ingested" and data["pipeline_finished"] is False
    assert admin_client.get(reverse("admin:calls_outboundcall_change", args=[call.pk])).status_code == 200


@pytest.mark.django_db
def test_clinic_staff_see_only_their_calls_and_cannot_start_one(client, clinic, vox_settings):
    mine = services.outbound_call_create(clinic=clinic, **CALL, enqueue=False)
    theirs = services.outbound_call_create(clinic=ClinicFactory(), **CALL, enqueue=False)
    user = UserFactory()
    user.clinics.add(clinic)
    client.force_login(user)
    listing = client.get(reverse("admin:calls_outboundcall_changelist"))
    assert listing.status_code == 200 and list(listing.context["cl"].queryset) == [mine]
    assert client.get(reverse("admin:calls_outboundcall_status", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:calls_outboundcall_status", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("admin:calls_outboundcall_live", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("admin:calls_outboundcall_start")).status_code == 403


@pytest.mark.django_db
def test_campaign_admin_imports_the_file_and_shows_progress(admin_client, clinic, vox_settings):
    upload = SimpleUploadedFile("c.csv", csv_bytes(["+79990001122,Анна", "nope,Борис"]))
    form = {
        "clinic": clinic.pk, "name": "Напоминания", "language": "ru", "voice": "female",
        "greeting": "Здравствуйте!", "prompt": "", "script": "Удобно?", "purpose": "",
        "max_concurrency": 2, "calling_windows": '{"0": [["09:00", "20:00"]]}', "max_attempts": 3,
        "retry_no_answer_minutes": 120, "retry_busy_minutes": 20, "retry_voicemail_minutes": 0,
        "contacts_file": upload,
    }
    response = admin_client.post(reverse("admin:calls_campaign_add"), form, follow=True)
    assert response.status_code == 200
    campaign = Campaign.objects.get()
    messages = [str(m) for m in response.context["messages"]]
    assert any("Imported 1 of 2 rows" in m and "row 3" in m for m in messages), messages
    assert CampaignContact.objects.get().phone == "+79990001122" and campaign.created_by == "admin"

    page = admin_client.get(reverse("admin:calls_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200 and "0.0%" in page.content.decode()
    admin_client.post(
        reverse("admin:calls_campaign_changelist"), {"action": "campaign_start", "_selected_action": [campaign.pk]}
    )
    campaign.refresh_from_db()
    assert campaign.status == "running"

    bad = admin_client.post(reverse("admin:calls_campaign_add"), {**form, "calling_windows": '{"0": [["20:00", "09:00"]]}', "contacts_file": ""})
    assert bad.status_code == 200 and Campaign.objects.count() == 1


@pytest.mark.django_db
def test_voximplant_secrets_are_never_shown_and_kept_when_left_empty(admin_client, clinic):
    account = VoximplantConnection.objects.create(clinic=clinic, account_id="42", api_key="secret-api-key", rule_id=1)
    url = reverse("admin:calls_voximplantconnection_change", args=[account.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and b"secret-api-key" not in page.content
    form = {"clinic": clinic.pk, "account_id": "42", "api_key": "", "service_account": "", "rule_id": 7, "caller_id": "+74950000001", "webhook_secret": ""}
    assert admin_client.post(url, form).status_code == 302
    account.refresh_from_db()
    assert account.api_key == "secret-api-key" and account.rule_id == 7
    both = admin_client.post(url, {**form, "service_account": '{"key_id": "k", "private_key": "p"}'})
    assert both.status_code == 200 and b"exactly one" in both.content


@pytest.mark.django_db
def test_do_not_call_admin_closes_waiting_contacts(admin_client, clinic, vox_settings):
    campaign = make_campaign(clinic, [PHONE], start=False)
    response = admin_client.post(reverse("admin:calls_donotcall_add"), {"clinic": clinic.pk, "phone": PHONE, "reason": "asked"})
    assert response.status_code == 302
    assert DoNotCall.objects.get().phone == PHONE
    assert CampaignContact.objects.get(campaign=campaign).state == "do_not_call"

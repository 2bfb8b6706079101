import pytest

from calls.models import CallEvent, Transcript
from tests.factories import CallFactory, ClinicFactory, UserFactory


@pytest.fixture
def staff_client(client):
    def make(*clinics, superuser=False):
        user = UserFactory(is_superuser=superuser)
        for clinic in clinics:
            clinic.members.add(user)
        client.force_login(user)
        return client

    return make


@pytest.mark.django_db
def test_staff_sees_only_their_clinics_calls(staff_client):
    mine, theirs = ClinicFactory(), ClinicFactory()
    my_call = CallFactory(clinic=mine, external_id="mine-1")
    their_call = CallFactory(clinic=theirs, external_id="theirs-1")
    client = staff_client(mine)
    listing = client.get("/admin/calls/call/")
    assert listing.status_code == 200
    ids = {row.pk for row in listing.context["cl"].result_list}
    assert ids == {my_call.pk}
    assert client.get(f"/admin/calls/call/{their_call.pk}/change/").status_code == 302  # "doesn't exist" redirect
    clinics = {c.pk for c in client.get("/admin/clinics/clinic/").context["cl"].result_list}
    assert clinics == {mine.pk}


@pytest.mark.django_db
def test_call_page_shows_dialogue_and_stage_history(staff_client):
    clinic = ClinicFactory()
    call = CallFactory(clinic=clinic)
    Transcript.objects.create(
        call=call,
        utterances=[
            {"speaker": "A", "role": "administrator", "start": 0, "end": 2, "text": "Клиника «Улыбка», здравствуйте!"},
            {"speaker": "B", "role": "patient", "start": 65, "end": 67, "text": "Хочу записаться"},
        ],
        roles={"A": "administrator", "B": "patient"},
        role_confidence=0.9,
    )
    CallEvent.objects.create(call=call, stage="transcribe", status="failed", error="elevenlabs: HTTP 401")
    page = staff_client(clinic).get(f"/admin/calls/call/{call.pk}/change/")
    html = page.content.decode()
    assert "Клиника «Улыбка», здравствуйте!" in html
    assert "01:05" in html  # timestamps as mm:ss
    assert "elevenlabs: HTTP 401" in html


@pytest.mark.django_db
def test_admin_reprocess_action(staff_client):
    clinic = ClinicFactory()
    call = CallFactory(clinic=clinic, stage="failed", failed_stage="transcribed")
    client = staff_client(clinic, superuser=True)
    response = client.post(
        "/admin/calls/call/", {"action": "reprocess_from_analyse", "_selected_action": [call.pk]}, follow=True
    )
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.stage == "transcribed"


@pytest.mark.django_db
def test_admin_quota_page_top_up(staff_client):
    from clinics.quotas import current_periods

    clinic = ClinicFactory()
    client = staff_client(clinic, superuser=True)
    url = f"/admin/clinics/clinic/{clinic.pk}/quota/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "top_up", "period": "week", "minutes": "15", "note": "promo"})
    assert response.status_code == 302
    assert current_periods(clinic)["week"].topped_up_seconds == 900
    invalid = client.post(url, {"action": "top_up", "period": "week"})
    assert invalid.status_code == 200 and "How many minutes?" in invalid.content.decode()

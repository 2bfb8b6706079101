"""Admin pages of the analysis: the call page's analysis block, summaries, per-clinic engine settings."""

from datetime import date

import pytest

from analysis.models import ClinicAnalysisSettings, PeriodSummary
from analysis.services import period_summary_generate
from calls import pipeline
from tests.analysis.conftest import make_transcribed_call
from tests.factories import ClinicFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def test_call_page_shows_criteria_objections_and_conversation_metrics(admin_client):
    call = make_transcribed_call()
    pipeline.drive(call.pk)
    page = admin_client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    assert "Приветствие (клиника и своё имя)" in page
    assert "Talk share" in page or "Доля речи" in page
    assert "Longest monologue" in page or "Самый длинный монолог" in page
    assert "Не применимо: возражений не было" in page


def test_period_summary_page_and_regenerate_action(admin_client):
    clinic = ClinicFactory()
    summary = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 9))
    page = admin_client.get(f"/admin/analysis/periodsummary/{summary.pk}/change/")
    assert page.status_code == 200
    response = admin_client.post(
        "/admin/analysis/periodsummary/", {"action": "regenerate", "_selected_action": [summary.pk]}
    )
    assert response.status_code == 302
    assert PeriodSummary.objects.get(pk=summary.pk).generated_at > summary.generated_at


def test_engine_settings_never_echo_the_key_and_keep_it_when_left_empty(admin_client):
    clinic = ClinicFactory()
    row = ClinicAnalysisSettings.objects.create(clinic=clinic, llm_api_key="sk-secret-value")
    url = f"/admin/analysis/clinicanalysissettings/{row.pk}/change/"
    assert "sk-secret-value" not in admin_client.get(url).content.decode()
    form = {"clinic": clinic.pk, "engine": "llm", "llm_model": "m", "llm_base_url": "http://llm.local/v1", "llm_api_key": "", "context": ""}
    assert admin_client.post(url, form).status_code == 302
    assert ClinicAnalysisSettings.objects.get(pk=row.pk).llm_api_key == "sk-secret-value"
    assert admin_client.post(url, {**form, "clear_llm_api_key": "on"}).status_code == 302
    assert ClinicAnalysisSettings.objects.get(pk=row.pk).llm_api_key == ""

"""The analysis in the call detail, reprocessing from the analysis stage, and the OpenAPI schema."""

import pytest

from analysis.models import Analysis, Scorecard
from analysis.services import scorecard_replace_criteria
from calls import pipeline
from calls.models import Stage
from tests.analysis.conftest import make_transcribed_call

pytestmark = pytest.mark.django_db

ANALYSIS_KEYS = {
    "engine", "scorecard_version", "call_type", "call_type_reason", "overall_score", "booked", "booked_source",
    "criteria", "objections", "summary", "disposition", "follow_up", "interest", "crm_status", "recommendations", "metrics",
}


def test_call_detail_carries_the_analysis(key_client, clinic):
    call = make_transcribed_call(clinic=clinic)
    pipeline.drive(call.pk)
    body = key_client.get(f"/api/calls/{call.pk}/").json()
    analysis = body["analysis"]
    assert set(analysis) == ANALYSIS_KEYS
    assert (analysis["engine"], analysis["call_type"], analysis["scorecard_version"]) == ("rules", "first_contact", "1")
    assert (analysis["booked"], analysis["booked_source"]) == (True, "transcript")
    assert isinstance(analysis["overall_score"], float)
    assert set(analysis["criteria"][0]) == {"key", "title", "score", "applicable", "comment"}
    assert {c["key"] for c in analysis["criteria"] if not c["applicable"]} == {"objections"}
    assert 2 <= len(analysis["recommendations"]) <= 3
    assert analysis["metrics"]["talk_share"]["administrator"] > 0.5
    listing = key_client.get("/api/calls/").json()["results"][0]
    assert listing["call_type"] == "first_contact" and listing["overall_score"] == analysis["overall_score"]


def test_reprocess_from_analysis_reanalyses_with_the_current_scorecard(key_client, clinic):
    call = make_transcribed_call(clinic=clinic)
    pipeline.drive(call.pk)
    scorecard = Scorecard.objects.get(clinic=clinic, call_type="first_contact")
    scorecard_replace_criteria(
        scorecard=scorecard, criteria=[{"key": "greeting", "title_ru": "Приветствие"}, {"key": "price", "title_ru": "Цена"}]
    )
    response = key_client.post(f"/api/calls/{call.pk}/reprocess/", {"stage": "analyse"}, format="json")
    assert response.status_code == 202
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED
    pipeline.drive(call.pk)
    analysis = Analysis.objects.get(call=call)
    assert analysis.scorecard_version == "2" and [c["key"] for c in analysis.criteria] == ["greeting", "price"]
    assert Analysis.objects.filter(call=call).count() == 1


def test_openapi_schema_documents_the_analysis_endpoints(api_client):
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (b"/api/scorecards/", b"/api/scorecards/{id}/", b"/api/scorecards/{id}/versions/",
                 b"/api/summaries/", b"/api/summaries/{id}/", b"/api/summaries/generate/"):
        assert path in schema.content
    assert b"AnalysisCriterion" in schema.content and b"ScorecardUpdate" in schema.content

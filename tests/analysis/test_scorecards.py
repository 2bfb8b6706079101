"""Scorecards: the seeded default, versioning, the admin and the API."""

import pytest
from django.core.exceptions import ValidationError

from analysis.models import Analysis, Criterion, Scorecard, ScorecardVersion
from analysis.services import scorecard_ensure_default, scorecard_replace_criteria
from calls import pipeline
from tests.analysis.conftest import make_transcribed_call
from tests.factories import ClinicFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_CRITERIA = [
    {"key": "greeting", "title_ru": "Приветствие", "rubric": "0 — нет; 10 — клиника и имя."},
    {"key": "booked", "title_ru": "Записан", "binary": True, "weight": "3"},
    {"key": "address", "title_ru": "Адрес", "binary": True, "applies_if": "booked"},
]


def test_default_scorecard_is_seeded_once(seeded_clinic):
    counts = dict(Scorecard.objects.filter(clinic=seeded_clinic).values_list("call_type", "criteria__key").order_by())
    assert set(counts) == {"first_contact", "repeat", "callback", "confirmation"}
    sizes = {s.call_type: s.criteria.count() for s in Scorecard.objects.filter(clinic=seeded_clinic)}
    assert sizes == {"first_contact": 17, "repeat": 10, "callback": 9, "confirmation": 9}
    address = Criterion.objects.get(scorecard__clinic=seeded_clinic, scorecard__call_type="first_contact", key="address")
    assert (address.binary, address.applies_if) == (True, "booked") and "10 —" in address.rubric
    assert scorecard_ensure_default(seeded_clinic) == 0
    assert ScorecardVersion.objects.filter(scorecard__clinic=seeded_clinic, version=1).count() == 4


def test_replacing_criteria_creates_a_new_version_and_keeps_the_old_snapshot(seeded_clinic):
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="first_contact")
    scorecard = scorecard_replace_criteria(scorecard=scorecard, criteria=NEW_CRITERIA, actor="olga")
    assert scorecard.version == 2 and scorecard.updated_by == "olga"
    assert list(scorecard.criteria.values_list("key", flat=True)) == ["greeting", "booked", "address"]
    versions = {v.version: v for v in scorecard.versions.all()}
    assert len(versions[1].criteria) == 17 and [c["key"] for c in versions[2].criteria] == ["greeting", "booked", "address"]


@pytest.mark.parametrize(
    "criteria, message",
    [
        ([], "at least one"),
        ([{"key": "a", "title_ru": "A"}, {"key": "a", "title_ru": "B"}], "Duplicate"),
        ([{"key": "Bad Key", "title_ru": "A"}], "latin"),
        ([{"key": "a", "title_ru": "A", "applies_if": "sometimes"}], "applies_if"),
        ([{"key": "a", "title_ru": "A", "weight": "0"}], "weight"),
        ([{"key": "a", "title_ru": ""}], "title_ru"),
    ],
)
def test_invalid_criteria_are_rejected(seeded_clinic, criteria, message):
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="repeat")
    with pytest.raises(ValidationError) as error:
        scorecard_replace_criteria(scorecard=scorecard, criteria=criteria)
    assert message in str(error.value)
    assert Scorecard.objects.get(pk=scorecard.pk).version == 1


def test_each_analysis_records_the_scorecard_version_it_used(seeded_clinic):
    call = make_transcribed_call(clinic=seeded_clinic)
    assert pipeline.run_step(call.pk, "analyse") == "succeeded"
    assert Analysis.objects.get(call=call).scorecard_version == "1"
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="first_contact")
    scorecard_replace_criteria(scorecard=scorecard, criteria=NEW_CRITERIA)
    pipeline.reprocess_queryset(type(call).objects.filter(pk=call.pk), from_step="analyse")
    assert pipeline.run_step(call.pk, "analyse") == "succeeded"
    analysis = Analysis.objects.get(call=call)
    assert analysis.scorecard_version == "2"
    assert [c["key"] for c in analysis.criteria] == ["greeting", "booked", "address"]
    # Weighted: greeting 10 ×1, booked 10 ×3, address 10 ×1.
    assert float(analysis.overall_score) == 10.0


# --- admin ------------------------------------------------------------------------------------------
def _inline_post_data(scorecard, **changes):
    criteria = list(scorecard.criteria.order_by("position", "id"))
    data = {
        "criteria-TOTAL_FORMS": str(len(criteria)),
        "criteria-INITIAL_FORMS": str(len(criteria)),
        "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
        "versions-TOTAL_FORMS": str(scorecard.versions.count()),
        "versions-INITIAL_FORMS": str(scorecard.versions.count()),
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    for i, version in enumerate(scorecard.versions.order_by("-version")):
        data[f"versions-{i}-id"] = str(version.pk)
        data[f"versions-{i}-scorecard"] = str(scorecard.pk)
    for i, c in enumerate(criteria):
        row = {
            "id": c.pk, "scorecard": scorecard.pk, "position": c.position, "key": c.key, "weight": c.weight,
            "title_ru": c.title_ru, "title_en": c.title_en, "applies_if": c.applies_if, "rubric": c.rubric,
            "rule_phrases": c.rule_phrases,
        }
        row.update(changes.get(c.key, {}))
        if row.get("binary", c.binary):
            row["binary"] = "on"
        else:
            row.pop("binary", None)
        data.update({f"criteria-{i}-{k}": "" if v is None else str(v) for k, v in row.items()})
    return data


def test_editing_in_the_admin_bumps_the_version(client, seeded_clinic):
    client.force_login(UserFactory(is_superuser=True))
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="repeat")
    url = f"/admin/analysis/scorecard/{scorecard.pk}/change/"
    assert client.get(url).status_code == 200

    unchanged = client.post(url, _inline_post_data(scorecard))
    assert unchanged.status_code == 302
    assert Scorecard.objects.get(pk=scorecard.pk).version == 1

    edited = client.post(url, _inline_post_data(scorecard, greeting={"weight": "2.5", "rubric": "Новая рубрика"}))
    assert edited.status_code == 302, edited.content[:2000]
    scorecard.refresh_from_db()
    assert scorecard.version == 2
    snapshot = scorecard.versions.get(version=2).criteria
    assert next(c for c in snapshot if c["key"] == "greeting")["weight"] == "2.50"


def test_admin_scorecard_list_seeds_defaults_for_the_users_clinics(client):
    clinic = ClinicFactory()
    user = UserFactory(is_superuser=False)
    clinic.members.add(user)
    client.force_login(user)
    client.get("/admin/analysis/scorecard/")
    assert Scorecard.objects.filter(clinic=clinic).count() == 4


# --- API --------------------------------------------------------------------------------------------
def test_api_lists_the_clinics_scorecards_only(key_client, clinic):
    ClinicFactory()  # another clinic, never seeded through this key
    body = key_client.get("/api/scorecards/").json()
    assert {row["call_type"] for row in body} == {"first_contact", "repeat", "callback", "confirmation"}
    assert {row["clinic"] for row in body} == {clinic.pk}
    first = next(row for row in body if row["call_type"] == "first_contact")
    assert len(first["criteria"]) == 17 and first["version"] == 1
    assert Scorecard.objects.exclude(clinic=clinic).count() == 0
    only = key_client.get("/api/scorecards/?call_type=repeat").json()
    assert [row["call_type"] for row in only] == ["repeat"]


def test_api_put_is_for_staff_only_and_creates_a_version(api_client, key_client, clinic):
    key_client.get("/api/scorecards/")
    scorecard = Scorecard.objects.get(clinic=clinic, call_type="callback")
    url = f"/api/scorecards/{scorecard.pk}/"
    denied = key_client.put(url, {"criteria": NEW_CRITERIA}, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"

    staff = UserFactory()
    clinic.members.add(staff)
    api_client.force_authenticate(staff)
    response = api_client.put(url, {"criteria": NEW_CRITERIA}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 2 and [c["key"] for c in body["criteria"]] == ["greeting", "booked", "address"]
    assert body["criteria"][1]["weight"] == 3.0
    versions = api_client.get(f"{url}versions/").json()
    assert [v["version"] for v in versions] == [2, 1]

    bad = api_client.put(url, {"criteria": [{"key": "x", "title_ru": "X"}, {"key": "x", "title_ru": "Y"}]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    assert "Duplicate" in bad.json()["error"]["message"]
    assert api_client.patch(url, {"criteria": []}, format="json").status_code == 405


def test_api_put_cannot_reach_another_clinics_scorecard(api_client, clinic):
    other = ClinicFactory()
    scorecard_ensure_default(other)
    staff = UserFactory()
    clinic.members.add(staff)
    api_client.force_authenticate(staff)
    scorecard = Scorecard.objects.get(clinic=other, call_type="repeat")
    response = api_client.put(f"/api/scorecards/{scorecard.pk}/", {"criteria": NEW_CRITERIA}, format="json")
    assert response.status_code == 404
    assert Scorecard.objects.get(pk=scorecard.pk).version == 1

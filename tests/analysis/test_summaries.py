"""Weekly and monthly summaries: zones, no mixing of call types, schedule, command and API."""

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analysis.models import PeriodSummary, Scorecard
from analysis.selectors import zone
from analysis.services import period_bounds, period_summaries_generate_due, period_summary_generate
from tests.factories import AdministratorFactory, AnalysisFactory, CallFactory, ClinicFactory

pytestmark = pytest.mark.django_db


def crit(key, score, applicable=True, title=None):
    return {"key": key, "title": title or key, "score": score if applicable else None, "applicable": applicable, "comment": ""}


def analysed(clinic, day, call_type, criteria, *, administrator=None, overall=None, objections=()):
    call = CallFactory(clinic=clinic, administrator=administrator, started_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC))
    return AnalysisFactory(
        call=call, call_type=call_type, criteria=criteria, overall_score=overall, objections=list(objections)
    )


@pytest.fixture
def week(db):
    """Mon 9 – Sun 15 November 2026: two first contacts, one repeat, one "other", one call next week."""
    clinic = ClinicFactory()
    anna, olga = AdministratorFactory(clinic=clinic, name="Анна"), AdministratorFactory(clinic=clinic, name="Ольга")
    analysed(clinic, date(2026, 11, 9), "first_contact",
             [crit("greeting", 9), crit("price", 6), crit("needs", 2), crit("documents", 10)], administrator=anna,
             overall=Decimal("6.75"), objections=[{"key": "expensive", "handled": False}])
    analysed(clinic, date(2026, 11, 15), "first_contact",
             [crit("greeting", 8), crit("price", 4), crit("needs", 3), crit("documents", None, applicable=False)],
             administrator=olga, overall=Decimal("5.00"))
    analysed(clinic, date(2026, 11, 11), "repeat", [crit("greeting", 2), crit("tone", 10)], administrator=anna, overall=Decimal("6.00"))
    analysed(clinic, date(2026, 11, 12), "other", [], administrator=olga)
    analysed(clinic, date(2026, 11, 16), "first_contact", [crit("greeting", 0)], administrator=anna, overall=Decimal("0"))
    CallFactory(clinic=clinic, started_at=datetime(2026, 11, 10, 9, tzinfo=UTC), stage="skipped", skip_reason="missed")
    return clinic, anna, olga


def test_zones():
    assert [zone(Decimal(v)) for v in ("8", "9.5", "7.99", "5", "4.99", "0")] == [
        "strong", "strong", "growth", "growth", "critical", "critical"
    ]
    assert zone(None) is None


def test_period_bounds():
    assert period_bounds("week", date(2026, 11, 12)) == (date(2026, 11, 9), date(2026, 11, 15))
    assert period_bounds("month", date(2026, 2, 10)) == (date(2026, 2, 1), date(2026, 2, 28))


def test_clinic_summary_keeps_call_types_apart(week):
    clinic, _anna, _olga = week
    summary = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 12))
    assert (summary.start, summary.end, summary.complete) == (date(2026, 11, 9), date(2026, 11, 15), True)
    data = summary.data
    assert (data["calls_total"], data["calls_analysed"], data["calls_scored"], data["calls_other"]) == (5, 4, 3, 1)
    assert summary.average_score == Decimal("5.92")  # (6.75 + 5 + 6) / 3
    types = {t["call_type"]: t for t in data["types"]}
    assert list(types) == ["first_contact", "repeat"]
    first = {c["key"]: c for c in types["first_contact"]["criteria"]}
    assert (first["greeting"]["average"], first["greeting"]["zone"]) == ("8.50", "strong")
    assert (first["price"]["average"], first["price"]["zone"]) == ("5.00", "growth")
    assert (first["needs"]["average"], first["needs"]["zone"]) == ("2.50", "critical")
    assert (first["documents"]["average"], first["documents"]["count"]) == ("10.00", 1)  # not applicable ≠ 0
    assert types["first_contact"]["critical"] == ["needs"] and types["first_contact"]["strong"] == ["greeting", "documents"]
    # The repeat call's weak greeting is not averaged into the first contacts' greeting.
    repeat = {c["key"]: c for c in types["repeat"]["criteria"]}
    assert (repeat["greeting"]["average"], repeat["greeting"]["zone"]) == ("2.00", "critical")
    problems = [(p["kind"], p.get("call_type"), p["key"], p["count"]) for p in data["problems"]]
    assert problems[0] == ("criterion", "first_contact", "needs", 2)
    assert ("objection", None, "expensive", 1) in problems
    assert ("criterion", "repeat", "greeting", 1) in problems
    # Templated recommendations: critical zones first, then growth, then a strength.
    assert summary.recommendations_source == "template"
    assert summary.recommendations[0].startswith("«Первичное обращение» · needs (2.50, критическая зона)")
    assert any("Сильная сторона" in r for r in summary.recommendations)


def test_administrator_summary_counts_only_their_calls(week):
    clinic, anna, _olga = week
    summary = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 9), administrator=anna)
    assert summary.administrator == anna and summary.data["calls_scored"] == 2
    greeting = next(c for c in summary.data["types"][0]["criteria"] if c["key"] == "greeting")
    assert greeting["average"] == "9.00"
    again = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 15), administrator=anna)
    assert again.pk == summary.pk
    assert PeriodSummary.objects.count() == 1


def test_llm_writes_recommendations_when_configured(week, fake_llm):
    clinic, _anna, _olga = week
    fake_llm.responder = lambda payload: {"recommendations": ["Выявляйте потребность: 2–3 вопроса о жалобе."]}
    summary = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 9))
    assert summary.recommendations_source == "llm"
    assert summary.recommendations == ["Выявляйте потребность: 2–3 вопроса о жалобе."]
    assert summary.prompt_tokens > 0 and summary.engine_model
    prompt = fake_llm.last_json["messages"][1]["content"]
    assert "Тип «Первичное обращение»" in prompt and "Тип «Повторный пациент»" in prompt
    assert "needs: 2.50 (критическая зона" in prompt


def test_llm_failure_falls_back_to_the_template(week, fake_llm):
    clinic, _anna, _olga = week
    fake_llm.queue_invalid("не JSON")
    summary = period_summary_generate(clinic=clinic, kind="week", day=date(2026, 11, 9))
    assert summary.recommendations_source == "template" and summary.recommendations
    assert "llm_error" in summary.data


def test_due_summaries_follow_each_clinics_time_zone_and_run_once(week):
    moscow, anna, olga = week
    vladivostok = ClinicFactory(time_zone="Asia/Vladivostok")
    analysed(vladivostok, date(2026, 11, 10), "first_contact", [crit("greeting", 7)], overall=Decimal("7"))
    # Sunday 20:00 UTC: already Monday 06:00 in Vladivostok, still Sunday 23:00 in Moscow.
    assert period_summaries_generate_due(now=datetime(2026, 11, 15, 20, 0, tzinfo=UTC)) == 1
    assert PeriodSummary.objects.get().clinic == vladivostok
    # Monday 00:30 in Moscow: within the grace period, nothing yet.
    assert period_summaries_generate_due(now=datetime(2026, 11, 15, 21, 30, tzinfo=UTC)) == 0
    # Monday 03:00 in Moscow: the clinic and each administrator with analysed calls.
    assert period_summaries_generate_due(now=datetime(2026, 11, 16, 0, 0, tzinfo=UTC)) == 3
    rows = PeriodSummary.objects.filter(clinic=moscow, kind="week", start=date(2026, 11, 9))
    assert {r.administrator for r in rows} == {None, anna, olga}
    assert period_summaries_generate_due(now=datetime(2026, 11, 16, 1, 0, tzinfo=UTC)) == 0


def test_due_monthly_summary_on_the_first(week):
    clinic, _anna, _olga = week
    period_summaries_generate_due(now=datetime(2026, 12, 1, 0, 0, tzinfo=UTC))  # 03:00 in Moscow
    month = PeriodSummary.objects.get(clinic=clinic, kind="month", administrator=None)
    assert (month.start, month.end, month.data["calls_scored"]) == (date(2026, 11, 1), date(2026, 11, 30), 4)


def test_generate_summaries_command(week):
    clinic, _anna, _olga = week
    out = StringIO()
    call_command("generate_summaries", "--clinic", clinic.slug, "--date", "2026-11-10", "--administrators", "--no-llm", stdout=out)
    assert PeriodSummary.objects.filter(clinic=clinic, kind="week").count() == 3
    assert "scored call(s)" in out.getvalue()
    call_command("generate_summaries", "--due", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("generate_summaries")
    with pytest.raises(CommandError):
        call_command("generate_summaries", "--clinic", "nope")


def test_seed_scorecards_command():
    clinic = ClinicFactory()
    out = StringIO()
    call_command("seed_scorecards", "--clinic", clinic.slug, stdout=out)
    assert Scorecard.objects.filter(clinic=clinic).count() == 4 and "4 scorecard(s)" in out.getvalue()
    call_command("seed_scorecards", stdout=out)
    assert Scorecard.objects.filter(clinic=clinic).count() == 4
    with pytest.raises(CommandError):
        call_command("seed_scorecards", "--clinic", "nope")


# --- API --------------------------------------------------------------------------------------------
def test_api_generate_list_and_detail(key_client, clinic):
    admin = AdministratorFactory(clinic=clinic)
    analysed(clinic, date(2026, 11, 10), "first_contact", [crit("greeting", 4)], administrator=admin, overall=Decimal("4"))
    created = key_client.post("/api/summaries/generate/", {"kind": "week", "date": "2026-11-12"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["start"], body["end"], body["average_score"]) == ("2026-11-09", "2026-11-15", 4.0)
    assert body["data"]["types"][0]["critical"] == ["greeting"]
    mine = key_client.post(
        "/api/summaries/generate/", {"kind": "month", "date": "2026-11-12", "administrator": admin.pk}, format="json"
    )
    assert mine.status_code == 201 and mine.json()["administrator"]["id"] == admin.pk

    listing = key_client.get("/api/summaries/").json()
    assert listing["count"] == 2
    assert [r["kind"] for r in key_client.get("/api/summaries/?scope=clinic").json()["results"]] == ["week"]
    assert [r["kind"] for r in key_client.get(f"/api/summaries/?administrator={admin.pk}").json()["results"]] == ["month"]
    assert key_client.get(f"/api/summaries/{body['id']}/").json()["id"] == body["id"]


def test_api_summaries_are_scoped_and_validated(key_client, clinic):
    other = ClinicFactory()
    theirs = period_summary_generate(clinic=other, kind="week", day=date(2026, 11, 9))
    assert key_client.get(f"/api/summaries/{theirs.pk}/").status_code == 404
    assert key_client.get("/api/summaries/").json()["count"] == 0
    assert key_client.post("/api/summaries/generate/", {"kind": "week", "date": "2026-11-09", "clinic": other.pk}, format="json").status_code == 404
    foreign_admin = AdministratorFactory(clinic=other)
    bad = key_client.post(
        "/api/summaries/generate/", {"kind": "week", "date": "2026-11-09", "administrator": foreign_admin.pk}, format="json"
    )
    assert bad.status_code == 400 and "administrator" in bad.json()["error"]["fields"]
    assert key_client.post("/api/summaries/generate/", {"kind": "year", "date": "2026-11-09"}, format="json").status_code == 400

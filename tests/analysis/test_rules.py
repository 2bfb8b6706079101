"""The offline rule engine: phrase matching, the scorecard from the database, and the demo calls."""

import json

import pytest

from analysis.engines import AnalysisInput, Turn
from analysis.engines.phrases import matches, normalise
from analysis.engines.rules import RuleEngine
from analysis.models import Analysis, Criterion, Scorecard
from analysis.selectors import scorecard_specs
from analysis.services import scorecard_ensure_default
from calls import pipeline
from calls.demo import DATA_DIR, demo_setup
from calls.models import Call, Stage
from tests.analysis.conftest import make_transcribed_call


def test_phrases_tolerate_inflection_and_respect_negation():
    text = normalise("Я у вас уже был на консультации. Записала вас! Не приду.")
    assert matches(text, ["я у вас был*"]) == ["я у вас был*"]
    assert matches(text, ["записал*"]) == ["записал*"]
    assert matches(normalise("Ну давайте в семь"), ["давайте"]) == ["давайте"]
    assert matches(normalise("Нет, не подходит"), ["подходит"], allow_negated=False) == []
    assert matches(normalise("вам подходит?"), ["подходит"], allow_negated=False) == ["подходит"]


def turns(*pairs):
    return [Turn(role, i * 5.0, i * 5.0 + 4.0, text) for i, (role, text) in enumerate(pairs)]


@pytest.fixture
def specs(seeded_clinic):
    return scorecard_specs(seeded_clinic)


def run(specs, *pairs, direction="inbound", crm_booked=None):
    data = AnalysisInput("Клиника «Зубик»", direction, 60, turns(*pairs), crm_booked=crm_booked, scorecards=specs)
    return RuleEngine().analyse(data)


@pytest.mark.django_db
def test_accepting_an_offered_time_is_a_booking_but_agreeing_to_a_call_back_is_not(specs):
    booked = run(
        specs,
        ("administrator", "Клиника, здравствуйте!"),
        ("patient", "Хочу на чистку, давайте я запишусь."),
        ("administrator", "Суббота, одиннадцать."),
        ("patient", "Суббота — это четырнадцатое?"),
        ("administrator", "Да."),
        ("patient", "Хорошо, давайте."),
    )
    assert booked.booked is True
    callback = run(
        specs,
        ("administrator", "Клиника, здравствуйте!"),
        ("patient", "Сколько стоят брекеты? Дорого, я подумаю."),
        ("administrator", "Понимаю. Давайте я вам перезвоню в понедельник в 18:00, удобно?"),
        ("patient", "Да, давайте."),
    )
    assert callback.booked is False and callback.disposition == "callback_agreed"


@pytest.mark.django_db
def test_the_last_booking_event_wins(specs):
    cancelled = run(
        specs,
        ("administrator", "Звоню подтвердить вашу запись на завтра в 10:00."),
        ("patient", "Ой, я не приду, отменяйте."),
        ("administrator", "Хорошо, запись отменяю."),
        direction="outbound",
    )
    assert (cancelled.call_type, cancelled.booked, cancelled.disposition) == ("confirmation", False, "cancelled")
    moved = run(
        specs,
        ("administrator", "Клиника, здравствуйте!"),
        ("patient", "Я записан к вам на завтра, мне нужно перенести."),
        ("administrator", "Переношу на понедельник, 19:00. Завтрашнюю запись отменяю."),
    )
    assert (moved.call_type, moved.booked) == ("repeat", True)


@pytest.mark.django_db
def test_the_scorecard_from_the_database_drives_the_rules(seeded_clinic):
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="first_contact")
    Criterion.objects.filter(scorecard=scorecard, key="doctor").delete()
    Criterion.objects.create(
        scorecard=scorecard, key="upsell", title_ru="Допродажа гигиены", rule_phrases="гигиен*\nчистк*", position=99
    )
    Criterion.objects.filter(scorecard=scorecard, key="price").update(binary=True)
    result = RuleEngine().analyse(
        AnalysisInput(
            "Клиника",
            "inbound",
            60,
            turns(("administrator", "Здравствуйте! Гигиена — от 5000 рублей."), ("patient", "Спасибо, подумаю.")),
            scorecards=scorecard_specs(seeded_clinic),
        )
    )
    by_key = {c.key: c for c in result.criteria}
    assert "doctor" not in by_key
    assert by_key["upsell"].score == 10 and "гигиен*" in by_key["upsell"].comment
    assert by_key["price"].score == 10  # binary now: 10 for a named price, never 5


@pytest.mark.django_db
def test_a_criterion_without_any_rule_is_not_assessed(seeded_clinic):
    scorecard = Scorecard.objects.get(clinic=seeded_clinic, call_type="first_contact")
    Criterion.objects.create(scorecard=scorecard, key="empathy", title_ru="Эмпатия", position=99)
    call = make_transcribed_call(clinic=seeded_clinic)
    assert pipeline.run_step(call.pk, "analyse") == "succeeded"
    empathy = next(c for c in Analysis.objects.get(call=call).criteria if c["key"] == "empathy")
    assert empathy["applicable"] is False and empathy["score"] is None


@pytest.mark.django_db
def test_step_analyse_seeds_the_default_scorecard_lazily(transcribed_call):
    assert not Scorecard.objects.filter(clinic=transcribed_call.clinic).exists()
    assert pipeline.run_step(transcribed_call.pk, "analyse") == "succeeded"
    assert Scorecard.objects.filter(clinic=transcribed_call.clinic).count() == 4
    analysis = Analysis.objects.get(call=transcribed_call)
    assert analysis.scorecard_version == "1" and analysis.metrics["admin_questions"] >= 1


@pytest.mark.django_db
def test_demo_calls_get_the_expected_type_and_booking(settings):
    """Every demo call: the call type and booking of its "expected" block (rules, no LLM)."""
    settings.OPENAI_API_KEY = ""
    settings.ANALYSIS_ENGINE = "auto"
    result = demo_setup(keep_dates=True)
    for call in result.calls:
        pipeline.drive(call.pk)
    mismatches = []
    for path in sorted(DATA_DIR.glob("*.json")):
        item = json.loads(path.read_text(encoding="utf-8"))
        call = Call.objects.get(clinic=result.clinic, external_id=item["external_id"])
        analysis = Analysis.objects.filter(call=call).first()
        got = (analysis.call_type if analysis else None, analysis.booked if analysis else None)
        want = (item["expected"]["call_type"], item["expected"]["booked"])
        if got != want:
            mismatches.append(f"{path.stem}: got {got}, expected {want}")
    assert mismatches == []

    by_id = {c.external_id: Call.objects.get(pk=c.pk) for c in result.calls}
    # A booked first contact is booked (from the transcript) and scored on its booked-only criteria.
    first = by_id["demo-001"]
    assert (first.booked, first.booked_source) == (True, "transcript")
    assert {c["key"]: c["applicable"] for c in first.analysis.criteria}["address"] is True
    assert first.analysis.overall_score >= 8
    # Poorly handled calls score clearly lower than good ones.
    assert by_id["demo-004"].analysis.overall_score < 5 and by_id["demo-007"].analysis.overall_score < 5
    # The missed, busy and too-short calls are not analysed.
    for external_id in ("demo-024", "demo-025", "demo-026"):
        assert by_id[external_id].stage == Stage.SKIPPED and not Analysis.objects.filter(call=by_id[external_id]).exists()
    # "Other" calls are not scored and booking does not apply.
    other = by_id["demo-019"]
    assert (other.analysis.criteria, other.analysis.overall_score, other.booked) == ([], None, None)
    assert "поставщик" in other.analysis.call_type_reason.lower()
    # Booked but no passport reminder: documents = 0 (applicable), no objection: excluded.
    criteria = {c["key"]: c for c in by_id["demo-023"].analysis.criteria}
    assert criteria["documents"]["score"] == 0 and criteria["objections"]["applicable"] is False
    # Objections of the typical six, and whether they were handled.
    assert {(o["key"], o["handled"]) for o in by_id["demo-008"].analysis.objections} == {("comparing", True), ("consult", True)}
    assert {(o["key"], o["handled"]) for o in by_id["demo-007"].analysis.objections} == {("expensive", False), ("think", False)}
    # The IVR voice is not the administrator in the metrics.
    metrics = by_id["demo-022"].analysis.metrics
    assert metrics["talk_share"]["other"] > 0 and metrics["first_response_seconds"] > 20


@pytest.mark.django_db
def test_demo_seeds_scorecards_once(settings):
    settings.OPENAI_API_KEY = ""
    result = demo_setup(keep_dates=True)
    scorecard_ensure_default(result.clinic)
    scorecard_ensure_default(result.clinic)
    assert Scorecard.objects.filter(clinic=result.clinic).count() == 4

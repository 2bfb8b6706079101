"""The scorecard rules every engine's output goes through (analysis.scoring)."""

from decimal import Decimal

import pytest

from analysis.engines import AnalysisInput, AnalysisOutput, CriterionResult, CriterionSpec, Objection, ScorecardSpec
from analysis.scoring import NOT_APPLICABLE_BOOKED, NOT_APPLICABLE_OBJECTION, coerce_score, finalise, overall_score

SCORECARD = ScorecardSpec(
    call_type="first_contact",
    version=3,
    criteria=(
        CriterionSpec("greeting", "Приветствие"),
        CriterionSpec("price", "Цена", weight=Decimal("2")),
        CriterionSpec("appointment_offered", "Предложена запись", binary=True),
        CriterionSpec("booked", "Записан", binary=True),
        CriterionSpec("address", "Адрес", binary=True, applies_if="booked"),
        CriterionSpec("objections", "Возражения", applies_if="objection"),
    ),
)


def data(crm_booked=None) -> AnalysisInput:
    return AnalysisInput("Клиника", "inbound", 60, [], crm_booked=crm_booked, scorecards={"first_contact": SCORECARD})


def output(scores: dict, *, booked=False, objections=(), call_type="first_contact") -> AnalysisOutput:
    return AnalysisOutput(
        engine="test",
        call_type=call_type,
        criteria=[CriterionResult(k, k, v, True, f"{k}!") for k, v in scores.items()],
        booked=booked,
        objections=[Objection(key, "цитата", True) for key in objections],
        recommendations=[" a ", "", "b", "c", "d"],
    )


@pytest.mark.parametrize(
    "value, binary, expected",
    [(7, False, 7), (7.5, False, 8), (11, False, 10), (-2, False, 0), ("6", False, 6), (None, False, None),
     ("x", False, None), (float("nan"), False, None), (True, False, None), (4.9, True, 0), (5, True, 10), (9, True, 10)],
)
def test_coerce_score(value, binary, expected):
    assert coerce_score(value, binary=binary) == expected


def test_overall_is_the_weighted_mean_of_applicable_criteria_only():
    criteria = [
        CriterionResult("a", "", 10, True, ""),
        CriterionResult("b", "", 4, True, ""),
        CriterionResult("c", "", 0, False, ""),  # excluded, not a zero
        CriterionResult("d", "", None, True, ""),  # not scored
    ]
    assert overall_score(criteria) == Decimal("7.00")
    assert overall_score(criteria, {"b": Decimal("3")}) == Decimal("5.50")  # (10 + 3×4) / 4
    assert overall_score([]) is None


def test_not_booked_and_no_objection_exclude_conditional_criteria():
    result, overall = finalise(output({"greeting": 9, "price": 6, "appointment_offered": 7, "address": 10, "objections": 2}), data())
    by_key = {c.key: c for c in result.criteria}
    assert [c.key for c in result.criteria] == [c.key for c in SCORECARD.criteria]  # scorecard order
    assert by_key["address"].applicable is False and by_key["address"].comment == NOT_APPLICABLE_BOOKED
    assert by_key["objections"].score is None and by_key["objections"].comment == NOT_APPLICABLE_OBJECTION
    assert by_key["appointment_offered"].score == 10  # binary: 7 → 10
    assert by_key["booked"].score == 0
    # (9 + 2×6 + 10 + 0) / (1 + 2 + 1 + 1)
    assert overall == Decimal("6.20")
    assert result.scorecard_version == "3"
    assert result.recommendations == ["a", "b", "c"]


def test_booking_and_objection_make_conditional_criteria_count():
    result, overall = finalise(
        output({"greeting": 8, "price": 8, "appointment_offered": 10, "address": 3, "objections": 6}, booked=True, objections=["expensive"]),
        data(),
    )
    by_key = {c.key: c.score for c in result.criteria}
    assert by_key == {"greeting": 8, "price": 8, "appointment_offered": 10, "booked": 10, "address": 0, "objections": 6}
    assert overall == Decimal("7.14")  # (8 + 16 + 10 + 10 + 0 + 6) / 7


def test_crm_fact_overrides_the_transcript_for_scoring():
    result, _ = finalise(output({"greeting": 8, "price": 8, "appointment_offered": 10, "address": 10}, booked=False), data(crm_booked=True))
    by_key = {c.key: c for c in result.criteria}
    assert by_key["booked"].score == 10 and by_key["booked"].comment.startswith("По данным CRM")
    assert by_key["address"].applicable
    result, _ = finalise(output({"greeting": 8, "price": 8, "appointment_offered": 10, "address": 10}, booked=True), data(crm_booked=False))
    by_key = {c.key: c for c in result.criteria}
    assert by_key["booked"].score == 0 and not by_key["address"].applicable
    assert result.booked is True  # the transcript's own finding is kept for the record


def test_unknown_criteria_objections_and_missing_scores():
    out = output({"greeting": 8, "bogus": 10, "price": None}, objections=["expensive", "expensive", "made_up"])
    result, overall = finalise(out, data())
    keys = [c.key for c in result.criteria]
    assert "bogus" not in keys
    by_key = {c.key: c for c in result.criteria}
    assert by_key["price"].applicable is False and by_key["price"].comment.startswith("Не оценено")
    assert by_key["appointment_offered"].applicable is False  # the engine gave nothing: not assessed, not zero
    assert [o.key for o in result.objections] == ["expensive"] and result.objections[0].label == "Дорого"
    assert overall == Decimal("4.00")  # greeting 8 and booked 0


def test_other_calls_are_not_scored():
    result, overall = finalise(output({"greeting": 10}, booked=True, objections=["think"], call_type="other"), data())
    assert (result.criteria, result.booked, result.objections, overall, result.scorecard_version) == ([], None, [], None, "")

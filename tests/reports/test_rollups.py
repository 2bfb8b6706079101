from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from calls import pipeline
from calls.models import Call
from calls.services import call_ingest
from reports import rollups, selectors
from reports.models import CallDetail, DailyCriterion, DailyMetric, PeriodRecommendation, RollupDirtyDay
from reports.rollups import refresh
from tests.factories import AdministratorFactory, PeriodSummaryFactory
from tests.reports.conftest import DAY, criterion, make_call

pytestmark = pytest.mark.django_db


def _recompute(clinic, first=DAY, last=DAY):
    return rollups.rollups_recompute(clinic=clinic, date_from=first, date_to=last)


def _snapshot(model, order):
    return [
        {k: v for k, v in row.items() if k not in {"id", "computed_at", "links_expire_at", "call_url", "recording_url"}}
        for row in model.objects.order_by(*order).values()
    ]


def _totals(clinic, first=DAY, last=DAY, **filters):
    return selectors.metrics_totals(
        selectors.metric_rows(selectors.MetricFilters(clinic_ids=[clinic.pk], date_from=first, date_to=last, **filters))
    )


def test_metric_definitions_are_productmd_exactly(clinic_a, admin_a):
    # Four scored calls (a zero included), one "other", one analysed-but-unscored, one unanalysed
    # answered call, and one missed call.
    make_call(clinic_a, administrator=admin_a, call_type="first_contact", overall="0", booked=False, duration=60)
    make_call(clinic_a, administrator=admin_a, call_type="first_contact", overall="6.99", booked=True, duration=100)
    make_call(clinic_a, administrator=admin_a, call_type="repeat", overall="7", booked=True, interest="high", duration=200)
    make_call(clinic_a, administrator=admin_a, call_type="callback", overall="10", interest="medium", duration=40)
    make_call(clinic_a, administrator=admin_a, call_type="other", overall=None, duration=30)
    make_call(clinic_a, call_type="confirmation", overall=None, duration=50)
    make_call(clinic_a, booked=True, duration=90)
    make_call(clinic_a, status=Call.Status.MISSED, duration=0)
    _recompute(clinic_a)

    totals = _totals(clinic_a)
    assert totals["calls"] == 8
    assert totals["answered"] == 7
    assert totals["analysed"] == 6
    assert totals["scored"] == 4
    # quality % = mean overall of scored calls × 10: (0 + 6.99 + 7 + 10) / 4 × 10
    assert totals["quality_pct"] == pytest.approx(59.98)
    assert totals["score_avg"] == pytest.approx(6.0)
    # good-calls % = share of scored calls with overall ≥ 7 (7 counts, 6.99 does not)
    assert totals["good_calls"] == 2
    assert totals["good_calls_pct"] == 50.0
    # conversion % = booked / answered
    assert totals["booked"] == 3
    assert totals["conversion_pct"] == pytest.approx(42.86)
    # talk time: answered calls only
    assert totals["duration_total_s"] == 60 + 100 + 200 + 40 + 30 + 50 + 90
    assert totals["duration_avg_s"] == pytest.approx(570 / 7, abs=0.05)
    # interested: answered and booked, or interest high/medium
    assert totals["interested"] == 4

    row = DailyMetric.objects.get(clinic=clinic_a, administrator=admin_a, call_type="first_contact")
    assert (row.calls, row.scored, row.good_calls, row.booked) == (2, 2, 0, 1)
    assert row.score_sum == Decimal("6.99")
    assert row.quality_pct == pytest.approx(34.95)
    assert row.conversion_pct == 50.0
    assert row.administrator_name == "Ирина Петрова"
    other = DailyMetric.objects.get(clinic=clinic_a, call_type="other")
    assert other.scored == 0 and other.quality_pct is None and other.good_calls_pct is None
    assert DailyMetric.objects.filter(clinic=clinic_a, call_type="").get().calls == 2


def test_recompute_is_idempotent(clinic_a, admin_a):
    for n in range(5):
        make_call(
            clinic_a,
            administrator=admin_a if n % 2 else None,
            call_type="first_contact",
            overall=n * 2,
            source=["Сайт", ""][n % 2],
            criteria=[criterion("greeting", n * 2), criterion("objections", None, applicable=False)],
        )
    _recompute(clinic_a)
    first = (_snapshot(DailyMetric, ["administrator_id", "traffic_source"]), _snapshot(DailyCriterion, ["administrator_id"]), _snapshot(CallDetail, ["call_id"]))
    _recompute(clinic_a)
    rollups.rollups_rebuild(clinic_ids=[clinic_a.pk])
    second = (_snapshot(DailyMetric, ["administrator_id", "traffic_source"]), _snapshot(DailyCriterion, ["administrator_id"]), _snapshot(CallDetail, ["call_id"]))
    assert first == second
    assert DailyMetric.objects.count() == 2 and CallDetail.objects.count() == 5


def test_a_call_that_moves_day_leaves_no_stale_group(clinic_a, admin_a):
    call = make_call(clinic_a, administrator=admin_a, call_type="repeat", overall=8, source="2ГИС")
    make_call(clinic_a, call_type="repeat", overall=5)
    _recompute(clinic_a)
    assert DailyMetric.objects.filter(day=DAY, administrator=admin_a).exists()

    next_day = DAY + timedelta(days=1)
    Call.objects.filter(pk=call.pk).update(local_date=next_day, started_at=call.started_at + timedelta(days=1))
    rollups.rollups_rebuild(clinic_ids=[clinic_a.pk], date_from=DAY, date_to=next_day)

    assert not DailyMetric.objects.filter(day=DAY, administrator=admin_a).exists()
    assert DailyMetric.objects.get(day=next_day).administrator_id == admin_a.pk
    assert CallDetail.objects.get(call_id=call.pk).day == next_day
    # Recomputing only the new day also moves the call's detail row (no duplicate key).
    Call.objects.filter(pk=call.pk).update(local_date=DAY + timedelta(days=2))
    _recompute(clinic_a, DAY + timedelta(days=2), DAY + timedelta(days=2))
    assert CallDetail.objects.get(call_id=call.pk).day == DAY + timedelta(days=2)


def test_a_deleted_call_marks_its_day_and_its_group_disappears(clinic_a, admin_a):
    call = make_call(clinic_a, administrator=admin_a, call_type="repeat", overall=8)
    make_call(clinic_a, call_type="repeat", overall=5)
    _recompute(clinic_a)
    RollupDirtyDay.objects.all().delete()

    call.delete()
    assert RollupDirtyDay.objects.filter(clinic=clinic_a, day=DAY).exists()
    assert rollups.rollups_refresh_dirty() == 1
    assert not DailyMetric.objects.filter(administrator=admin_a).exists()
    assert DailyMetric.objects.get(clinic=clinic_a).calls == 1
    assert not RollupDirtyDay.objects.exists()


def test_deleting_a_clinic_leaves_no_markers_behind(clinic_a):
    make_call(clinic_a, call_type="repeat", overall=8)
    _recompute(clinic_a)
    clinic_a.delete()
    assert not RollupDirtyDay.objects.exists() and not DailyMetric.objects.exists()


def test_a_mark_during_recompute_is_not_lost(clinic_a):
    make_call(clinic_a, call_type="repeat", overall=8)
    rollups.rollup_mark_dirty(clinic_id=clinic_a.pk, day=DAY)
    taken = refresh._markers(clinic_a.pk, DAY, DAY)
    rollups.rollup_mark_dirty(clinic_id=clinic_a.pk, day=DAY)  # the pipeline marks it again meanwhile
    refresh._clear_markers(taken)
    assert RollupDirtyDay.objects.filter(clinic=clinic_a, day=DAY).exists()


def test_pipeline_marks_done_and_skipped_days_dirty(clinic_a):
    started = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # 10:00 Moscow
    done = call_ingest(
        clinic=clinic_a,
        started_at=started,
        external_id="t-1",
        transcript=[
            {"speaker": "A", "start": 0, "end": 3, "text": "Клиника, здравствуйте! Меня зовут Вера."},
            {"speaker": "B", "start": 3.5, "end": 6, "text": "Здравствуйте, хочу записаться на чистку."},
        ],
        enqueue=False,
    ).call
    missed = call_ingest(
        clinic=clinic_a, started_at=started + timedelta(days=1), external_id="m-1", status=Call.Status.MISSED, enqueue=False
    ).call
    assert not RollupDirtyDay.objects.exists()
    pipeline.drive(done.pk)
    pipeline.drive(missed.pk)
    assert set(RollupDirtyDay.objects.values_list("day", flat=True)) == {DAY, DAY + timedelta(days=1)}

    assert rollups.rollups_refresh_dirty() == 2
    assert _totals(clinic_a, DAY, DAY + timedelta(days=1))["calls"] == 2
    assert DailyMetric.objects.get(day=DAY).analysed == 1
    assert DailyMetric.objects.get(day=DAY + timedelta(days=1)).answered == 0
    assert not RollupDirtyDay.objects.exists()


def test_criteria_averages_exclude_non_applicable_and_other(clinic_a, admin_a):
    make_call(
        clinic_a,
        administrator=admin_a,
        call_type="first_contact",
        overall=6,
        criteria=[criterion("greeting", 10, title="Приветствие"), criterion("objections", 0, applicable=False), criterion("price", 0)],
    )
    make_call(
        clinic_a,
        administrator=admin_a,
        call_type="first_contact",
        overall=7,
        criteria=[criterion("greeting", 5, title="Приветствие"), criterion("objections", 4), criterion("price", None)],
    )
    make_call(clinic_a, call_type="other", criteria=[criterion("greeting", 0)])
    _recompute(clinic_a)
    rows = {r.criterion_key: r for r in DailyCriterion.objects.filter(clinic=clinic_a)}
    assert set(rows) == {"greeting", "objections", "price"}
    assert (rows["greeting"].scored, rows["greeting"].score_avg, rows["greeting"].criterion_title) == (2, 7.5, "Приветствие")
    assert (rows["objections"].scored, rows["objections"].score_avg) == (1, 4.0)  # the excluded 0 is not a zero
    assert (rows["price"].scored, rows["price"].score_avg) == (1, 0.0)  # a real zero is
    assert {r.call_type for r in rows.values()} == {"first_contact"}


def test_call_details_are_in_clinic_time_with_working_links(clinic_a, admin_a, client):
    call = make_call(
        clinic_a, administrator=admin_a, hour=23, call_type="first_contact", overall=7, booked=True, recording=True,
        recommendations=["Назовите цену", "Предложите запись"],
    )
    _recompute(clinic_a)
    detail = CallDetail.objects.get(call_id=call.pk)
    assert (detail.day, detail.weekday, detail.hour) == (DAY, 1, 23)  # 20:00 UTC is 23:00 in Moscow, Monday
    assert detail.good_call is True and detail.interested is True
    assert detail.recommendations == "Назовите цену\nПредложите запись"
    assert detail.call_url.startswith("http://") and "/reports/call/" in detail.call_url
    assert detail.recording_url.endswith("/audio/")
    page = client.get(urlsplit(detail.call_url).path)
    assert page.status_code == 200
    assert "Ирина Петрова" in page.content.decode()
    assert page["Cache-Control"] == "private, no-store"
    audio = client.get(urlsplit(detail.recording_url).path)
    assert audio.status_code == 200 and b"".join(audio.streaming_content) == b"ID3\x00"


def test_period_recommendations_are_copied_and_replaced(clinic_a, admin_a):
    summary = PeriodSummaryFactory(clinic=clinic_a, recommendations=["Первое", "  ", "Второе"], average_score=Decimal("6.5"))
    PeriodSummaryFactory(clinic=clinic_a, administrator=admin_a, recommendations=["Для Ирины"])
    assert rollups.period_recommendations_sync() == 2
    rows = list(PeriodRecommendation.objects.filter(summary_id=summary.pk).order_by("position").values_list("position", "text"))
    assert rows == [(1, "Первое"), (3, "Второе")]
    assert PeriodRecommendation.objects.get(administrator=admin_a).administrator_name == "Ирина Петрова"

    summary.recommendations = ["Новое"]
    summary.save()
    rollups.period_recommendations_sync()
    assert list(PeriodRecommendation.objects.filter(summary_id=summary.pk).values_list("text", flat=True)) == ["Новое"]
    summary.delete()
    rollups.period_recommendations_sync(full=True)
    assert list(PeriodRecommendation.objects.values_list("text", flat=True)) == ["Для Ирины"]


def test_nightly_rebuild_covers_recent_days_in_clinic_time(clinic_a, time_machine):
    make_call(clinic_a, call_type="repeat", overall=9)
    admin = AdministratorFactory(clinic=clinic_a)
    make_call(clinic_a, administrator=admin, call_type="repeat", overall=3, day=DAY - timedelta(days=60))
    time_machine.move_to(datetime(2026, 11, 17, 1, 0, tzinfo=UTC), tick=False)
    counts = rollups.rollups_rebuild_recent(days=7)
    assert counts.details == 1
    assert DailyMetric.objects.filter(clinic=clinic_a).count() == 1


def test_tasks_and_schedules(clinic_a, admin_a):
    from calls.schedules import SCHEDULES
    from reports import tasks

    funcs = {task.func for task in SCHEDULES}
    assert {"reports.tasks.refresh_rollups", "reports.tasks.rebuild_rollups_nightly"} <= funcs
    make_call(clinic_a, administrator=admin_a, call_type="repeat", overall=8)
    rollups.rollup_mark_dirty(clinic_id=clinic_a.pk, day=DAY)
    PeriodSummaryFactory(clinic=clinic_a, recommendations=["Совет"])
    assert tasks.refresh_rollups() == "1 day(s), 1 summary(ies)"
    assert DailyMetric.objects.get().calls == 1 and PeriodRecommendation.objects.count() == 1
    assert "metric rows" in tasks.rebuild_rollups_nightly()


def test_reports_never_import_an_llm_client():
    """Building a report costs nothing: no provider client anywhere in the reports app."""
    import ast
    from pathlib import Path

    import reports

    forbidden = ("openai", "elevenlabs", "medai.integrations", "analysis.engines", "analysis.services")
    for path in Path(reports.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith(forbidden)], f"{path} imports {names}"

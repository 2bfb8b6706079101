import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calls.models import Call, Stage
from tests.factories import CallFactory, ClinicFactory


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), verbosity=0)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_command_end_to_end():
    output = run("demo")
    assert "Password:" in output and "API key:  mk_" in output
    calls = Call.objects.select_related("analysis")
    assert calls.count() >= 20
    by_id = {c.external_id: c for c in calls}
    skipped = {c.skip_reason for c in calls if c.stage == Stage.SKIPPED}
    assert {"missed", "busy", "too_short"} <= skipped
    assert not calls.filter(stage=Stage.FAILED).exists()
    processed = calls.filter(stage=Stage.DONE)
    assert processed.count() == calls.count() - len([c for c in calls if c.stage == Stage.SKIPPED])
    # Every call type is represented, and the obvious cases are right.
    types = {c.analysis.call_type for c in processed}
    assert types == {"first_contact", "repeat", "callback", "confirmation", "other"}
    assert by_id["demo-001"].booked is True
    assert by_id["demo-001"].analysis.overall_score is not None
    other = by_id["demo-019"].analysis
    assert other.call_type == "other" and other.overall_score is None
    assert not hasattr(by_id["demo-024"], "analysis") or by_id["demo-024"].analysis is None
    # The unassigned call was attributed from the work schedule.
    assert by_id["demo-023"].administrator is not None
    # Running it again creates nothing new.
    run("demo")
    assert Call.objects.count() == calls.count()


@pytest.mark.django_db
def test_import_calls_from_json_and_rejects_bad_files(tmp_path):
    clinic = ClinicFactory()
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"speaker": "A", "start": 0, "end": 2, "text": "Клиника, здравствуйте"}]), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"utterances": "nope"}), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("hello")
    err = StringIO()
    out = StringIO()
    call_command("import_calls", clinic.slug, str(tmp_path), "--started-at", "2026-11-16T10:00:00+03:00", stdout=out, stderr=err, verbosity=0)
    assert "1 imported" in out.getvalue() and "2 rejected" in out.getvalue()
    assert "bad.json" in err.getvalue() and "notes.txt" in err.getvalue()
    assert Call.objects.filter(clinic=clinic).count() == 1
    call_command("import_calls", clinic.slug, str(good), "--started-at", "2026-11-16T10:00:00+03:00", stdout=out, stderr=err, verbosity=0)
    assert Call.objects.filter(clinic=clinic).count() == 1


@pytest.mark.django_db
def test_import_calls_unknown_clinic():
    with pytest.raises(CommandError, match="No clinic"):
        run("import_calls", "nope", "/tmp")


@pytest.mark.django_db
def test_reprocess_command():
    call = CallFactory(stage=Stage.FAILED, failed_stage=Stage.TRANSCRIBED)
    assert "1 call(s) restarted" in run("reprocess", "--stage", "analyse", "--call", str(call.pk))
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED
    with pytest.raises(CommandError):
        run("reprocess", "--stage", "analyse")


@pytest.mark.django_db
def test_reprocess_range_command():
    call = CallFactory(stage=Stage.DONE)
    output = run("reprocess", "--stage", "analyse", "--clinic", call.clinic.slug, "--from", str(call.local_date), "--to", str(call.local_date))
    assert "1 call(s)" in output


@pytest.mark.django_db
def test_process_command_runs_waiting_calls(monkeypatch):
    from calls import pipeline

    driven = []
    monkeypatch.setattr(pipeline, "drive", lambda call_id: driven.append(call_id) or "succeeded")
    waiting = CallFactory(stage=Stage.INGESTED)
    CallFactory(stage=Stage.DONE)
    assert "1 call(s): 1 succeeded" in run("process")
    assert driven == [waiting.pk]


@pytest.mark.django_db
def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    run("setup_schedules")
    count = Schedule.objects.count()
    assert Schedule.objects.filter(name="pipeline-sweeper", func="calls.tasks.sweep").exists()
    run("setup_schedules")
    assert Schedule.objects.count() == count

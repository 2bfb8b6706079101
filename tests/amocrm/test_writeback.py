"""The pipeline's write_back step: one note per call on its lead, never two."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analysis.models import Analysis
from calls import pipeline
from calls.amocrm.writeback import NOTE_MAX_CHARS, NOTE_STAGE, note_text
from calls.models import Call, CallEvent, Stage, Transcript
from clinics.models import CrmConnection
from tests.factories import AdministratorFactory, CallFactory


@pytest.fixture
def lead(fake):
    return fake.add_lead("Иванова")


def analysed_call(clinic, lead_id, *, utterances=30, **fields) -> Call:
    call = CallFactory(clinic=clinic, crm_lead_id=lead_id, stage=Stage.ANALYSED, booked=True, booked_source="crm", **fields)
    Transcript.objects.create(
        call=call,
        utterances=[
            {"speaker": str(n % 2), "role": ("administrator", "patient")[n % 2], "start": n, "end": n + 1, "text": f"Реплика {n} " + "слово " * 10}
            for n in range(utterances)
        ],
    )
    Analysis.objects.create(
        call=call,
        engine="rules",
        call_type="first_contact",
        overall_score=Decimal("7.50"),
        recommendations=["Называйте цену сразу.", "Предложите два времени.", "Уточните имя.", "Четвёртая лишняя."],
    )
    return call


def write_back(call: Call) -> str:
    return pipeline.run_step(call.pk, "write_back")


def test_one_compact_note_is_posted_to_the_lead(fake, connection, lead):
    call = analysed_call(connection.clinic, lead, administrator=AdministratorFactory(clinic=connection.clinic, name="Мария"))

    assert write_back(call) == "succeeded"

    [note] = fake.added_notes
    assert note["entity_id"] == lead and note["note_type"] == "common"
    text = note["params"]["text"]
    assert "7.5/10" in text and "Мария" in text
    assert "1. Называйте цену сразу." in text and "3. Уточните имя." in text and "Четвёртая" not in text
    assert "Реплика 0" in text and "Реплика 11" in text and "Реплика 12" not in text  # the first 12 utterances
    assert len(text) <= NOTE_MAX_CHARS
    call.refresh_from_db()
    assert call.stage == Stage.SYNCED
    record = CallEvent.objects.get(call=call, stage=NOTE_STAGE)
    assert record.status == CallEvent.Status.SUCCEEDED and record.detail["note_id"] == note["id"]


def test_a_retried_or_reprocessed_step_never_posts_twice(fake, connection, lead):
    call = analysed_call(connection.clinic, lead)
    write_back(call)
    pipeline.reprocess_queryset(Call.objects.filter(pk=call.pk), from_step="write_back")

    assert write_back(call) == "succeeded"

    assert len(fake.added_notes) == 1
    last = CallEvent.objects.filter(call=call, stage="write_back").last()
    assert last.detail["write_back"] == "already posted"


def test_a_rate_limited_post_is_retried_and_posted_once(fake, connection, lead, settings):
    settings.HTTP_MAX_RETRY_AFTER = 30
    call = analysed_call(connection.clinic, lead)
    # Past the in-process retries: the step is retried later by the pipeline.
    fake.fail_next("POST", "/api/v4/leads/notes", times=5, status=429, headers={"Retry-After": "0"})

    assert write_back(call) == "retry"
    assert not CallEvent.objects.filter(call=call, stage=NOTE_STAGE).exists()  # certainly not posted
    Call.objects.filter(pk=call.pk).update(retry_at=None)
    assert write_back(call) == "succeeded"
    assert len(fake.added_notes) == 1


def test_an_ambiguous_failure_is_not_posted_again(fake, connection, lead):
    call = analysed_call(connection.clinic, lead)
    fake.fail_next("POST", "/api/v4/leads/notes", status=502)  # may or may not have been applied

    assert write_back(call) == "retry"
    Call.objects.filter(pk=call.pk).update(retry_at=None)
    assert write_back(call) == "succeeded"

    assert len(fake.requests_to("POST", "/api/v4/leads/notes")) == 1
    assert "not re-posted" in CallEvent.objects.filter(call=call, stage="write_back").last().detail["write_back"]


def test_a_deleted_lead_is_a_no_op_not_a_failure(fake, connection):
    call = analysed_call(connection.clinic, 999_999_999)
    assert write_back(call) == "succeeded"
    assert CallEvent.objects.filter(call=call, stage="write_back").last().detail["write_back"] == "rejected by amoCRM"


@pytest.mark.parametrize("case", ["no lead", "no connection", "off", "broken"])
def test_no_ops(fake, clinic, lead, case):
    if case != "no connection":
        from tests.amocrm.conftest import make_connection

        connection = make_connection(clinic, fake, write_back=case != "off")
        if case == "broken":
            CrmConnection.objects.filter(pk=connection.pk).update(status=CrmConnection.Status.BROKEN)
    call = analysed_call(clinic, None if case == "no lead" else lead)

    assert write_back(call) == "succeeded"

    assert not fake.added_notes
    call.refresh_from_db()
    assert call.stage == Stage.SYNCED


def test_note_text_without_analysis_or_transcript(clinic, lead):
    call = CallFactory(clinic=clinic, crm_lead_id=lead)
    assert note_text(call) == ""
    Transcript.objects.create(call=call, utterances=[{"speaker": "0", "role": "patient", "start": 0, "end": 1, "text": "Алло"}])
    assert "Алло" in note_text(call)


def test_the_step_is_registered():
    from calls.amocrm.writeback import step_write_back

    assert pipeline.handler_for("write_back") is step_write_back

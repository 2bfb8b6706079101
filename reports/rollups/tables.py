"""How each ``bi_*`` table is computed from calls: one aggregate query per table and range.

The metric definitions are PRODUCT.md's and live here only (:data:`SCORED`, :data:`GOOD`...):

* quality % = mean overall score of analysed, scored calls × 10 ("other" and unanalysed calls are
  excluded, zero scores are included);
* good-calls % = share of the scored calls with overall ≥ 7;
* conversion % = booked / answered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import islice
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractHour, ExtractIsoWeekDay, NullIf, Round

from analysis.models import Analysis, CallType
from calls.models import Call
from clinics.models import Administrator
from reports.links import CallLinks
from reports.models import CallDetail, DailyCriterion, DailyMetric

GOOD_SCORE = 7
INTERESTED_LEVELS = ("high", "medium")

ANSWERED = Q(status=Call.Status.ANSWERED)
ANALYSED = Q(analysis__isnull=False)
SCORED = Q(analysis__overall_score__isnull=False) & ~Q(analysis__call_type=CallType.OTHER)
GOOD = SCORED & Q(analysis__overall_score__gte=GOOD_SCORE)
BOOKED = Q(booked=True)
# A talk that went somewhere: the patient booked, or showed at least some interest.
INTERESTED = ANSWERED & (BOOKED | Q(analysis__interest__in=INTERESTED_LEVELS))

METRIC_DIMENSIONS = (
    "clinic_id", "day", "administrator_id", "direction", "traffic_source", "call_type", "call_source", "campaign_id",
)
METRIC_COLUMNS = (
    *METRIC_DIMENSIONS,
    "administrator_name",
    "calls",
    "answered",
    "analysed",
    "scored",
    "good_calls",
    "interested",
    "booked",
    "duration_total_s",
    "score_sum",
    "conversion_pct",
    "duration_avg_s",
    "score_avg",
    "quality_pct",
    "good_calls_pct",
    "computed_at",
)


def _ratio(numerator: str, denominator: str, scale: float = 1.0):
    return Round(Cast(F(numerator), FloatField()) * scale / NullIf(F(denominator), 0), 2)


def metrics_queryset(calls: QuerySet[Call], *, computed_at) -> QuerySet:
    """``calls`` grouped into ``bi_daily_metrics`` rows (columns in :data:`METRIC_COLUMNS` order)."""
    return (
        calls.values(
            "clinic_id",
            "administrator_id",
            "direction",
            "traffic_source",
            day=F("local_date"),
            call_type=Coalesce("analysis__call_type", Value("")),
            call_source=F("source"),
            campaign_id=F("outbound__campaign_id"),  # outbound AI calls of a campaign
        )
        .annotate(
            administrator_name=Coalesce(Max("administrator__name"), Value("")),
            calls=Count("id"),
            answered=Count("id", filter=ANSWERED),
            analysed=Count("id", filter=ANALYSED),
            scored=Count("id", filter=SCORED),
            good_calls=Count("id", filter=GOOD),
            interested=Count("id", filter=INTERESTED),
            booked=Count("id", filter=BOOKED),
            duration_total_s=Coalesce(Sum("duration_seconds", filter=ANSWERED), 0),
            score_sum=Coalesce(Sum("analysis__overall_score", filter=SCORED), Value(0), output_field=DailyMetric._meta.get_field("score_sum")),
        )
        .annotate(
            conversion_pct=_ratio("booked", "answered", 100.0),
            duration_avg_s=_ratio("duration_total_s", "answered"),
            score_avg=_ratio("score_sum", "scored"),
            quality_pct=_ratio("score_sum", "scored", 10.0),
            good_calls_pct=_ratio("good_calls", "scored", 100.0),
            computed_at=Value(computed_at, output_field=DailyMetric._meta.get_field("computed_at")),
        )
        .order_by()
        .values_list(*METRIC_COLUMNS)
    )


def _column_list(model, columns: Iterable[str]) -> str:
    """Quoted column names of the fields (or attnames, like ``clinic_id``)."""
    return ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in columns)


def insert_select(model, columns: Iterable[str], queryset: QuerySet) -> int:
    """``INSERT INTO <model's table> (columns) <queryset's SELECT>`` — rows never pass through Python."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({_column_list(model, columns)}) {sql}", params)
        return cursor.rowcount


# --- per-criterion averages: JSON is expanded in SQL, per vendor ----------------------------------
_CRITERIA_SQL = {
    "postgresql": """
        SELECT c.clinic_id, c.local_date, c.administrator_id, COALESCE(MAX(ad.name), ''), a.call_type,
               e.key, COALESCE(MAX(e.title), ''), COUNT(*), SUM(e.score), ROUND(AVG(e.score), 2)::float8, %s
        FROM {call} c
        JOIN {analysis} a ON a.call_id = c.id
        LEFT JOIN {administrator} ad ON ad.id = c.administrator_id
        CROSS JOIN LATERAL jsonb_to_recordset(CASE WHEN jsonb_typeof(a.criteria) = 'array' THEN a.criteria ELSE '[]'::jsonb END)
             AS e(key text, title text, score numeric, applicable boolean)
        WHERE c.clinic_id = %s AND c.local_date BETWEEN %s AND %s AND a.call_type <> %s
          AND e.score IS NOT NULL AND e.applicable IS NOT FALSE AND COALESCE(e.key, '') <> ''
        GROUP BY c.clinic_id, c.local_date, c.administrator_id, a.call_type, e.key
    """,
    "sqlite": """
        SELECT c.clinic_id, c.local_date, c.administrator_id, COALESCE(MAX(ad.name), ''), a.call_type,
               json_extract(e.value, '$.key'), COALESCE(MAX(json_extract(e.value, '$.title')), ''), COUNT(*),
               SUM(json_extract(e.value, '$.score')), ROUND(AVG(json_extract(e.value, '$.score')), 2), %s
        FROM {call} c
        JOIN {analysis} a ON a.call_id = c.id
        LEFT JOIN {administrator} ad ON ad.id = c.administrator_id,
        json_each(CASE WHEN json_type(a.criteria) = 'array' THEN a.criteria ELSE '[]' END) e
        WHERE c.clinic_id = %s AND c.local_date BETWEEN %s AND %s AND a.call_type <> %s
          AND json_type(e.value, '$.score') IN ('integer', 'real')
          AND COALESCE(json_extract(e.value, '$.applicable'), 1) <> 0
          AND COALESCE(json_extract(e.value, '$.key'), '') <> ''
        GROUP BY c.clinic_id, c.local_date, c.administrator_id, a.call_type, json_extract(e.value, '$.key')
    """,
}
CRITERIA_COLUMNS = (
    "clinic_id",
    "day",
    "administrator_id",
    "administrator_name",
    "call_type",
    "criterion_key",
    "criterion_title",
    "scored",
    "score_sum",
    "score_avg",
    "computed_at",
)


def insert_criteria(*, clinic_id: int, date_from: date, date_to: date, computed_at) -> int:
    template = _CRITERIA_SQL.get(connection.vendor)
    if template is None:
        raise NotImplementedError(f"criterion roll-ups need PostgreSQL or SQLite, not {connection.vendor}")
    quote = connection.ops.quote_name
    select = template.format(
        call=quote(Call._meta.db_table), analysis=quote(Analysis._meta.db_table), administrator=quote(Administrator._meta.db_table)
    )
    stamp = DailyCriterion._meta.get_field("computed_at").get_db_prep_save(computed_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(DailyCriterion._meta.db_table)} ({_column_list(DailyCriterion, CRITERIA_COLUMNS)}) {select}",
            [stamp, clinic_id, date_from, date_to, CallType.OTHER],
        )
        return cursor.rowcount


# --- call details: links are signed in Python, so rows stream through it ---------------------------
DETAIL_COLUMNS = (
    "call_id",
    "clinic_id",
    "day",
    "started_at",
    "weekday",
    "hour",
    "direction",
    "status",
    "stage",
    "duration_s",
    "administrator_id",
    "administrator_name",
    "traffic_source",
    "lead_processing_minutes",
    "call_type",
    "overall_score",
    "good_call",
    "interest",
    "interested",
    "booked",
    "booked_source",
    "disposition",
    "summary",
    "recommendations",
    "call_url",
    "recording_url",
    "links_expire_at",
    "computed_at",
)
_FROM_SQL = DETAIL_COLUMNS.index("recommendations")  # columns before this one come ready from SQL


def _detail_queryset(calls: QuerySet[Call], tz: ZoneInfo) -> QuerySet:
    """Everything but the links in SQL, in DETAIL_COLUMNS order, + the recommendations JSON and
    whether there is a recording."""
    return (
        calls.annotate(
            day=F("local_date"),
            weekday=ExtractIsoWeekDay("started_at", tzinfo=tz),
            hour=ExtractHour("started_at", tzinfo=tz),
            duration_s=F("duration_seconds"),
            administrator_name=Coalesce("administrator__name", Value("")),
            call_type=Coalesce("analysis__call_type", Value("")),
            overall_score=F("analysis__overall_score"),
            good_call=Case(When(GOOD, then=Value(True)), When(SCORED, then=Value(False)), default=None, output_field=BooleanField()),
            interest=Coalesce("analysis__interest", Value("")),
            interested=Case(When(INTERESTED, then=Value(True)), default=Value(False), output_field=BooleanField()),
            disposition=Coalesce("analysis__disposition", Value("")),
            summary=Coalesce("analysis__summary", Value(""), output_field=TextField()),
        )
        .order_by()
        .values_list("id", *DETAIL_COLUMNS[1:_FROM_SQL], "analysis__recommendations", "recording__file")
    )


def _detail_source(calls: QuerySet[Call], tz: ZoneInfo) -> Iterator[tuple]:
    queryset = _detail_queryset(calls, tz)
    if connection.vendor != "postgresql":
        yield from queryset.iterator(chunk_size=5000)
        return
    # The same SELECT on a plain server-side cursor: Django's per-row layer costs a third of a
    # million-call rebuild. Django loads jsonb as text; the JSON is decoded by the caller.
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    with connection.connection.cursor(name=f"bi_details_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = 5000
        cursor.execute(sql, params)
        yield from cursor


def _recommendation_text(value) -> str:
    if isinstance(value, str):
        value = json.loads(value) if value[:1] == "[" else value
    if not value:
        return ""
    if isinstance(value, str):
        return value
    return "\n".join(text for text in (str(item).strip() for item in value) if text)


def detail_rows(calls: QuerySet[Call], *, tz: ZoneInfo, computed_at) -> Iterator[tuple]:
    links = CallLinks()
    expires_at = links.expires_at
    for row in _detail_source(calls, tz):
        call_url, recording_url = links.for_call(row[0], has_recording=bool(row[-1]))
        yield (*row[:_FROM_SQL], _recommendation_text(row[_FROM_SQL]), call_url, recording_url, expires_at, computed_at)


def insert_details(rows: Iterator[tuple]) -> int:
    if connection.vendor == "postgresql":
        # COPY is an order of magnitude faster than INSERT for a full rebuild's million rows.
        quote = connection.ops.quote_name
        statement = f"COPY {quote(CallDetail._meta.db_table)} ({_column_list(CallDetail, DETAIL_COLUMNS)}) FROM STDIN"
        count = 0
        connection.ensure_connection()
        # The rows come from a server-side cursor on this same connection, which cannot fetch
        # while a COPY is in progress: fetch a batch, then COPY it, and so on.
        while batch := list(islice(rows, 20_000)):
            with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
                for row in batch:
                    copy.write_row(row)
            count += len(batch)
        return count
    # Elsewhere (SQLite): plain executemany — model instances would triple the time. Values get
    # the same database preparation the ORM gives them (aware datetimes stored as naive UTC).
    quote = connection.ops.quote_name
    fields = [CallDetail._meta.get_field(name) for name in DETAIL_COLUMNS]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from the model's meta, values are parameters.
    statement = f"INSERT INTO {quote(CallDetail._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    prepared = [i for i, f in enumerate(fields) if f.get_internal_type() in {"DateTimeField", "DecimalField"}]
    started_at = DETAIL_COLUMNS.index("started_at")
    memo: dict = {}  # scores and the batch's timestamps repeat: prepare each value once

    def prepare(index: int, value):
        if index == started_at:
            return fields[index].get_db_prep_save(value, connection)
        key = (index, value)
        if key not in memo:
            memo[key] = fields[index].get_db_prep_save(value, connection)
        return memo[key]

    count = 0
    with connection.cursor() as cursor:
        while batch := list(islice(rows, 2000)):
            values = []
            for row in batch:
                row = list(row)
                for index in prepared:
                    row[index] = prepare(index, row[index])
                values.append(row)
            cursor.executemany(statement, values)
            count += len(batch)
    return count

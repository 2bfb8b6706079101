"""Roll-ups and the funnel API over a million calls, on PostgreSQL.

Generates 1 000 000 calls (4 clinics × 250 000, one year, 8 administrators each; ~80 % analysed,
with 10–17 scored criteria) with ``INSERT … SELECT generate_series`` — seconds, not hours of ORM
saves — then measures:

* ``rollup_1m_rebuild_s`` — rebuilding every ``bi_*`` table from scratch (all clinics, all days);
* ``rollup_day_s`` — one marked (clinic, day) recomputed by the every-minute refresh (worst of 10);
* ``funnel_1m_p95_ms`` — ``GET /api/metrics/funnel/`` over all 1M calls (a superuser, a whole year,
  with and without filters and grouping), 95th percentile of 100 requests.

    DEBUG=1 .venv/bin/python bench/rollups.py [--calls-per-clinic 250000] [--clinics 4] [--regenerate]

Uses BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/medai_bench; the database is
created if missing). Generated data is kept and reused by the next run unless --regenerate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta

from _setup import result, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/medai_bench"
FIRST_DAY = date(2026, 1, 1)
DAYS = 365
TYPES = ["first_contact", "first_contact", "repeat", "callback", "confirmation", "other"]
SOURCES = ["Сайт", "2ГИС", "Яндекс.Директ", "ВКонтакте", "Рекомендация", ""]
CRITERIA = [
    "greeting", "patient_name", "needs", "service", "clinic", "doctor", "offer", "price", "expertise",
    "next_step", "booked", "tone", "speech", "initiative", "address", "documents", "objections",
]


def ensure_database(url: str) -> bool:
    """Create the benchmark database if it does not exist. False if PostgreSQL is unreachable."""
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        print(f"SKIP: PostgreSQL is not reachable at {base}/ ({exc})")
        return False
    return True


def _columns(model, explicit: dict[str, str]) -> tuple[list[str], list[str], list]:
    """Column names and SQL expressions for an INSERT … SELECT: the explicit ones, NULL for
    nullable columns, the model default (as a parameter) for the rest — so a column added to the
    model later does not break the benchmark."""
    from django.db import connection

    names, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in explicit:
            continue
        names.append(connection.ops.quote_name(field.column))
        if field.column in explicit:
            expressions.append(explicit[field.column])
        elif field.null:
            expressions.append("NULL")
        else:
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    return names, expressions, params


def generate(*, clinics: int, per_clinic: int) -> list[int]:
    from django.db import connection, transaction

    from analysis.models import Analysis
    from calls.models import Call
    from clinics.models import Administrator, Clinic

    clinic_ids = []
    with transaction.atomic(), connection.cursor() as cursor:
        Clinic.objects.filter(slug__startswith="bench-rollups-").delete()
        cursor.execute("SELECT setseed(0.42)")
        for n in range(clinics):
            clinic = Clinic.objects.create(name=f"Клиника {n + 1}", slug=f"bench-rollups-{n + 1}")
            clinic_ids.append(clinic.pk)
            admins = [Administrator.objects.create(clinic=clinic, name=f"Администратор {n + 1}.{k + 1}").pk for k in range(8)]
            names, expressions, params = _columns(
                Call,
                {
                    "clinic_id": "%s",
                    "external_id": "'bench-' || g",
                    "source": "'amocrm'",
                    "direction": "CASE WHEN r1 < 0.75 THEN 'inbound' ELSE 'outbound' END",
                    "status": "CASE WHEN r2 < 0.85 THEN 'answered' ELSE 'missed' END",
                    "started_at": f"((DATE '{FIRST_DAY}' + g %% {DAYS}) + make_interval(hours => 8 + (g * 13) %% 12, mins => (g * 7) %% 60)) AT TIME ZONE 'Europe/Moscow'",
                    "local_date": f"DATE '{FIRST_DAY}' + g %% {DAYS}",
                    "duration_seconds": "CASE WHEN r2 < 0.85 THEN 20 + (g * 31) %% 580 ELSE 0 END",
                    "administrator_id": "(%s::bigint[])[1 + (g * 5) %% 8]",
                    "traffic_source": "(%s::text[])[1 + (g * 3) %% 6]",
                    "booked": "CASE WHEN r2 < 0.85 THEN r3 < 0.4 END",
                    "stage": "CASE WHEN r2 < 0.85 THEN 'done' ELSE 'skipped' END",
                    "skip_reason": "CASE WHEN r2 < 0.85 THEN '' ELSE 'missed' END",
                    "stage_changed_at": "now()",
                    "ingested_at": "now()",
                    "updated_at": "now()",
                },
            )
            explicit_params = {"clinic_id": [clinic.pk], "administrator_id": [admins], "traffic_source": [SOURCES]}
            ordered = []
            defaults = iter(params)
            for name, expression in zip(names, expressions, strict=True):
                column = name.strip('"')
                if column in explicit_params:
                    ordered += explicit_params[column]
                elif expression == "%s":
                    ordered.append(next(defaults))
            cursor.execute(
                f"INSERT INTO {Call._meta.db_table} ({', '.join(names)}) SELECT {', '.join(expressions)} "
                f"FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3 FROM generate_series(0, %s) g) s",
                [*ordered, per_clinic - 1],
            )
        names, expressions, params = _columns(
            Analysis,
            {
                "call_id": "c.id",
                "engine": "'rules'",
                "call_type": "(%s::text[])[1 + c.id %% 6]",
                "criteria": "COALESCE(x.criteria, '[]'::jsonb)",
                "overall_score": "x.overall",
                "interest": "(ARRAY['high', 'medium', 'low', 'none'])[1 + (c.id * 7) %% 4]",
                "summary": "'Пациент спросил о стоимости лечения и ближайшем свободном времени у терапевта.'",
                "disposition": "CASE WHEN c.booked THEN 'booked' ELSE 'thinking' END",
                "recommendations": "CASE WHEN c.id %% 6 = 5 THEN '[]'::jsonb ELSE '[\"Назовите стоимость приёма.\", \"Предложите два варианта времени записи.\"]'::jsonb END",
                "created_at": "now()",
                "updated_at": "now()",
            },
        )
        ordered = []
        defaults = iter(params)
        for name, expression in zip(names, expressions, strict=True):
            if name.strip('"') == "call_type":
                ordered.append(TYPES)
            elif expression == "%s":
                ordered.append(next(defaults))
        cursor.execute(
            f"""
            INSERT INTO {Analysis._meta.db_table} ({', '.join(names)})
            SELECT {', '.join(expressions)}
            FROM {Call._meta.db_table} c
            CROSS JOIN LATERAL (
                SELECT jsonb_agg(jsonb_build_object('key', t.key, 'title', initcap(replace(t.key, '_', ' ')),
                                                    'score', CASE WHEN t.applicable THEN t.score END,
                                                    'applicable', t.applicable, 'comment', 'Комментарий')) AS criteria,
                       round(avg(t.score) FILTER (WHERE t.applicable), 2) AS overall
                FROM (SELECT k.key, random() > 0.15 AS applicable, floor(random() * 11)::int AS score
                      FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n)
                      WHERE c.id %% 6 <> 5 AND k.n <= CASE WHEN c.id %% 6 IN (0, 1) THEN 17 ELSE 10 END) t
            ) x
            WHERE c.clinic_id = ANY(%s) AND c.status = 'answered' AND c.id %% 20 <> 0
            """,
            [*ordered, CRITERIA, clinic_ids],
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Call._meta.db_table}; ANALYZE {Analysis._meta.db_table}")
    return clinic_ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clinics", type=int, default=4)
    parser.add_argument("--calls-per-clinic", type=int, default=250_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="clinics rebuilt at once (manage.py rebuild_rollups --workers)")
    args = parser.parse_args()

    url = os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        print("SKIP: bench/rollups.py measures PostgreSQL; BENCH_DATABASE_URL is not a postgres:// URL")
        return
    if not ensure_database(url):
        return
    setup_django(name="rollups")

    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    from calls.models import Call
    from clinics.models import Clinic
    from reports import rollups
    from reports.models import DailyMetric

    total = args.clinics * args.calls_per_clinic
    clinic_ids = list(Clinic.objects.filter(slug__startswith="bench-rollups-").order_by("pk").values_list("pk", flat=True))
    existing = Call.objects.filter(clinic_id__in=clinic_ids).count() if clinic_ids else 0
    if args.regenerate or existing != total or len(clinic_ids) != args.clinics:
        started = time.perf_counter()
        clinic_ids = generate(clinics=args.clinics, per_clinic=args.calls_per_clinic)
        print(f"generated {total} calls in {time.perf_counter() - started:.1f} s")
    else:
        print(f"reusing {existing} generated calls")

    with connection.cursor() as cursor:
        for table in ("bi_daily_metrics", "bi_daily_criteria", "bi_call_details"):
            cursor.execute(f"TRUNCATE {table}")  # a rebuild from nothing, not a replace
    started = time.perf_counter()
    counts = rollups.rollups_rebuild(clinic_ids=clinic_ids, workers=args.workers)
    rebuild = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bi_daily_metrics; ANALYZE bi_daily_criteria; ANALYZE bi_call_details")
    print(f"rebuild ({args.workers} worker(s)): {counts.metrics} metric rows, {counts.criteria} criterion rows, {counts.details} call rows")
    result("rollup_1m_rebuild_s", round(rebuild, 1))

    day_times = []
    for n in range(10):
        clinic_id, day = clinic_ids[n % len(clinic_ids)], FIRST_DAY + timedelta(days=17 + 31 * n)
        rollups.rollup_mark_dirty(clinic_id=clinic_id, day=day)
        started = time.perf_counter()
        assert rollups.rollups_refresh_dirty() == 1
        day_times.append(time.perf_counter() - started)
    calls_per_day = total / len(clinic_ids) / DAYS
    print(f"one day (~{calls_per_day:.0f} calls): median {statistics.median(day_times):.3f} s, worst {max(day_times):.3f} s")
    result("rollup_day_s", round(max(day_times), 3))

    user = get_user_model().objects.filter(username="bench-superuser").first() or get_user_model().objects.create_superuser(
        "bench-superuser", "bench@example.com", "bench-password-1234"
    )
    client = APIClient()
    client.force_authenticate(user)
    year = {"date_from": FIRST_DAY.isoformat(), "date_to": (FIRST_DAY + timedelta(days=DAYS - 1)).isoformat()}
    variants = [
        {},
        {"direction": "inbound"},
        {"group_by": "administrator"},
        {"group_by": "week"},
        {"source": "2ГИС", "call_type": "first_contact"},
    ]
    for params in variants:  # warm the cache once per shape
        assert client.get("/api/metrics/funnel/", {**year, **params}).status_code == 200
    timings = []
    for n in range(args.requests):
        started = time.perf_counter()
        response = client.get("/api/metrics/funnel/", {**year, **variants[n % len(variants)]})
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    body = client.get("/api/metrics/funnel/", year).json()
    assert body["calls"] == total, body["calls"]
    p95 = statistics.quantiles(timings, n=20)[-1]
    rows = DailyMetric.objects.count()
    print(f"funnel over {body['calls']} calls ({rows} roll-up rows): median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms")
    result("funnel_1m_p95_ms", round(p95, 1))


if __name__ == "__main__":
    sys.exit(main())

"""Report building at scale: an XLSX over 100 000 calls and a PDF over 10 000 calls.

Calls with analyses are bulk-inserted into a throwaway database and rolled up once (as the nightly
job does); then each report is built in a fresh subprocess — what a worker does — which measures
its own wall time and peak RSS (so data generation does not count against the report). Each report
is built ``--repeat`` times: the median time and the worst peak RSS are reported.

    DEBUG=1 .venv/bin/python bench/reports.py [--xlsx-calls 100000] [--pdf-calls 10000] [--repeat 3]

Targets: XLSX 100k < 15 s with peak RSS < 200 MB; PDF 10k < 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from _setup import ROOT, result, setup_django

CALL_TYPES = ["first_contact", "first_contact", "repeat", "callback", "confirmation", "other"]
SOURCES = ["Сайт", "2ГИС", "Яндекс.Директ", "ВКонтакте", "Рекомендация", ""]
CRITERIA = [
    ("greeting", "Приветствие (клиника и своё имя)"),
    ("patient_name", "Имя пациента спрошено и использовано"),
    ("needs", "Выявление потребности"),
    ("service", "Презентация услуги"),
    ("clinic", "Презентация клиники"),
    ("doctor", "Презентация врача"),
    ("offer", "Предложена запись"),
    ("price", "Озвучена стоимость"),
    ("expertise", "Экспертность"),
    ("next_step", "Договорённость о следующем шаге"),
    ("booked", "Пациент записан"),
    ("tone", "Эмоциональный тон"),
    ("speech", "Качество речи"),
    ("initiative", "Инициатива"),
    ("address", "Назван адрес клиники"),
    ("documents", "Напоминание о документах"),
    ("objections", "Работа с возражениями"),
]
ADVICE = [
    "Спросите имя пациента в начале разговора и обращайтесь по имени.",
    "Назовите стоимость приёма и что в неё входит.",
    "Предложите два варианта времени записи на выбор.",
    "Представьте врача: опыт, специализация, отзывы пациентов.",
    "Договоритесь о следующем шаге и подтвердите его в конце разговора.",
]


def generate(clinic, *, calls: int, first_day: date, days: int, seed: int) -> None:
    """``calls`` calls with analyses over ``days`` clinic days, inserted in bulk."""
    from analysis.models import Analysis
    from calls.models import Call
    from clinics.models import Administrator

    rng = random.Random(seed)
    admins = [Administrator.objects.create(clinic=clinic, name=f"Администратор {n + 1}") for n in range(8)]
    tz = clinic.tz
    batch = 5000
    for offset in range(0, calls, batch):
        rows = []
        for i in range(offset, min(calls, offset + batch)):
            day = first_day + timedelta(days=i % days)
            local = datetime(day.year, day.month, day.day, 8 + rng.randrange(12), rng.randrange(60), tzinfo=tz)
            answered = rng.random() < 0.85
            rows.append(
                Call(
                    clinic=clinic,
                    external_id=f"bench-{clinic.pk}-{i}",
                    started_at=local.astimezone(UTC),
                    local_date=day,
                    direction="inbound" if rng.random() < 0.75 else "outbound",
                    status="answered" if answered else "missed",
                    duration_seconds=rng.randrange(20, 600) if answered else 0,
                    administrator=rng.choice(admins),
                    traffic_source=rng.choice(SOURCES),
                    booked=(rng.random() < 0.4) if answered else None,
                    stage="done" if answered else "skipped",
                    skip_reason="" if answered else "missed",
                )
            )
        Call.objects.bulk_create(rows)
        analyses = []
        for call in rows:
            if call.status != "answered" or rng.random() < 0.05:
                continue
            call_type = rng.choice(CALL_TYPES)
            criteria = []
            if call_type != "other":
                for key, title in CRITERIA[: 17 if call_type == "first_contact" else 10]:
                    applicable = rng.random() > 0.15
                    criteria.append(
                        {"key": key, "title": title, "score": rng.randrange(11) if applicable else None, "applicable": applicable, "comment": "Комментарий к критерию."}
                    )
            scores = [c["score"] for c in criteria if c["applicable"]]
            overall = Decimal(sum(scores) / len(scores)).quantize(Decimal("0.01")) if scores else None
            analyses.append(
                Analysis(
                    call=call,
                    engine="rules",
                    call_type=call_type,
                    criteria=criteria,
                    overall_score=overall,
                    interest=rng.choice(["high", "medium", "low", "none"]),
                    summary="Пациент спросил о стоимости лечения и ближайшем свободном времени у терапевта.",
                    disposition=rng.choice(["booked", "thinking", "info"]),
                    recommendations=rng.sample(ADVICE, 2) if call_type != "other" else [],
                )
            )
        Analysis.objects.bulk_create(analyses)


def build_in_subprocess(report_id: int, db_url: str, repeat: int) -> dict:
    """Median time and worst peak RSS of ``repeat`` builds, each in a fresh process."""
    from reports.models import Report

    env = {**os.environ, "BENCH_DATABASE_URL": db_url}
    runs = []
    for _ in range(repeat):
        Report.objects.filter(pk=report_id).update(status=Report.Status.QUEUED)
        out = subprocess.run(
            [sys.executable, __file__, "--build", str(report_id)], env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"report build failed:\n{out.stdout}\n{out.stderr}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "runs": [r["seconds"] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "bytes": runs[-1]["bytes"],
    }


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux: VmHWM (reset by exec, unlike ru_maxrss, which a
    subprocess inherits from the parent it was forked from)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(report_id: int) -> None:
    """Build one report in this fresh process; print its time and the process's peak RSS."""
    setup_django(name="reports")
    from django.conf import settings
    from django.utils import translation

    from reports.models import Report
    from reports.services import report_build

    started = time.perf_counter()
    with translation.override(settings.LANGUAGE_CODE):
        outcome = report_build(report_id)
    seconds = time.perf_counter() - started
    report = Report.objects.get(pk=report_id)
    if outcome != "done":
        raise SystemExit(f"report {report_id}: {outcome} {report.error}")
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1), "bytes": report.size_bytes}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--xlsx-calls", type=int, default=100_000)
    parser.add_argument("--pdf-calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="builds per report; the median time is reported")
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        child(args.build)
        return

    db_url = setup_django(name="reports")
    from clinics.models import Clinic
    from reports.models import Report
    from reports.rollups import rollups_rebuild
    from reports.services import report_request

    first_day = date(2026, 1, 1)
    plans = [("xlsx", args.xlsx_calls, 90), ("pdf", args.pdf_calls, 90)]
    reports = {}
    for kind, calls, days in plans:
        clinic = Clinic.objects.create(name=f"Клиника {kind.upper()}", slug=f"bench-{kind}")
        started = time.perf_counter()
        generate(clinic, calls=calls, first_day=first_day, days=days, seed=len(reports))
        generated = time.perf_counter() - started
        started = time.perf_counter()
        counts = rollups_rebuild(clinic_ids=[clinic.pk])
        print(
            f"{kind}: {calls} calls generated in {generated:.1f} s; rolled up in {time.perf_counter() - started:.1f} s "
            f"({counts.metrics} metric rows, {counts.criteria} criterion rows)"
        )
        reports[kind] = report_request(
            clinic=clinic, kind=kind, date_from=first_day, date_to=first_day + timedelta(days=days - 1), via=Report.Via.COMMAND, enqueue=False
        )

    xlsx = build_in_subprocess(reports["xlsx"].pk, db_url, args.repeat)
    print(f"xlsx: {xlsx}")
    result("xlsx_100k_s", xlsx["seconds"])
    result("xlsx_100k_peak_rss_mb", xlsx["peak_rss_mb"])
    pdf = build_in_subprocess(reports["pdf"].pk, db_url, args.repeat)
    print(f"pdf: {pdf}")
    result("pdf_10k_s", pdf["seconds"])


if __name__ == "__main__":
    main()

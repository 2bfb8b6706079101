"""Shared set-up for benchmarks: a throwaway database and Django, from the repo root.

Benchmarks never touch your real database: they use BENCH_DATABASE_URL if set (e.g. a PostgreSQL
database you can drop), else a temporary SQLite file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(*, name: str, migrate: bool = True) -> str:
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        folder = tempfile.mkdtemp(prefix=f"medai-bench-{name}-")
        url = f"sqlite:///{folder}/bench.sqlite3"
        os.environ.setdefault("TEST_MEDIA_ROOT", f"{folder}/media")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medai.settings_test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    return url


def result(name: str, value: float | int) -> None:
    """The headline figure in the one machine-readable form the README quotes."""
    print(f"RESULT {name}={value}")

"""GIN index for Russian full-text search over transcripts (PostgreSQL only; a no-op on SQLite).

It lives here rather than in ``calls`` so that it cannot collide with the ``calls`` app's own
migration history; it serves ``calls.selectors.call_search``, whose expression it must match:
``to_tsvector('russian'::regconfig, COALESCE(text, ''))`` (what ``SearchVector("text",
config="russian")`` compiles to).
"""

from django.db import migrations

INDEX = "calls_transcript_text_fts_ru"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON calls_transcript "
        "USING gin (to_tsvector('russian'::regconfig, COALESCE(text, '')))"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0002_scorecards_settings_summaries"),
        ("calls", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]

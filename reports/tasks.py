"""django-q2 entry points: thin, take ids, call a service."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation


def build_report(report_id: int) -> str:
    from reports.services import report_build

    # Reports are read by the clinic: write them in the deployment's language.
    with translation.override(settings.LANGUAGE_CODE):
        return report_build(report_id)


def refresh_rollups() -> str:
    from reports.rollups import period_recommendations_sync, rollups_refresh_dirty

    days = rollups_refresh_dirty()
    summaries = period_recommendations_sync()
    return f"{days} day(s), {summaries} summary(ies)"


def rebuild_rollups_nightly() -> str:
    from reports.rollups import rollups_rebuild_recent

    counts = rollups_rebuild_recent()
    return f"{counts.metrics} metric rows, {counts.criteria} criterion rows, {counts.details} calls"

"""Metric roll-ups: the ``bi_*`` tables, kept up to date incrementally and rebuilt nightly.

* A call's (clinic, day) is **marked dirty** when the pipeline analyses or finishes it, or skips or
  fails it (:mod:`reports.apps` wires the hooks), or when it is deleted.
* :func:`rollups_refresh_dirty` (every minute) recomputes the dirty days.
* :func:`rollups_rebuild` (nightly, over the last ``ROLLUP_REBUILD_DAYS``, or any range on demand)
  catches late changes nobody marked: CRM bookings, a call that moved to another day.

Recomputing a range deletes its rows and re-inserts them from one aggregate query per table, in one
transaction, under a per-clinic lock: idempotent by construction, and groups that no longer have
calls simply disappear. The metric definitions are PRODUCT.md's, in one place (:mod:`reports.rollups.tables`):

* quality % = mean overall score of analysed, scored calls × 10 ("other" and unanalysed calls are
  excluded, zero scores are included);
* good-calls % = share of the scored calls with overall ≥ 7;
* conversion % = booked / answered.
"""

from reports.rollups.refresh import (
    RollupCounts,
    period_recommendations_sync,
    rollup_mark_dirty,
    rollups_rebuild,
    rollups_rebuild_recent,
    rollups_recompute,
    rollups_refresh_dirty,
)
from reports.rollups.tables import GOOD_SCORE, INTERESTED_LEVELS

__all__ = [
    "GOOD_SCORE",
    "INTERESTED_LEVELS",
    "RollupCounts",
    "period_recommendations_sync",
    "rollup_mark_dirty",
    "rollups_rebuild",
    "rollups_rebuild_recent",
    "rollups_recompute",
    "rollups_refresh_dirty",
]

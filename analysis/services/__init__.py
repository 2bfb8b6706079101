"""Writes for analysis (services write, selectors read).

* :mod:`.scorecards` — seed the default scorecard, replace criteria, version every change;
* :mod:`.analyse` — the pipeline's ``analyse`` step;
* :mod:`.summaries` — weekly and monthly coaching summaries.
"""

from analysis.services.analyse import analysis_input_for, analysis_save, call_analyse, step_analyse
from analysis.services.scorecards import (
    scorecard_bump_version,
    scorecard_ensure_default,
    scorecard_record_version,
    scorecard_replace_criteria,
    scorecard_reset_to_default,
    scorecards_ensure_for_clinics,
)
from analysis.services.summaries import period_bounds, period_summaries_generate_due, period_summary_generate

__all__ = [
    "analysis_input_for",
    "analysis_save",
    "call_analyse",
    "period_bounds",
    "period_summaries_generate_due",
    "period_summary_generate",
    "scorecard_bump_version",
    "scorecard_ensure_default",
    "scorecard_record_version",
    "scorecard_replace_criteria",
    "scorecard_reset_to_default",
    "scorecards_ensure_for_clinics",
    "step_analyse",
]

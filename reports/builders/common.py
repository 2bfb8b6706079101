"""Labels and formatting shared by the PDF and XLSX builders (so both say the same thing)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from reports import labels


def title_of(data) -> str:
    if data.administrator is not None:
        return _("Calls report: %(clinic)s — %(administrator)s") % {"clinic": data.clinic.name, "administrator": data.administrator.name}
    return _("Calls report: %(clinic)s") % {"clinic": data.clinic.name}


def period_of(data) -> str:
    return f"{data.date_from:%d.%m.%Y} – {data.date_to:%d.%m.%Y}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def summary_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the headline figures, in reading order."""
    return [
        (_("Calls"), str(summary["calls"])),
        (_("Answered (talked)"), f"{summary['answered']} ({pct(summary['talk_rate'])})"),
        (_("Interested"), f"{summary['interested']} ({pct(summary['interest_rate'])})"),
        (_("Booked"), str(summary["booked"])),
        (_("Conversion (booked / answered)"), pct(summary["conversion_pct"])),
        (_("Analysed calls"), str(summary["analysed"])),
        (_("Scored calls"), str(summary["scored"])),
        (_("Quality (mean overall score × 10)"), pct(summary["quality_pct"])),
        (_("Good calls (overall ≥ 7)"), pct(summary["good_calls_pct"])),
        (_("Average talk time, min:s"), duration(summary["duration_avg_s"])),
        (_("Total talk time, h"), number(summary["duration_total_s"] / 3600, 1)),
    ]


def group_headers() -> list[str]:
    return [
        _("Calls"),
        _("Answered"),
        _("Booked"),
        _("Conversion"),
        _("Avg talk, min:s"),
        _("Quality"),
        _("Good calls"),
    ]


def group_values(row: dict[str, Any]) -> list[str]:
    return [
        str(row["calls"]),
        str(row["answered"]),
        str(row["booked"]),
        pct(row["conversion_pct"]),
        duration(row["duration_avg_s"]),
        pct(row["quality_pct"]),
        pct(row["good_calls_pct"]),
    ]


def administrator_label(row: dict[str, Any]) -> str:
    return row.get("label") or (_("Not attributed") if row["key"] is None else str(row["key"]))


def source_label(value: str) -> str:
    return value or _("Unknown source")


def call_type_label(value: str) -> str:
    return str(labels.CALL_TYPES.get(value, value)) if value else _("Not analysed")


def direction_label(value: str) -> str:
    return str(labels.DIRECTIONS.get(value, value))


def status_label(value: str) -> str:
    return str(labels.STATUSES.get(value, value))


def interest_label(value: str) -> str:
    return str(labels.INTERESTS.get(value, value)) if value else ""


def weekdays() -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


def week_label(day: date | str) -> str:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{day:%d.%m}"


def booked_label(value: bool | None) -> str:
    return _("yes") if value else (_("no") if value is False else "—")

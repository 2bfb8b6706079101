"""The XLSX report: the PDF's content as sheets, numbers as numbers, calls with hyperlinks.

openpyxl's write-only mode streams rows to disk, so a 100 000-call sheet stays within a small,
constant amount of memory (the calls themselves are streamed from the database in chunks).
Links are ``HYPERLINK()`` formulas: openpyxl keeps every cell hyperlink object in memory until
the sheet is closed (≈ 2.5 KB each, 500 MB for 100 000 calls), a formula costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from analysis.models import Analysis, CallType
from calls.models import Call
from reports import selectors
from reports.builders import common

MAX_CALL_ROWS = 1_048_000  # Excel's limit is 1 048 576 rows per sheet
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="EEF2FB")


class _Sheet:
    def __init__(self, workbook: Workbook, title: str, widths: list[float] | None = None) -> None:
        self.ws = workbook.create_sheet(title=title[:31])
        self.rows_written = 0
        for index, width in enumerate(widths or [], start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width

    def header(self, values: list) -> None:
        cells = []
        for value in values:
            cell = WriteOnlyCell(self.ws, value=value)
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
            cells.append(cell)
        self.ws.append(cells)

    def row(self, values: list) -> None:
        self.ws.append(values)
        self.rows_written += 1

    @staticmethod
    def link(url: str, text: str) -> str | None:
        """A clickable cell. The URLs are ours (signed, ASCII, no quotes), well under Excel's 255."""
        if not url:
            return None
        return f'=HYPERLINK("{url.replace(chr(34), "%22")}","{text}")'




def _group_headers(first: str) -> list[str]:
    return [
        first,
        _("Calls"),
        _("Answered"),
        _("Interested"),
        _("Booked"),
        _("Conversion, %"),
        _("Avg talk, s"),
        _("Scored calls"),
        _("Quality, %"),
        _("Good calls, %"),
    ]


def _group_row(label: str, g: dict) -> list:
    return [
        label,
        g["calls"],
        g["answered"],
        g["interested"],
        g["booked"],
        g["conversion_pct"],
        g["duration_avg_s"],
        g["scored"],
        g["quality_pct"],
        g["good_calls_pct"],
    ]


def _groups(workbook: Workbook, title: str, first: str, groups: list[dict], label) -> None:
    sheet = _Sheet(workbook, title, [34] + [13] * 9)
    sheet.header(_group_headers(first))
    for group in groups:
        sheet.row(_group_row(label(group), group))


def build_xlsx(data, path: Path) -> None:
    workbook = Workbook(write_only=True)

    summary = _Sheet(workbook, _("Summary"), [44, 24])
    summary.row([common.title_of(data)])
    summary.row([_("Period (clinic time)"), common.period_of(data)])
    summary.row([])
    figures = data.summary
    for label, key in (
        (_("Calls"), "calls"),
        (_("Answered (talked)"), "answered"),
        (_("Talk rate, %"), "talk_rate"),
        (_("Interested"), "interested"),
        (_("Interest rate, %"), "interest_rate"),
        (_("Booked"), "booked"),
        (_("Conversion (booked / answered), %"), "conversion_pct"),
        (_("Analysed calls"), "analysed"),
        (_("Scored calls"), "scored"),
        (_("Quality (mean overall score × 10), %"), "quality_pct"),
        (_("Good calls (overall ≥ 7), %"), "good_calls_pct"),
        (_("Average talk time, s"), "duration_avg_s"),
        (_("Total talk time, s"), "duration_total_s"),
    ):
        summary.row([label, figures[key]])

    if data.administrator is None:
        _groups(workbook, _("Administrators"), _("Administrator"), data.administrators, common.administrator_label)
    _groups(workbook, _("Sources"), _("Source"), data.sources, lambda g: common.source_label(g["key"]))
    _groups(workbook, _("Call types"), _("Call type"), data.call_types, lambda g: common.call_type_label(g["key"]))
    _groups(workbook, _("Directions"), _("Direction"), data.directions, lambda g: common.direction_label(g["key"]))
    _groups(workbook, _("Weeks"), _("Week"), data.weeks, lambda g: g["key"])

    weeks = data.criteria_weeks[0]["weeks"] if data.criteria_weeks else []
    criteria = _Sheet(workbook, _("Criteria by week"), [22, 44] + [9] * (len(weeks) + 1))
    criteria.header([_("Call type"), _("Criterion"), *[common.week_label(w) for w in weeks], _("Period")])
    for block in data.criteria_weeks:
        for row in block["rows"]:
            criteria.row([block["label"], row["title"], *row["values"], row["average"]])

    heat = _Sheet(workbook, _("Weekday × hour"), [10] + [6] * 24)
    heat.header([_("Day"), *[str(h) for h in range(24)]])
    for name, counts in zip(common.weekdays(), data.heatmap, strict=True):
        heat.row([name, *counts])

    recs = _Sheet(workbook, _("Period recommendations"), [12, 12, 12, 100])
    recs.header([_("Period"), _("From"), _("To"), _("Recommendation")])
    for summary_row in data.period_recommendations:
        for line in summary_row["recommendations"]:
            recs.row([summary_row["kind_label"], summary_row["start"], summary_row["end"], line])

    _calls(workbook, data)
    workbook.save(str(path))


def _calls(workbook: Workbook, data) -> None:
    sheet = _Sheet(workbook, _("Calls"), [17, 24, 10, 10, 9, 18, 18, 7, 8, 10, 50, 60, 12, 12])
    sheet.header(
        [
            _("Started (clinic time)"),
            _("Administrator"),
            _("Direction"),
            _("Status"),
            _("Duration, s"),
            _("Source"),
            _("Call type"),
            _("Score"),
            _("Booked"),
            _("Interest"),
            _("Summary"),
            _("Recommendations"),
            _("Transcript"),
            _("Recording"),
        ]
    )
    tz = data.clinic.tz
    open_text, listen_text = _("open"), _("listen")
    # Labels resolved once, not once per call.
    call_types = {key: common.call_type_label(key) for key in ["", *CallType.values]}
    directions = {key: common.direction_label(key) for key in Call.Direction.values}
    statuses = {key: common.status_label(key) for key in Call.Status.values}
    interests = {key: common.interest_label(key) for key in ["", *Analysis.Interest.values]}
    booked_labels = {value: common.booked_label(value) for value in (True, False, None)}
    details = selectors.call_details(clinic=data.clinic, date_from=data.date_from, date_to=data.date_to, administrator=data.administrator)
    for (
        _call_id,
        started_at,
        administrator,
        direction,
        status,
        duration,
        source,
        call_type,
        score,
        booked,
        interest,
        summary,
        recommendations,
        call_url,
        recording_url,
    ) in selectors.call_rows(details, limit=MAX_CALL_ROWS + 1):
        if sheet.rows_written == MAX_CALL_ROWS:
            sheet.row([_("More calls than a sheet can hold: the first %(n)d are listed.") % {"n": MAX_CALL_ROWS}])
            break
        sheet.row(
            [
                started_at.astimezone(tz).replace(tzinfo=None),
                administrator,
                directions.get(direction, direction),
                statuses.get(status, status),
                duration,
                source,
                call_types.get(call_type, call_type),
                float(score) if score is not None else None,
                booked_labels[booked],
                interests.get(interest, interest),
                summary,
                recommendations,
                sheet.link(call_url, open_text),
                sheet.link(recording_url, listen_text),
            ]
        )

"""The PDF report (reportlab platypus): summary, administrators, criteria by week, charts,
period recommendations and per-call recommendations with signed links."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from reports import selectors
from reports.builders import charts, common
from reports.builders.fonts import BOLD, REGULAR, register_fonts

MAX_WEEK_COLUMNS = 8
PAGE_WIDTH = A4[0] - 30 * mm


def _styles() -> dict[str, ParagraphStyle]:
    register_fonts()
    base = ParagraphStyle("base", fontName=REGULAR, fontSize=9, leading=12, alignment=TA_LEFT)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "muted": ParagraphStyle("muted", parent=base, fontSize=8, textColor=colors.HexColor("#666666")),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=16, leading=20, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=12, leading=15, spaceBefore=10, spaceAfter=6),
        "h3": ParagraphStyle("h3", parent=base, fontName=BOLD, fontSize=10, leading=13, spaceBefore=6, spaceAfter=4),
        "bullet": ParagraphStyle("bullet", parent=base, leftIndent=10, bulletIndent=2),
    }


def _header_cells(values: list) -> list:
    first = ParagraphStyle("th", fontName=BOLD, fontSize=7, leading=8.5)
    other = ParagraphStyle("th-right", parent=first, alignment=TA_RIGHT)
    return [Paragraph(escape(str(v)), first if i == 0 else other) if isinstance(v, str) else v for i, v in enumerate(values)]


def _table(rows: list[list], widths: list[float] | None = None, *, header: bool = True) -> Table:
    if header:
        rows = [_header_cells(rows[0]), *rows[1:]]
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), REGULAR),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        style += [
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2fb")),
            ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
        ]
    table.setStyle(TableStyle(style))
    return table


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text or ""), style)


def _summary(data, st) -> list:
    rows = [[_p(label, st["body"]), _p(value, st["body"])] for label, value in common.summary_lines(data.summary)]
    return [_p(_("Summary"), st["h2"]), _table(rows, [95 * mm, 60 * mm], header=False)]


def _groups(title: str, first_header: str, groups: list[dict], label, st) -> list:
    if not groups:
        return []
    rows = [[first_header, *common.group_headers()]]
    rows += [[_p(label(g), st["small"]), *common.group_values(g)] for g in groups]
    widths = [47 * mm] + [(PAGE_WIDTH - 47 * mm) / 7] * 7
    return [_p(title, st["h2"]), _table(rows, widths)]


def _criteria(data, st) -> list:
    story: list = [_p(_("Criteria: weekly averages by call type (0–10)"), st["h2"])]
    if not data.criteria_weeks:
        return [*story, _p(_("No scored calls in this period."), st["muted"])]
    for block in data.criteria_weeks:
        weeks = block["weeks"]
        shown = weeks[-MAX_WEEK_COLUMNS:]
        offset = len(weeks) - len(shown)
        header = [_("Criterion"), *[common.week_label(w) for w in shown], _("Period")]
        rows = [header]
        for row in block["rows"]:
            values = row["values"][offset:]
            rows.append([_p(row["title"], st["small"]), *[common.number(v, 1) for v in values], common.number(row["average"], 1)])
        title_width = 62 * mm
        other = (PAGE_WIDTH - title_width) / (len(shown) + 1)
        flow = [_p(block["label"], st["h3"]), _table(rows, [title_width] + [other] * (len(shown) + 1))]
        if offset:
            flow.append(_p(_("The last %(n)d weeks are shown; “Period” is the average over the whole period.") % {"n": len(shown)}, st["muted"]))
        story.extend([KeepTogether(flow)] if len(rows) < 25 else flow)
    return story


def _charts(data, st) -> list:
    admins = data.administrators
    names = [common.administrator_label(a) for a in admins]
    story: list = [PageBreak(), _p(_("Charts"), st["h2"])]
    story.append(charts.hbar(_("Calls per administrator"), names, [a["calls"] for a in admins], value_format="{:.0f}"))
    story.append(Spacer(1, 6))
    story.append(
        charts.hbar(
            _("Average talk time per administrator, min"),
            names,
            [(a["duration_avg_s"] or 0) / 60 for a in admins],
            color=charts.ORANGE,
            value_format="{:.1f}",
        )
    )
    story.append(Spacer(1, 6))
    story.append(
        charts.hbar(
            _("Conversion by traffic source, %"),
            [common.source_label(s["key"]) for s in data.sources],
            [s["conversion_pct"] for s in data.sources],
            color=charts.GREEN,
            value_format="{:.1f}",
            max_value=100,
        )
    )
    story.append(Spacer(1, 6))
    story.append(
        charts.hbar(
            _("Conversion by call type, %"),
            [common.call_type_label(t["key"]) for t in data.call_types],
            [t["conversion_pct"] for t in data.call_types],
            color=charts.GREEN,
            value_format="{:.1f}",
            max_value=100,
        )
    )
    story.append(Spacer(1, 6))
    story.append(charts.heatmap(_("Calls by weekday and hour (clinic time)"), data.heatmap, common.weekdays()))
    story.append(Spacer(1, 6))
    story.append(
        charts.line(
            _("Quality by week, %"), [common.week_label(w["key"]) for w in data.weeks], [w["quality_pct"] for w in data.weeks]
        )
    )
    return story


def _period_recommendations(data, st) -> list:
    story: list = [_p(_("Recommendations for the period"), st["h2"])]
    if not data.period_recommendations:
        return [*story, _p(_("No weekly or monthly summary covers this period yet."), st["muted"])]
    for summary in data.period_recommendations:
        head = f"{summary['kind_label']} {summary['start']:%d.%m.%Y} – {summary['end']:%d.%m.%Y}"
        if summary["average_score"] is not None:
            head += " · " + _("average score %(score)s") % {"score": summary["average_score"]}
        story.append(_p(head, st["h3"]))
        for line in summary["recommendations"]:
            story.append(Paragraph(escape(line), st["bullet"], bulletText="•"))
    return story


def _call_recommendations(data, st) -> list:
    limit = int(settings.REPORT_PDF_MAX_CALLS)
    story: list = [PageBreak(), _p(_("Calls: recommendations"), st["h2"])]
    total = data.calls_with_recommendations
    if total > limit:
        story.append(
            _p(
                _("The %(shown)d lowest-scored of %(total)d calls are listed; the XLSX report has all of them.") % {"shown": limit, "total": total},
                st["muted"],
            )
        )
    details = selectors.call_details(clinic=data.clinic, date_from=data.date_from, date_to=data.date_to, administrator=data.administrator)
    listed = 0
    fields = selectors.CALL_ROW_FIELDS
    for values in selectors.call_rows(details, limit=limit, worst_first=True, only_with_recommendations=True):
        listed += 1
        row = dict(zip((*fields[:-1], "call_url", "recording_url"), values, strict=True))
        score = common.number(float(row["overall_score"]), 1) if row["overall_score"] is not None else "—"
        head = " · ".join(
            part
            for part in (
                f"{row['started_at'].astimezone(data.clinic.tz):%d.%m.%Y %H:%M}",
                row["administrator_name"] or _("Not attributed"),
                common.call_type_label(row["call_type"]),
                _("score %(score)s") % {"score": score},
                _("booked: %(value)s") % {"value": common.booked_label(row["booked"])},
            )
        )
        links = f'<a href="{escape(row["call_url"])}" color="#3b6fd8">{escape(_("Transcript"))}</a>'
        if row["recording_url"]:
            links += f' · <a href="{escape(row["recording_url"])}" color="#3b6fd8">{escape(_("Recording"))}</a>'
        flow = [Paragraph(f"<b>{escape(head)}</b> · {links}", st["body"])]
        if row["summary"]:
            flow.append(_p(row["summary"], st["small"]))
        for line in row["recommendations"].splitlines():
            flow.append(Paragraph(escape(line), st["bullet"], bulletText="•"))
        flow.append(Spacer(1, 5))
        story.append(KeepTogether(flow))
    if not listed:
        story.append(_p(_("No call recommendations in this period."), st["muted"]))
    return story


def build_pdf(data, path: Path) -> None:
    st = _styles()
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=common.title_of(data),
        author="MedAI",
        subject=common.period_of(data),
    )
    story: list = [
        _p(common.title_of(data), st["title"]),
        _p(_("Period: %(period)s (clinic time)") % {"period": common.period_of(data)}, st["muted"]),
        *_summary(data, st),
    ]
    if data.administrator is None:
        story += _groups(_("Administrators"), _("Administrator"), data.administrators, common.administrator_label, st)
    story += _groups(_("Traffic sources"), _("Source"), data.sources, lambda g: common.source_label(g["key"]), st)
    story += _groups(_("Call types"), _("Call type"), data.call_types, lambda g: common.call_type_label(g["key"]), st)
    story += _groups(_("Directions"), _("Direction"), data.directions, lambda g: common.direction_label(g["key"]), st)
    story += _criteria(data, st)
    story += _charts(data, st)
    story += _period_recommendations(data, st)
    story += _call_recommendations(data, st)

    def _footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(REGULAR, 7)
        canvas.setFillColor(colors.HexColor("#888888"))
        canvas.drawString(15 * mm, 8 * mm, f"MedAI · {common.title_of(data)} · {common.period_of(data)}")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, str(document.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)

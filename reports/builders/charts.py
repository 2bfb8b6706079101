"""Charts for the PDF report, drawn with reportlab.graphics (vector, no browser, no image files)."""

from __future__ import annotations

from collections.abc import Sequence

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

from reports.builders.fonts import BOLD, REGULAR, register_fonts

BLUE = colors.HexColor("#3b6fd8")
GREEN = colors.HexColor("#2e9e5b")
ORANGE = colors.HexColor("#e08a1e")
GREY = colors.HexColor("#888888")
MAX_BARS = 15


def _title(drawing: Drawing, text: str, width: float, height: float) -> None:
    drawing.add(String(0, height - 12, text, fontName=BOLD, fontSize=10, fillColor=colors.black))


def _shorten(label: str, limit: int = 28) -> str:
    label = label or "—"
    return label if len(label) <= limit else label[: limit - 1] + "…"


def hbar(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    width: float = 480,
    color=BLUE,
    value_format: str = "{:g}",
    max_value: float | None = None,
) -> Drawing:
    """A horizontal bar chart, one bar per label (the first MAX_BARS), values printed at the bars."""
    register_fonts()
    labels = [_shorten(str(label)) for label in labels[:MAX_BARS]]
    numbers = [float(v) if v is not None else 0.0 for v in values[:MAX_BARS]]
    bar_height = 14
    plot_height = max(1, len(labels)) * (bar_height + 4)
    height = plot_height + 36
    drawing = Drawing(width, height)
    _title(drawing, title, width, height)
    if not labels:
        drawing.add(String(0, height - 30, "—", fontName=REGULAR, fontSize=9))
        return drawing
    chart = HorizontalBarChart()
    chart.x, chart.y = 150, 8
    chart.width, chart.height = width - 200, plot_height
    # reportlab draws the first category at the bottom: reverse so the list reads top-down.
    chart.data = [list(reversed(numbers))]
    chart.categoryAxis.categoryNames = list(reversed(labels))
    chart.categoryAxis.labels.fontName = REGULAR
    chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.valueAxis.labels.fontName = REGULAR
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    top = max(numbers) if numbers else 0
    chart.valueAxis.valueMax = max_value if max_value is not None else (top * 1.15 if top > 0 else 1)
    chart.bars[0].fillColor = color
    chart.bars[0].strokeColor = None
    chart.barLabels.fontName = REGULAR
    chart.barLabels.fontSize = 7
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    chart.barLabelFormat = lambda v: value_format.format(v)
    drawing.add(chart)
    return drawing


def line(
    title: str, labels: Sequence[str], values: Sequence[float | None], *, width: float = 480, height: float = 170, max_value: float = 100
) -> Drawing:
    """A line over time (weeks); gaps where there is no value."""
    register_fonts()
    drawing = Drawing(width, height)
    _title(drawing, title, width, height)
    if not any(v is not None for v in values):
        drawing.add(String(0, height - 30, "—", fontName=REGULAR, fontSize=9))
        return drawing
    chart = HorizontalLineChart()
    chart.x, chart.y = 40, 30
    chart.width, chart.height = width - 60, height - 60
    chart.data = [[v if v is not None else None for v in values]]
    chart.categoryAxis.categoryNames = list(labels)
    chart.categoryAxis.labels.fontName = REGULAR
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 30 if len(labels) > 8 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(labels) > 8 else "n"
    chart.valueAxis.labels.fontName = REGULAR
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max_value
    chart.lines[0].strokeColor = GREEN
    chart.lines[0].strokeWidth = 2
    chart.lines[0].symbol = makeMarker("FilledCircle", size=4, fillColor=GREEN)
    drawing.add(chart)
    return drawing


def heatmap(title: str, grid: Sequence[Sequence[int]], weekdays: Sequence[str], *, width: float = 480) -> Drawing:
    """Calls by weekday (rows) × hour of day (columns), darker = more calls."""
    register_fonts()
    cell_w = (width - 40) / 24
    cell_h = 14
    height = 7 * cell_h + 44
    drawing = Drawing(width, height)
    _title(drawing, title, width, height)
    peak = max((max(row) for row in grid), default=0) or 1
    top = height - 20
    for hour in range(24):
        if hour % 2 == 0:
            drawing.add(String(40 + hour * cell_w + cell_w / 2, top - 8, str(hour), fontName=REGULAR, fontSize=6, textAnchor="middle"))
    for day, row in enumerate(grid):
        y = top - 12 - (day + 1) * cell_h
        drawing.add(String(0, y + 4, weekdays[day], fontName=REGULAR, fontSize=7))
        for hour, count in enumerate(row):
            shade = count / peak
            fill = colors.Color(1 - 0.77 * shade, 1 - 0.56 * shade, 1 - 0.15 * shade) if count else colors.HexColor("#f4f4f4")
            drawing.add(Rect(40 + hour * cell_w, y, cell_w - 1, cell_h - 1, fillColor=fill, strokeColor=None))
            if count and cell_w > 14:
                text_color = colors.white if shade > 0.6 else colors.black
                drawing.add(
                    String(40 + hour * cell_w + cell_w / 2, y + 4, str(count), fontName=REGULAR, fontSize=5.5, textAnchor="middle", fillColor=text_color)
                )
    return drawing

"""Chart geometry for the server-drawn SVG charts (templates/reports/_charts.html): no JavaScript, a few
hundred bytes per chart, printable; every chart's numbers are also in a table next to it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from ..services import reports
from .tables import wait_ranges

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 200, 44, 28, 10
PLOT_W, PLOT_H = WIDTH - LEFT - 44, HEIGHT - BOTTOM - TOP


@dataclass
class Chart:
    title: Any
    bars: list[dict[str, Any]] = field(default_factory=list)
    line: str = ""  # SVG polyline points (service level %)
    ticks: list[dict[str, Any]] = field(default_factory=list)  # y axis
    labels: list[dict[str, Any]] = field(default_factory=list)  # x axis
    legend: list[dict[str, Any]] = field(default_factory=list)
    height: int = HEIGHT


def _scale(top: float) -> float:
    """A round axis maximum at or above `top`."""
    for step in (1, 2, 5):
        for power in range(0, 9):
            value = step * 10 ** power
            if value >= top:
                return float(value)
    return top or 1.0


def volume_chart(report: reports.Report) -> Chart:
    """Offered and answered per period as bars, the service level as a line (right axis, 0-100 %)."""
    rows = report.rows
    chart = Chart(_l("Volume and service level"), legend=[
        {"css": "offered", "text": _l("Offered")}, {"css": "answered", "text": _l("Answered")},
        {"css": "sl", "text": _l("Service level %")}])
    if not rows:
        return chart
    top = _scale(max(f.offered for _p, f in rows) or 1)
    slot = PLOT_W / len(rows)
    points = []
    for n, (period, figures) in enumerate(rows):
        x = LEFT + n * slot
        for css, value, shift in (("offered", figures.offered, 0.1), ("answered", figures.answered, 0.45)):
            h = PLOT_H * value / top
            chart.bars.append({"css": css, "x": round(x + slot * shift, 1), "w": round(slot * 0.4, 1),
                               "y": round(TOP + PLOT_H - h, 1), "h": round(h, 1), "title": f"{period.label}: {value}"})
        if figures.service_level is not None:
            points.append(f"{x + slot / 2:.1f},{TOP + PLOT_H * (1 - figures.service_level / 100):.1f}")
        every = max(1, len(rows) // 8)
        if n % every == 0:
            chart.labels.append({"x": round(x + slot / 2, 1), "text": period.label})
    chart.line = " ".join(points)
    chart.ticks = [{"y": round(TOP + PLOT_H * (1 - k / 4), 1), "text": f"{top * k / 4:g}",
                    "right": f"{25 * k}%"} for k in range(5)]
    return chart


def wait_chart(report: reports.Report) -> Chart:
    counts = report.total.waits
    chart = Chart(_l("Waiting time distribution"))
    top = _scale(max(counts) or 1)
    slot = PLOT_W / len(counts)
    for n, (label, value) in enumerate(zip(wait_ranges(), counts, strict=True)):
        h = PLOT_H * value / top
        x = LEFT + n * slot
        chart.bars.append({"css": "wait", "x": round(x + slot * 0.15, 1), "w": round(slot * 0.7, 1),
                           "y": round(TOP + PLOT_H - h, 1), "h": round(h, 1), "title": f"{label}: {value}"})
        chart.labels.append({"x": round(x + slot / 2, 1), "text": label})
    chart.ticks = [{"y": round(TOP + PLOT_H * (1 - k / 4), 1), "text": f"{top * k / 4:g}", "right": ""}
                   for k in range(5)]
    return chart


def state_chart(report: reports.Report) -> Chart:
    """Each agent's time in free / busy / each break over the range, as stacked horizontal bars."""
    names, breaks = report.extra["agents"], report.extra["breaks"]
    per_agent = sorted(report.extra["per_agent"].items(), key=lambda kv: names.get(kv[0], ""))
    chart = Chart(_l("Agent time in state"), legend=[{"css": "free", "text": _l("Free")},
                                                     {"css": "busy", "text": _l("Busy")},
                                                     {"css": "break", "text": _l("Break")}])
    top = max((f.connected for _a, f in per_agent), default=0) or 1
    row_h = 22
    chart.height = TOP + BOTTOM + row_h * max(1, len(per_agent))
    for n, (agent, figures) in enumerate(per_agent):
        y, x = TOP + n * row_h, LEFT + 76
        parts = [("free", _l("Free"), figures.free), ("busy", _l("Busy"), figures.busy)] + [
            ("break", breaks.get(b) or _l("Break"), s) for b, s in sorted(figures.breaks.items())]
        for css, label, seconds in parts:
            w = (PLOT_W - 76) * seconds / top
            chart.bars.append({"css": css, "x": round(x, 1), "y": y + 3, "w": round(w, 1), "h": row_h - 6,
                               "title": f"{names.get(agent, '')} · {label}: {int(seconds // 60)} min"})
            x += w
        chart.labels.append({"x": LEFT + 70, "y": y + row_h / 2 + 4, "text": names.get(agent, "")})
    return chart

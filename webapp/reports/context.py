"""What a report page or export shows: the filter read from the query string, the ids checked against
what the user may see (another group's id answers 404), the report, its tables and charts."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, request
from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..inbox.forms import choices
from ..security import visible_agents, visible_campaigns, visible_dialers
from ..services import reports
from ..services import time as clock
from . import charts, tables
from .forms import ReportForm

KINDS: dict[str, dict[str, Any]] = {
    "campaigns": {"title": _l("Campaign report"), "choose": _l("Campaigns"), "visible": visible_campaigns,
                  "name": lambda c: c.name, "report": reports.campaign_report, "tables": tables.campaign_tables,
                  "charts": [charts.volume_chart, charts.wait_chart]},
    "agents": {"title": _l("Agent report"), "choose": _l("Agents"), "visible": visible_agents,
               "name": lambda a: a.display_name, "report": reports.agent_report, "tables": tables.agent_tables,
               "charts": [charts.state_chart]},
    "dialers": {"title": _l("Dialer report"), "choose": _l("Dialers"), "visible": visible_dialers,
                "name": lambda d: d.name, "report": reports.dialer_report, "tables": tables.dialer_tables,
                "charts": []},
}


def chosen_ids(kind: str, form: ReportForm) -> list[int]:
    """The ids asked for (all visible ones when none); any the user may not see: 404."""
    visible = {obj.id: KINDS[kind]["name"](obj) for obj in db.session.scalars(KINDS[kind]["visible"]())}
    form.ids.choices = choices(visible.items())
    asked = [int(v) for v in request.args.getlist("ids") if v.isdigit()]
    if len(asked) != len(request.args.getlist("ids")) or any(i not in visible for i in asked):
        abort(404)
    return asked or list(visible)


def read_span(form: ReportForm) -> reports.Span:
    today = clock.center_now().date()
    form.validate()
    if form.first.errors or form.last.errors:
        raise reports.ReportError(_l("Write the dates as YYYY-MM-DD."))
    first, last = form.first.data or today - timedelta(days=6), form.last.data or today
    form.first.data, form.last.data = first, last
    return reports.make_span(first, last, form.period.data or "day")


def report_context(kind: str) -> dict[str, Any]:
    form = ReportForm(request.args)
    ids = chosen_ids(kind, form)
    spec = KINDS[kind]
    context: dict[str, Any] = {"kind": kind, "kinds": KINDS, "spec": spec, "form": form, "error": None,
                               "tables": [], "charts": [], "query": request.query_string.decode()}
    try:
        span = read_span(form)
    except reports.ReportError as error:
        context["error"] = str(error)
        return context
    report = spec["report"](ids, span)
    shown = spec["tables"](report)
    context.update(span=span, report=report, tables=shown, definitions=tables.definitions(shown),
                   charts=[make(report) for make in spec["charts"]], ids=ids)
    return context


def conversation_scope() -> tuple[list[int], reports.Span]:
    """The campaigns and days of a per-conversation export (the campaign report's filter)."""
    form = ReportForm(request.args)
    ids = chosen_ids("campaigns", form)
    return ids, read_span(form)

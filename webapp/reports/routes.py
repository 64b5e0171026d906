"""Issue 15: reports for supervisors and admins (their security groups' campaigns, agents, dialers)."""
from __future__ import annotations

from typing import Any

from flask import redirect, url_for

from ..security import supervisor_required
from ..services import report_conversations
from ..services.reports import ReportError
from ..templating import render_page
from . import bp, exports
from .context import conversation_scope, report_context

KIND = "<any(campaigns, agents, dialers):kind>"
FMT = "<any(csv, xlsx):fmt>"


@bp.get("/reports")
@supervisor_required
def index() -> Any:
    return redirect(url_for("reports.report", kind="campaigns"))


@bp.get(f"/reports/{KIND}")
@supervisor_required
def report(kind: str) -> Any:
    return render_page("reports/page.html", "reports/_results.html", **report_context(kind))


@bp.get(f"/reports/{KIND}.{FMT}")
@supervisor_required
def export(kind: str, fmt: str) -> Any:
    context = report_context(kind)
    if context["error"]:
        return context["error"], 422
    span = context["span"]
    return exports.download(context["tables"], f"{kind}-{span.first}-{span.last}", fmt)


@bp.get(f"/reports/conversations.{FMT}")
@supervisor_required
def conversations(fmt: str) -> Any:
    try:
        ids, span = conversation_scope()
    except ReportError as error:
        return str(error), 422
    rows = report_conversations.rows(ids, *span.bounds())
    return exports.rows_download("Conversations", report_conversations.header(), rows,
                                 f"conversations-{span.first}-{span.last}", fmt)

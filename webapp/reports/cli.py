"""`flask reports rebuild` / `flask reports refresh`: the report rollups from the raw rows, from a shell."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from ..services import report_rollups
from ..services import time as clock

reports_group = AppGroup("reports", help="Report rollups (issue 15).")


@reports_group.command("rebuild")
def rebuild_command() -> None:
    """Delete every rollup row and compute them all again from the raw rows."""
    now = clock.now()
    buckets = report_rollups.rebuild(now)
    db.session.commit()
    report_rollups.mark_refreshed(now)
    click.echo(f"rebuilt {buckets} buckets of 15 minutes")


@reports_group.command("refresh")
def refresh_command() -> None:
    """What the clock's report-rollups task does: recompute what changed since its last run."""
    now = clock.now()
    buckets = report_rollups.refresh(now)
    db.session.commit()
    report_rollups.mark_refreshed(now)
    click.echo(f"refreshed {buckets} buckets of 15 minutes")

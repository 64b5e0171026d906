"""Issue 15: the report rollups follow the raw rows (services/report_rollups.py)."""
from __future__ import annotations

import logging

from webapp.extensions import db
from webapp.services import report_rollups
from webapp.services import time as clock

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)


@periodic("report-rollups", 60.0)
@with_app
def refresh_report_rollups() -> int:
    """Recompute the buckets that may have changed since the last run; idempotent."""
    now = clock.now()
    buckets = report_rollups.refresh(now)
    db.session.commit()
    report_rollups.mark_refreshed(now)
    return buckets

"""F1 bulk loads in the background: the job that loads one confirmed upload, and the clock's recovery of
loads whose worker was lost (services/bulk_loads.py says how a load stays whole either way)."""
from __future__ import annotations

import logging
from typing import Any

from webapp.services import bulk_loads

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)


@with_app
def load_staged_upload(token: str, attempt: int) -> dict[str, Any]:
    """Load one claimed bulk upload into the spool (all or nothing), with live progress."""
    report = bulk_loads.run(token, attempt)
    log.info("bulk load %s attempt %s: %s", token[:8], attempt, report)
    return report


@periodic("bulk-recover", 5.0)
@with_app
def recover_bulk_loads() -> dict[str, int]:
    """Every five seconds: loads whose worker died are queued again (or marked failed after the last try)."""
    return bulk_loads.recover_lost()

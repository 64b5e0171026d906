"""Housekeeping that no request should have to wait for."""
from __future__ import annotations

import logging

from .appctx import with_app
from .periodic import periodic

log = logging.getLogger(__name__)


@periodic("upload-sweep", 600.0)
@with_app
def sweep_staged_uploads() -> int:
    """Bulk files left between preview and confirm are deleted after an hour, even if nobody uploads again."""
    from webapp.dialers import staging

    removed = staging.sweep()
    if removed:
        log.info("removed %d abandoned bulk uploads", removed)
    return removed

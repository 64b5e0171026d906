from flask import render_template

from ..security import supervisor_required
from . import bp


@bp.get("/monitor")
@supervisor_required
def monitor():
    return render_template("error.html", code=200, message="monitor")


@bp.get("/transcripts")
@supervisor_required
def transcripts():
    return render_template("error.html", code=200, message="transcripts")

from flask import render_template

from ..security import supervisor_required
from . import bp


@bp.get("/dialers")
@supervisor_required
def index():
    return render_template("error.html", code=200, message="dialers")

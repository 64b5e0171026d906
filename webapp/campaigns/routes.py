from flask import render_template

from ..security import supervisor_required
from . import bp


@bp.get("/campaigns")
@supervisor_required
def index():
    return render_template("error.html", code=200, message="campaigns")


@bp.get("/members")
@supervisor_required
def members():
    return render_template("error.html", code=200, message="members")

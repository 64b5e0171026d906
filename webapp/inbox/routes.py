from flask import render_template

from ..security import agent_required
from . import bp


@bp.get("/inbox")
@agent_required
def index():
    return render_template("error.html", code=200, message="inbox")

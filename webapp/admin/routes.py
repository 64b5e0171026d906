from flask import render_template

from ..security import admin_required
from . import bp


@bp.get("/admin/users")
@admin_required
def users():
    return render_template("error.html", code=200, message="users")


@bp.get("/admin/providers")
@admin_required
def providers():
    return render_template("error.html", code=200, message="providers")

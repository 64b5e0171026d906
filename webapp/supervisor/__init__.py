from flask import Blueprint

bp = Blueprint("supervisor", __name__)

from . import routes  # noqa: E402,F401

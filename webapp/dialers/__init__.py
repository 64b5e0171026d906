from flask import Blueprint

bp = Blueprint("dialers", __name__)

from . import routes  # noqa: E402,F401

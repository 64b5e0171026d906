"""Live updates over a websocket (flask-sock), fed by Redis pub/sub."""
from flask import Blueprint

bp = Blueprint("live", __name__)

from . import routes  # noqa: E402,F401

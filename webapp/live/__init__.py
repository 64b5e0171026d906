"""Live updates over a websocket (flask-sock), fed by Redis pub/sub. The socket route lives on this
blueprint (not on "the" app) so every app the factory makes has it."""
from flask import Blueprint

bp = Blueprint("live", __name__)

from . import routes  # noqa: E402,F401

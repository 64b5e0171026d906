"""W1: the files customers send, served only through the app to users who may see the conversation."""
from flask import Blueprint

bp = Blueprint("media", __name__)

from . import live, routes  # noqa: E402,F401

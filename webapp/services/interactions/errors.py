"""What a refused action on a conversation raises, in the user's language (or the center's, in a job)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, has_request_context
from flask_babel import force_locale


class InteractionError(Exception):
    """A rule refused the action; str(error) is a translated sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@contextmanager
def translating() -> Iterator[None]:
    """gettext in a job (no request): the center's default language."""
    if has_request_context():
        yield
    else:
        with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "es")):
            yield

"""What a refused action on a conversation raises, in the user's language (or the center's, in a job:
raise it inside `i18n.translating()`)."""
from __future__ import annotations


class InteractionError(Exception):
    """A rule refused the action; str(error) is a translated sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

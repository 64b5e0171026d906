"""One Flask app per worker process, created on first use, so jobs run with an app context."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

_app: Flask | None = None
F = TypeVar("F", bound=Callable[..., Any])


def get_app() -> Flask:
    global _app
    if _app is None:
        from flask import current_app, has_app_context

        if has_app_context():  # a test calling a job inline
            return current_app._get_current_object()  # type: ignore[attr-defined]
        from webapp import create_app

        _app = create_app()
    return _app


def with_app(fn: F) -> F:
    """Run a job inside the app context, and leave no session open behind it."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from flask import has_app_context

        if has_app_context():
            return fn(*args, **kwargs)
        app = get_app()
        with app.app_context():
            from webapp.extensions import db

            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()
    return wrapper  # type: ignore[return-value]

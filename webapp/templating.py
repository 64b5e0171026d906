"""Template helpers: one fragment serves the full page and the htmx request."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app, make_response, render_template, request
from flask_babel import format_datetime, get_locale
from markupsafe import Markup, escape

from .models import utcnow


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render_page(page: str, fragment: str, status: int = 200, **context: Any) -> Any:
    """The full page includes the fragment; an htmx request gets the fragment alone."""
    template = fragment if is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def _to_sink(marks: str) -> Markup:
    """Out-of-band work that applies only where the page has the element. A plain `hx-swap-oob` ("delete",
    "true") logs an htmx error whenever its element is not on the page (a new list item, a row nobody
    shows); these marks go into the page's `#live-sink`, which app.js carries out and empties."""
    return Markup(f'<div hx-swap-oob="beforeend:#live-sink">{marks}</div>')


def oob_remove(*element_ids: str) -> Markup:
    """Out of band: remove these elements where the page has them."""
    return _to_sink("".join(f'<i data-remove="{escape(i)}"></i>' for i in element_ids))


def oob_fill(element_id: str, html: str) -> Markup:
    """Out of band: make `html` the content of this element where the page has it."""
    return _to_sink(f'<div data-fill="{escape(element_id)}">{escape(html)}</div>')


def seconds_since(moment: datetime | None) -> int:
    if moment is None:
        return 0
    return max(0, int((utcnow() - moment).total_seconds()))


def duration(seconds: int | float | None) -> str:
    seconds = int(seconds or 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


def local_time(moment: datetime | None, fmt: str = "short") -> str:
    if moment is None:
        return ""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(current_app.config["CENTER_TIMEZONE"])
    return format_datetime(moment.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None), fmt)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["since"] = seconds_since
    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    app.jinja_env.globals["is_htmx"] = is_htmx
    app.jinja_env.globals["oob_remove"] = oob_remove
    app.jinja_env.globals["oob_fill"] = oob_fill
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

"""Template helpers: one fragment serves the full page and the htmx request; the app's filters.

Every view answers through `render_page` (a page or its fragment) or `respond` (a form post: the
fragment to htmx, a redirect to a plain browser); both set `Vary: HX-Request`.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from .models import utcnow
from .providers.gsm import MAX_MESSAGE_LENGTH
from .services import time as clock
from .services.interactions.messages import whatsapp_window_open
from .services.media import human_size, kind_label
from .services.transcripts import status_label


def is_htmx() -> bool:
    """A fragment is wanted: htmx asked, and not for a boosted link or a back-button restore (both swap the
    answer in as the whole page)."""
    headers = request.headers
    return (headers.get("HX-Request") == "true" and headers.get("HX-Boosted") != "true"
            and headers.get("HX-History-Restore-Request") != "true")


VARY = "HX-Request, HX-History-Restore-Request"


def render_page(page: str, fragment: str, status: int = 200,
                page_context: Callable[[], dict[str, Any]] | None = None, **context: Any) -> Any:
    """The full page includes the fragment; an htmx request gets the fragment alone. `page_context()`
    adds what only the full page shows around the fragment (built only for the full page)."""
    htmx = is_htmx()
    if not htmx and page_context is not None:
        context.update(page_context())
    response = make_response(render_template(fragment if htmx else page, **context), status)
    response.headers["Vary"] = VARY
    return response


def respond(fragment: str, redirect_to: str, *, flashed: str | None = None, category: str = "message",
            status: int = 200, target: str | None = None, push: str | None = None, trigger: str | None = None,
            swap: str | None = None, **context: Any) -> Any:
    """A form post's answer: htmx gets `fragment`, a plain browser a redirect to `redirect_to` with
    `flashed` flashed (the fragment shows that news itself). `target` swaps the fragment into another
    element than the requesting one's hx-target; `push` puts a URL in the history; `trigger` fires an
    event on the page; `swap="none"` leaves the target as it is (the fragment's out-of-band parts still
    apply). htmx looks a retarget up from the requesting element, so a request from an
    element that a socket message may remove meanwhile (an offer's Take) must not retarget."""
    if not is_htmx():
        if flashed:
            flash(flashed, category)
        return redirect(redirect_to)
    response = make_response(render_template(fragment, **context), status)
    if target is not None:
        response.headers.update({"HX-Retarget": target, "HX-Reswap": "innerHTML"})
    if swap is not None:
        response.headers["HX-Reswap"] = swap
    if push:
        response.headers["HX-Push-Url"] = push
    if trigger:
        response.headers["HX-Trigger"] = trigger
    response.headers["Vary"] = VARY
    return response


def failure_status(failed: bool, status: int = 422) -> int:
    """A refused form's status: `status` for a plain browser; 200 for htmx, which swaps only 2xx answers."""
    return status if failed and not is_htmx() else 200


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


# -- filters and globals, for every template ------------------------------------------------
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
    """Center time in the user's language (Babel), for the few times a page shows."""
    return format_datetime(clock.to_center(moment), fmt) if moment is not None else ""


def short_clock(moment: datetime | None, full: bool = False) -> str:
    """Center time, cheaply (no Babel: a list renders dozens): HH:MM today, dd/mm before; full for titles."""
    if moment is None:
        return ""
    local = clock.to_center(moment)
    if full:
        return local.strftime("%d/%m/%Y %H:%M:%S")
    today = clock.center_now().date()
    return local.strftime("%H:%M" if local.date() == today else "%d/%m")


def now_epoch() -> float:
    return clock.epoch(utcnow())


def item_labels() -> dict[str, str]:
    """An inbox item's words, translated once per list (gettext per item was a third of a list's time)."""
    return {"waiting": _("Waiting for your answer"), "unread": _("Unread messages"), "closed": _("Closed"),
            "abandoned": _("Abandoned"), "you": _("You:"), "bot": _("Bot:"), "supervisor": _("Supervisor:"),
            "window_closed": _("24 h window closed"),
            "window_hint": _("WhatsApp 24 h window closed: only a template can be sent."),
            # A message with no text shows what it carries (W1, both ways).
            "image": "📷 " + _("Photo"), "audio": "🎤 " + _("Audio"), "voice": "🎤 " + _("Voice note"),
            "video": "🎬 " + _("Video"), "document": "📄 " + _("Document"), "sticker": "🏷 " + _("Sticker"),
            "location": "📍 " + _("Location"), "contacts": "👤 " + _("Contact card")}


_static_texts: dict[str, tuple[int, int, str]] = {}
_CSS_COMMENT = re.compile(r"/\*.*?\*/\s*", re.S)


def static_text(name: str) -> str:
    """A static file's text, read again when the file changes (size or modification time)."""
    from flask import current_app

    path = Path(current_app.static_folder or "static") / name
    stat = path.stat()
    known = _static_texts.get(name)
    if known is None or known[:2] != (stat.st_mtime_ns, stat.st_size):
        known = _static_texts[name] = (stat.st_mtime_ns, stat.st_size, path.read_text().strip())
    return known[2]


def inline_css(*names: str) -> Markup:
    """The page's stylesheets in a `<style>` of the page itself: a slow link's first paint waits for no other
    round trip (a separate stylesheet blocks rendering for one)."""
    css = "\n".join(_without_comments(static_text(n)) for n in names)
    return Markup(f"<style>{css}</style>")


@functools.lru_cache(maxsize=16)
def _without_comments(css: str) -> str:
    """Once per version of a stylesheet, not once per page (static_text hands back the same string)."""
    return _CSS_COMMENT.sub("", css)


def data_uri(name: str, mimetype: str = "image/svg+xml") -> str:
    """A small static file as a `data:` URL (the favicon): one request fewer."""
    return _data_uri(static_text(name), mimetype)


@functools.lru_cache(maxsize=16)
def _data_uri(text: str, mimetype: str) -> str:
    return f"data:{mimetype},{quote(text, safe=' =:/-.')}"


def deferred_script(name: str) -> Markup:
    """`<script defer>` of a static file, also announced in the answer's `Link: rel=preload` header: the
    browser starts fetching it as soon as the headers arrive, before the page's bytes have."""
    url = url_for("static", filename=name)
    g.setdefault("preload_scripts", []).append(url)
    return Markup('<script src="%s" defer></script>') % url


def preload_header(response: Any) -> Any:
    scripts = g.pop("preload_scripts", None)
    if scripts and response.status_code == 200 and response.mimetype == "text/html":
        response.headers.add("Link", ", ".join(f"<{url}>; rel=preload; as=script" for url in scripts))
    return response


def init_app(app: Flask) -> None:
    app.after_request(preload_header)
    app.jinja_env.filters.update(duration=duration, since=seconds_since, localtime=local_time,
                                 clock=short_clock, epoch=clock.epoch, filesize=human_size)
    app.jinja_env.globals.update(current_locale=lambda: str(get_locale()), is_htmx=is_htmx,
                                 oob_remove=oob_remove, oob_fill=oob_fill, now_epoch=now_epoch,
                                 item_labels=item_labels, attachment_kind=kind_label,
                                 max_message_length=MAX_MESSAGE_LENGTH, inline_css=inline_css, data_uri=data_uri,
                                 deferred_script=deferred_script, whatsapp_window_open=whatsapp_window_open,
                                 status_label=status_label)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

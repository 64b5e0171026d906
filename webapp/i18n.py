"""Translations: one catalog per area under webapp/translations/<area>/, compiled when stale.

Each area keeps its own catalog so the areas can grow independently; Flask-Babel
merges every directory listed in BABEL_TRANSLATION_DIRECTORIES.

A request speaks the user's language (`select_locale`); everything else (jobs, the CLI) speaks the
centre's (`center_locale()`): `translating()` / `gettext_anywhere()` are the one way to translate there.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, has_app_context, has_request_context, request, session
from flask_babel import force_locale, gettext
from flask_login import current_user

TRANSLATIONS = Path(__file__).parent / "translations"


def catalog_dirs() -> list[Path]:
    return sorted(p for p in TRANSLATIONS.iterdir() if p.is_dir()) if TRANSLATIONS.exists() else []


def compile_catalogs(force: bool = False) -> list[Path]:
    """Write each .mo next to its .po when missing or older; atomic, so concurrent starts are safe."""
    written = []
    for po_path in TRANSLATIONS.glob("*/*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parent.parent.name)
        fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
        written.append(mo_path)
    return written


def center_locale() -> str:
    """The contact centre's language (BABEL_DEFAULT_LOCALE): jobs, the CLI, a browser that asks for none."""
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def translating(locale: str | None = None) -> Iterator[None]:
    """gettext inside speaks `locale`, or outside a request (a job, the CLI) the centre's language; a request
    without `locale` keeps the user's. Without an app there is nothing to choose (gettext answers as is)."""
    if (locale is None and has_request_context()) or not has_app_context():
        yield
    else:
        with force_locale(locale or center_locale()):
            yield


def gettext_anywhere(message: str, **values: Any) -> str:
    """gettext that also works outside a request (CLI, jobs, tests): see `translating`."""
    with translating():
        return gettext(message, **values)


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a job or a CLI command: the center's language
        return center_locale()
    if current_user and current_user.is_authenticated and current_user.language in languages:
        return current_user.language
    if session.get("lang") in languages:
        return session["lang"]
    return request.accept_languages.best_match(languages) or center_locale()


def extract_messages(root: Path | None = None) -> set[str]:
    """Every translatable string in the code and templates (as `pybabel extract` finds them)."""
    from babel.messages.extract import extract_from_dir

    root = root or Path(__file__).resolve().parent.parent
    method_map = [("webapp/**.py", "python"), ("webapp/templates/**.html", "jinja2")]
    from babel.messages.extract import DEFAULT_KEYWORDS

    keywords = dict(DEFAULT_KEYWORDS, _l=None, lazy_gettext=None, lazy_pgettext=((1, "c"), 2),
                    lazy_ngettext=(1, 2), n_=(1, 2))
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map=method_map, keywords=keywords,
            options_map={"webapp/templates/**.html": {}}):
        if isinstance(message, tuple):
            found.update(m for m in message if m)
        elif message:
            found.add(message)
    return found


def translated(locale: str = "es") -> dict[str, str]:
    out: dict[str, str] = {}
    for po_path in TRANSLATIONS.glob(f"*/{locale}/LC_MESSAGES/*.po"):
        with po_path.open("rb") as fh:
            for msg in read_po(fh, locale=locale):
                if msg.id and msg.string and not msg.fuzzy:
                    if isinstance(msg.id, tuple):  # plural: both forms are the UI's, each needs its Spanish
                        forms = msg.string if isinstance(msg.string, tuple) else (msg.string,)
                        if all(forms):
                            out.update(zip(msg.id, (forms[0], forms[-1]), strict=True))
                    else:
                        out[msg.id] = msg.string
    return out


def missing(locale: str = "es") -> list[str]:
    """Strings the UI shows that have no translation: a test keeps this empty."""
    done = translated(locale)
    return sorted(m for m in extract_messages() if m not in done)

"""`flask dialer import FILE.csv` and `flask dialer import-dnc FILE.csv`: the dashboard's uploads, from a shell.

Each prints its summary as JSON and exits 0; a refused file prints the error as JSON on stderr
({"line", "field", "message", "error"}), exits 1 and leaves the database as it was. `import` runs in
the shell's own process (no worker needed) and, when stderr is a terminal, shows its progress there.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import ngettext

from ..extensions import db
from ..i18n import translating
from ..models import Dialer
from ..services import phones
from ..services.ingest.bulk import load_bulk
from ..services.ingest.do_not_contact import load_dnc
from ..services.ingest.files import FileRejected

dialer_group = AppGroup("dialer", help="Dialer files: bulk messages (F1) and do-not-contact lists (F2).")


def _dialer_id(name: str | None) -> int | None:
    if name is None:
        return None
    found = db.session.scalar(sa.select(Dialer.id).where(Dialer.name == name))
    if found is None:
        raise click.ClickException(f"no dialer named {name!r}")
    return found


class _Progress:
    """Rows loaded so far and the share of the file read, rewritten in place on a terminal's stderr."""

    def __init__(self, stream: IO[bytes], size: int):
        self.stream, self.size, self.shown, self.last = stream, max(1, size), False, 0.0

    def __call__(self, rows: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        percent = min(100, self.stream.tell() * 100 // self.size)
        text = ngettext("%(num)s row loaded", "%(num)s rows loaded", rows)
        click.echo(f"\r{text} · {percent}%", nl=False, err=True)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            click.echo("", err=True)


def _run(load: Any, path: str, progress: bool = False, **kwargs: Any) -> None:
    with translating(), open(path, "rb") as stream:
        shown = _Progress(stream, os.fstat(stream.fileno()).st_size) if progress and sys.stderr.isatty() else None
        if shown is not None:
            kwargs["on_progress"] = shown
        try:
            summary = load(stream, Path(path).name, **kwargs)
        except FileRejected as exc:
            if shown is not None:
                shown.end()
            click.echo(json.dumps(exc.as_dict(), ensure_ascii=False), err=True)
            sys.exit(1)
        if shown is not None:
            shown.end()
    click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))


@dialer_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dialer", "dialer_name", help="Accept only lines for this dialer.")
@click.option("--region", default=None, help="Region for numbers without country code (DEFAULT_REGION).")
def import_command(path: str, dialer_name: str | None, region: str | None) -> None:
    """Load a bulk-message file (campaign;destination;message;priority;) into the spool."""
    _run(load_bulk, path, progress=True, region=region or phones.default_region(),
         only_dialer_id=_dialer_id(dialer_name))


@dialer_group.command("import-dnc")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dialer", "dialer_name", help="Accept only lines for this dialer.")
def import_dnc_command(path: str, dialer_name: str | None) -> None:
    """Load a do-not-contact file (phone;campaign;) into the list."""
    _run(load_dnc, path, only_dialer_id=_dialer_id(dialer_name))

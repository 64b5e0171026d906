"""`flask dialer import` / `import-dnc` as real subprocesses on the test database."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import ROOT, process_env
from webapp.models import DoNotContact, SpoolMessage, SpoolState

# Each test runs `flask` as a process; the import's bulk insert differs by database kind.
pytestmark = [pytest.mark.slow, pytest.mark.per_database]


def flask(app: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flask", *args], env=process_env(app), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def spool(db: Any) -> list[tuple[str, int, int]]:
    db.session.expire_all()
    return [tuple(r) for r in db.session.execute(sa.select(
        SpoolMessage.destination, SpoolMessage.state, SpoolMessage.priority).order_by(SpoolMessage.id))]


def test_import_good_file(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """Exit 0, a JSON summary on stdout, the rows in the spool."""
    make.dialer(make.group(), name="campsms", dncr=True)
    path = tmp_path / "DISCTEST29042014.csv"
    path.write_text("1campsms;098344384;Hola Mundo!;9999;\n2campsms;12345;Hola Mundo!;9999;\n")
    result = flask(app, "dialer", "import", str(path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["loaded"], summary["invalid"], summary["blocked"], summary["to_process"]) == (2, 1, 0, 1)
    assert summary["per_dialer"] == {"campsms": {"loaded": 2, "to_process": 1, "invalid": 1, "blocked": 0}}
    assert isinstance(summary["upload_id"], int)
    assert spool(db) == [("+59898344384", SpoolState.TO_PROCESS, 9999), ("12345", SpoolState.INVALID, 9999)]


def test_import_refused_file(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """Exit 1, the error (line, field, message) as JSON on stderr, the spool unchanged."""
    make.dialer(make.group(), name="campsms")
    good = tmp_path / "good.csv"
    good.write_text("campsms;098344384;Hola;1;\n")
    assert flask(app, "dialer", "import", str(good)).returncode == 0
    before = spool(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("campsms;098344385;Hola;1;\ncampsms;098344386;Hola;1;\ncampsms;098344387;Hola;alta;\n")
    result = flask(app, "dialer", "import", str(bad))
    assert result.returncode == 1
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert (error["line"], error["field"]) == (3, "priority")
    assert error["error"].startswith("línea 3, campo prioridad:")
    assert result.stdout == ""
    assert spool(db) == before


def test_import_dnc(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """The DNC file loads; a second run adds nothing."""
    dialer = make.dialer(make.group(), name="marcadortest")
    path = tmp_path / "DNCR.csv"
    path.write_text("123578408;marcadortest;\n223113758;marcadortest;\n")
    first = flask(app, "dialer", "import-dnc", str(path))
    assert first.returncode == 0, first.stderr
    assert (json.loads(first.stdout)["added"], json.loads(first.stdout)["already"]) == (2, 0)
    second = flask(app, "dialer", "import-dnc", str(path))
    assert (json.loads(second.stdout)["added"], json.loads(second.stdout)["already"]) == (0, 2)
    db.session.expire_all()
    assert sorted(db.session.scalars(sa.select(DoNotContact.phone).where(
        DoNotContact.dialer_id == dialer.id))) == ["+59823113758", "+59823578408"]


def test_import_shows_progress_on_a_terminal(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    """With stderr a terminal (a pty here), `flask dialer import` rewrites its progress line there as it
    loads; stdout still carries the JSON summary alone. (With stderr a pipe, as above, it prints none.)"""
    import os
    import pty

    make.dialer(make.group(), name="campsms")
    rows = 12_000  # three chunks: progress after each
    path = tmp_path / "BIG.csv"
    path.write_text("".join(f"campsms;0983{n:05d};Hola {n};1;\n" for n in range(rows)))
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "dialer", "import", str(path)], env=process_env(app),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal, text=True)
        os.close(terminal)
        seen = b""
        while True:
            try:
                block = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not block:
                break
            seen += block
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(controller)
    assert proc.returncode == 0
    assert json.loads(stdout)["loaded"] == rows
    progress = seen.decode()
    assert "\r" in progress and "filas cargadas" in progress and "%" in progress, progress
    assert progress.endswith("\n") or progress.endswith("\r\n")


def test_import_prints_no_progress_when_stderr_is_not_a_terminal(app: Any, db: Any, make: Any, tmp_path: Path) -> None:
    make.dialer(make.group(), name="campsms")
    path = tmp_path / "BIG.csv"
    path.write_text("".join(f"campsms;0983{n:05d};Hola {n};1;\n" for n in range(12_000)))
    result = flask(app, "dialer", "import", str(path))
    assert result.returncode == 0 and result.stderr == ""

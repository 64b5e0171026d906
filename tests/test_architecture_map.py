"""docs/architecture.md's table from SPEC ids to code stays true: every SPEC id has a row, every row is a
SPEC id (or `+`, beyond the manual), every path it names exists, and a built feature names its tests (one
not built yet or in progress names its issue)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

MAP = ROOT / "docs" / "architecture.md"
SECTION = "## From a SPEC id to its code"
SPEC_ID = re.compile(r"^- ([A-Z]\d+(?:\.\d+)*) ", re.MULTILINE)


def table() -> dict[str, list[list[str]]]:
    """The section's rows: id -> its rows' cells (an id may have one row; `+` has several)."""
    text = MAP.read_text(encoding="utf-8")
    assert SECTION in text, f"{MAP} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[list[str]]] = {}
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---") or line.startswith("| id "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, f"row with {len(cells)} cells instead of 5 in {MAP}: {line}"
        rows.setdefault(cells[0], []).append(cells)
    return rows


def spec_file() -> Path | None:
    """../shared/SPEC.md beside the checkout (or beside a folder holding it, for a worktree)."""
    for folder in ROOT.parents:
        candidate = folder / "shared" / "SPEC.md"
        if candidate.exists():
            return candidate
    return None


def test_every_path_in_the_map_exists() -> None:
    rows = table()
    assert rows, "the SPEC table is empty"
    missing = []
    for id_, entries in rows.items():
        for cells in entries:
            for path in re.findall(r"`([^`]+)`", " ".join(cells[2:])):
                if not (ROOT / path).exists():
                    missing.append(f"{id_}: {path}")
    assert missing == [], "paths in docs/architecture.md's SPEC table that do not exist: " + ", ".join(missing)


def test_a_built_feature_names_its_modules_and_tests() -> None:
    for id_, entries in table().items():
        for cells in entries:
            if cells[2].startswith(("not built yet", "in progress")):
                assert re.match(r"(not built yet|in progress) \(issue \d+\)", cells[2]), \
                    f"{id_}: say which issue builds it"
                continue
            assert "`webapp/" in cells[2] or "`workers/" in cells[2], f"{id_}: no module named"
            assert "`tests/" in cells[4], f"{id_}: no test named"


def test_every_spec_id_has_a_row_and_every_row_is_a_spec_id() -> None:
    spec = spec_file()
    if spec is None:
        pytest.skip("../shared/SPEC.md is not beside this checkout")
    ids = SPEC_ID.findall(spec.read_text(encoding="utf-8"))
    assert len(ids) > 20, f"read only {ids} from {spec}"
    rows = table()
    assert [i for i in ids if i not in rows] == [], "SPEC ids without a row in docs/architecture.md"
    assert [r for r in rows if r != "+" and r not in ids] == [], "rows for ids SPEC.md does not have"

"""Run every tests/bench/bench_*.py module's `run()` (or those named) and print one JSON object {name: result}.

    python -m tests.bench                 # all
    python -m tests.bench ingest          # bench_ingest.py only ("bench_ingest" works too)

Each benchmark runs in a process of its own: peak RSS, configuration read at import, threads and
connection pools left by one must not show up in another's figures.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = [a.removeprefix("bench_").removesuffix(".py") for a in argv] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    results: dict[str, object] = {}
    failed = False
    for name in names:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            code = subprocess.run([sys.executable, "-m", "tests.bench", "--one", name, out.name],
                                  cwd=HERE.parent.parent, check=False).returncode
            try:
                results[name] = json.loads(Path(out.name).read_text() or "null")
            except ValueError as exc:
                results[name] = {"error": f"no result ({exc})"}
        if code != 0 or not isinstance(results[name], dict) or "error" in results[name]:
            failed = True
            if not isinstance(results[name], dict):
                results[name] = {"error": f"exited with {code}"}
    print(json.dumps(results, indent=2, sort_keys=True))
    return 1 if failed else 0


def one(name: str, out: str) -> int:
    """The child: run one benchmark, write its JSON (or the error) to `out`."""
    try:
        result: object = importlib.import_module(f"tests.bench.bench_{name}").run()
        code = 0
    except Exception as exc:  # one broken benchmark does not hide the others' numbers
        traceback.print_exc()
        result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    Path(out).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        sys.exit(one(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1:]))

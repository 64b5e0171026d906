"""Run every tests/bench/bench_*.py module's `run()` (or those named) and print one JSON object {name: result}.

    python -m tests.bench                 # all
    python -m tests.bench ingest          # bench_ingest.py only ("bench_ingest" works too)
"""
from __future__ import annotations

import importlib
import json
import sys
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
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            results[name] = module.run()
        except Exception as exc:  # one broken benchmark does not hide the others' numbers
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
    print(json.dumps(results, indent=2, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

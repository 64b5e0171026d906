"""Benchmarks (`make bench`): each bench_*.py module has `run() -> dict`; `python -m tests.bench` prints JSON."""

"""F1 ingest at scale: a 1,000,000-row file through load_bulk (the upload's code path) against a plain
`csv` + `sqlite3.executemany` load of the same rows into the same sms_spool table (same columns and
indexes, copied from one migrated database). Each load runs alone in its own subprocess, so its
peak RSS is that of the load (plus the interpreter and, for ours, the app), and its time excludes
setup. Targets: ratio ≤ 2.5, peak RSS ≤ 150 MB.

    python -m tests.bench ingest          (BENCH_INGEST_ROWS=200000 for a quicker run)
"""
from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers import start_redis

ROOT = Path(__file__).resolve().parents[2]
ROWS = int(os.environ.get("BENCH_INGEST_ROWS", "1000000"))
DIALERS = ("campsms", "promo")
TARGET_RATIO = 2.5
TARGET_RSS_MB = 150


ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "2"))


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_file(path: Path, rows: int, seed: int = 7, dialers: tuple[str, ...] = DIALERS) -> dict[str, Any]:
    """Realistic UY numbers (national, +598, landlines, ~2% invalid), some lines with template variables."""
    rng = random.Random(seed)
    names = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Fabián", "Gabriela", "Hugo"]
    invalid = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        buf = []
        for i in range(1, rows + 1):
            k = rng.random()
            if k < 0.80:
                number = f"09{rng.randrange(1, 10)}{rng.randrange(1000000):06d}"
            elif k < 0.90:
                number = f"+598 9{rng.randrange(1, 10)} {rng.randrange(1000):03d} {rng.randrange(1000):03d}"
            elif k < 0.98:
                number = f"2{rng.randrange(10000000):07d}"
            else:
                number = f"{rng.randrange(10000, 9999999)}"
                invalid += 1
            dialer = dialers[i % len(dialers)]
            if i % 3 == 0:
                line = f"{dialer};{number};Hola {{1}}, tu turno #{{2}} es mañana;{i % 10};{rng.choice(names)};{i};"
            else:
                line = f"{dialer};{number};Recordatorio: su factura vence el día 10. Gracias!;{i % 10};"
            buf.append(line)
            if len(buf) >= 10000:
                out.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            out.write("\n".join(buf) + "\n")
    return {"invalid_looking_written": invalid, "file_mb": round(path.stat().st_size / 2**20, 1)}


def _app(db_path: Path, redis_url: str) -> Any:
    sys.path.insert(0, str(ROOT))
    from webapp import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}", "REDIS_URL": redis_url,
                       "TESTING": True, "SECRET_KEY": "bench", "DEFAULT_REGION": "UY"})


# -- child processes ---------------------------------------------------------------------------------
def child_template(db_path: Path, redis_url: str) -> dict[str, Any]:
    """Migrate a database and add the dialers; both loads start from copies of it."""
    from flask_migrate import upgrade

    app = _app(db_path, redis_url)
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Dialer, Provider, SecurityGroup

        upgrade()
        group = SecurityGroup(name="bench")
        provider = Provider(name="bench", type="sandbox", channel="sms", sender="+59829000000", options={})
        provider.credentials = {}
        db.session.add_all([group, provider])
        db.session.flush()
        ids = {}
        for name in DIALERS:
            dialer = Dialer(name=name, security_group_id=group.id, provider_id=provider.id, enabled=True,
                            dncr=True)
            db.session.add(dialer)
            db.session.flush()
            ids[name] = dialer.id
        db.session.commit()
        from webapp.services import dnc

        for i in range(2000):  # a do-not-contact list to check against (DNCR on)
            dnc.add(f"0991{i:05d}", source="manual")
        db.session.commit()
        db.engine.dispose()
    return {"dialers": ids}


def child_ours(db_path: Path, redis_url: str, csv_path: Path) -> dict[str, Any]:
    """load_bulk, exactly as the upload and the CLI call it."""
    app = _app(db_path, redis_url)
    with app.app_context():
        from webapp.services.ingest.bulk import load_bulk

        with csv_path.open("rb") as stream:
            t0, c0 = time.perf_counter(), _cpu()
            summary = load_bulk(stream, csv_path.name, region="UY")
            seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "rows": summary.loaded, "invalid": summary.invalid,
            "blocked": summary.blocked, "peak_rss_mb": _peak_rss_mb()}


def child_plain(db_path: Path, csv_path: Path, dialers: dict[str, int]) -> dict[str, Any]:
    """The floor: csv.reader + sqlite3.executemany by 5,000, one transaction, no checks at all."""
    import csv
    import sqlite3

    t0, c0 = time.perf_counter(), _cpu()
    conn = sqlite3.connect(db_path)
    now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
    sql = ("INSERT INTO sms_spool (dialer_id, destination, body, priority, state, attempts, needs_review, "
           "created_at) VALUES (?, ?, ?, ?, 1, 0, 0, ?)")
    rows = 0
    with csv_path.open(encoding="utf-8", newline="") as fh:
        batch = []
        for rec in csv.reader(fh, delimiter=";"):
            batch.append((dialers[rec[0]], rec[1], rec[2], int(rec[3]), now))
            if len(batch) >= 5000:
                conn.executemany(sql, batch)
                rows += len(batch)
                batch = []
        if batch:
            conn.executemany(sql, batch)
            rows += len(batch)
    conn.commit()
    conn.close()
    return {"seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(_cpu() - c0, 3), "rows": rows,
            "peak_rss_mb": _peak_rss_mb()}


def _child(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "tests.bench.bench_ingest", *args], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        redis_proc, redis_url = start_redis(tmp)
        try:
            csv_path = tmp / "BENCH1M.csv"
            written = write_file(csv_path, ROWS)
            template = tmp / "template.db"
            dialers = _child("template", str(template), redis_url)["dialers"]
            # Alternate the two loads and keep each one's best round: the machine may be shared.
            plains, ours_runs = [], []
            for _round in range(max(1, ROUNDS)):
                for name in ("ours.db", "plain.db"):
                    shutil.copy(template, tmp / name)
                plains.append(_child("plain", str(tmp / "plain.db"), str(csv_path), json.dumps(dialers)))
                ours_runs.append(_child("ours", str(tmp / "ours.db"), redis_url, str(csv_path)))
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    plain = min(plains, key=lambda r: r["seconds"])
    ours = min(ours_runs, key=lambda r: r["seconds"])
    ours["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ours_runs)
    ratio = round(ours["seconds"] / plain["seconds"], 2)
    return {
        "rows": ROWS, "rounds": len(plains), **written,
        "ours": {**ours, "rows_per_s": round(ours["rows"] / ours["seconds"]),
                 "all_seconds": [r["seconds"] for r in ours_runs]},
        "plain_csv_sqlite3": {**plain, "rows_per_s": round(plain["rows"] / plain["seconds"]),
                              "all_seconds": [r["seconds"] for r in plains]},
        "ratio": ratio, "cpu_ratio": round(ours["cpu_seconds"] / plain["cpu_seconds"], 2),
        "target_ratio": TARGET_RATIO, "target_peak_rss_mb": TARGET_RSS_MB,
        "ok": ratio <= TARGET_RATIO and ours["peak_rss_mb"] <= TARGET_RSS_MB,
    }


if __name__ == "__main__":
    kind, rest = sys.argv[1], sys.argv[2:]
    if kind == "template":
        out = child_template(Path(rest[0]), rest[1])
    elif kind == "ours":
        out = child_ours(Path(rest[0]), rest[1], Path(rest[2]))
    elif kind == "plain":
        out = child_plain(Path(rest[0]), Path(rest[1]), json.loads(rest[2]))
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(out))

"""Issue 15: a month's campaign report over 1,000,000 interactions (PostgreSQL when reachable).

Ten campaigns of one security group, fifty agents; 1,000,000 conversations over the 30 days before now
(one in ten abandoned, the rest answered within 0-5 min and closed), inserted with one INSERT … SELECT.
The rollups are built once (`report_rollups.rebuild`, timed: what `flask reports rebuild` costs). Then a
supervisor asks, through the real page, for the month's report by day:
- `one_campaign`: one campaign (100,000 conversations);
- `all_campaigns`: the ten together (the whole 1,000,000);
- `by_hour`: the ten by hour (720 rows on the page).
The reference, in the same run, is the plain way without rollups: the same month's offered / answered /
abandoned / in-SL per campaign and centre day counted straight from `interactions` (one GROUP BY). Target:
the month report's page p95 ≤ 200 ms. The load average is printed before and after.

`python -m tests.bench.bench_reports` prints the JSON; `run()` returns it.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.bench.bench_dispatch import Stack

INTERACTIONS = int(os.environ.get("BENCH_REPORT_INTERACTIONS", "1000000"))
CAMPAIGNS = 10
AGENTS = 50
DAYS = 30
ROUNDS = 30
TARGET_MS = 200


def seed(stack: Stack, now: datetime) -> dict[str, Any]:
    from webapp.extensions import db
    from webapp.models import Campaign, Provider, SecurityGroup, User

    with stack.app.app_context():
        group = SecurityGroup(name="bench")
        provider = Provider(name="bench-sms", type="sandbox", sender="+59829000000", options={})
        provider.credentials = {}
        db.session.add_all([group, provider])
        db.session.flush()
        campaigns = [Campaign(name=f"Campaña {n:02d}", security_group_id=group.id, provider_id=provider.id,
                              did=f"+5982900{n:04d}") for n in range(CAMPAIGNS)]
        agents = [User(username=f"agent{n:03d}", role="agent", password_hash="!") for n in range(AGENTS)]
        supervisor = User(username="sup", role="supervisor", password_hash="!")
        supervisor.set_password("secret-pass-1")
        for user in [*agents, supervisor]:
            user.security_groups.append(group)
        db.session.add_all([*campaigns, *agents, supervisor])
        db.session.commit()
        ids = {"campaigns": [c.id for c in campaigns], "agents": [a.id for a in agents]}
        start = now - timedelta(days=DAYS)
        step = DAYS * 86400.0 / INTERACTIONS
        if db.engine.dialect.name == "postgresql":
            _insert_pg(db, ids, start, step)
        else:
            _insert_python(db, ids, start, step)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("ANALYZE"))
        return ids


def _insert_pg(db: Any, ids: dict[str, list[int]], start: datetime, step: float) -> None:
    db.session.execute(sa.text("""
        INSERT INTO interactions (campaign_id, customer_number, customer_name, channel, direction, status,
            agent_id, created_at, queued_at, first_reply_at, closed_at, disposition, last_message_at,
            out_of_hours_sent, unread, transfers)
        SELECT :c0 + g % :nc, '+598' || (90000000 + g), '', 'sms', 'inbound',
               CASE WHEN g % 10 = 0 THEN 'abandoned' ELSE 'closed' END,
               CASE WHEN g % 10 = 0 THEN NULL ELSE :a0 + g % :na END,
               t, t, CASE WHEN g % 10 = 0 THEN NULL ELSE t + (g % 300) * interval '1 second' END,
               t + interval '10 minutes', CASE WHEN g % 10 = 0 THEN NULL ELSE 'resuelto' END, t,
               g % 50 = 0, 0, CASE WHEN g % 20 = 0 THEN 1 ELSE 0 END
        FROM (SELECT g, CAST(:start AS timestamp) + g * :step * interval '1 second' AS t
              FROM generate_series(0, :n - 1) AS g) AS s"""),
        {"c0": ids["campaigns"][0], "nc": CAMPAIGNS, "a0": ids["agents"][0], "na": AGENTS, "start": start,
         "step": step, "n": INTERACTIONS})


def _insert_python(db: Any, ids: dict[str, list[int]], start: datetime, step: float) -> None:
    from webapp.models import Interaction

    batch = []
    for g in range(INTERACTIONS):
        t = start + timedelta(seconds=g * step)
        answered = g % 10 != 0
        batch.append({"campaign_id": ids["campaigns"][g % CAMPAIGNS], "customer_number": f"+598{90000000 + g}",
                      "status": "closed" if answered else "abandoned", "created_at": t, "queued_at": t,
                      "agent_id": ids["agents"][g % AGENTS] if answered else None, "last_message_at": t,
                      "first_reply_at": t + timedelta(seconds=g % 300) if answered else None,
                      "closed_at": t + timedelta(minutes=10), "disposition": "resuelto" if answered else None,
                      "out_of_hours_sent": g % 50 == 0, "transfers": 1 if g % 20 == 0 else 0})
        if len(batch) == 20_000:
            db.session.execute(sa.insert(Interaction), batch)
            batch = []
    if batch:
        db.session.execute(sa.insert(Interaction), batch)


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1), "rounds": len(ordered)}


def _timed(fn: Any, rounds: int, warm: int = 5) -> list[float]:
    for _ in range(warm):
        fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _reference(app: Any, ids: list[int], first: Any, last: Any) -> Any:
    """The plain way: the month's headline figures per campaign and centre day, from the raw rows."""
    from webapp.extensions import db
    from webapp.models import Campaign, Interaction
    from webapp.services import reports
    from webapp.services.stats import seconds_between

    i = Interaction
    with app.app_context():
        start, end = reports.make_span(first, last, "day").bounds()
        zone = app.config["CENTER_TIMEZONE"]
        day = sa.func.date_trunc("day", sa.func.timezone(zone, sa.func.timezone("UTC", i.created_at))) \
            if db.engine.dialect.name == "postgresql" else sa.func.date(i.created_at)
        answered = i.first_reply_at.is_not(None)
        stmt = (sa.select(i.campaign_id, day.label("day"), sa.func.count(),
                          sa.func.count().filter(answered),
                          sa.func.count().filter(i.status == "abandoned"),
                          sa.func.count().filter(sa.and_(answered, seconds_between(i.created_at, i.first_reply_at)
                                                         <= Campaign.sl_threshold_seconds)))
                .join(Campaign, Campaign.id == i.campaign_id)
                .where(i.campaign_id.in_(ids), i.created_at >= start, i.created_at < end)
                .group_by(i.campaign_id, day))
        rows = db.session.execute(stmt).all()
        db.session.remove()
        return rows


def run() -> dict[str, Any]:
    load_before = os.getloadavg()
    with Stack() as stack:
        app = stack.app
        with app.app_context():
            from webapp.services import time as clock

            now = clock.now().replace(microsecond=0)
            today = clock.to_center(now).date()
        started = time.perf_counter()
        ids = seed(stack, now)
        seeded = time.perf_counter() - started
        from webapp.extensions import db
        from webapp.services import report_rollups

        with app.app_context():
            started = time.perf_counter()
            buckets = report_rollups.rebuild(now)
            db.session.commit()
            rebuilt = time.perf_counter() - started
            from webapp.models import CampaignBucket

            rollup_rows = db.session.scalar(sa.select(sa.func.count()).select_from(CampaignBucket))
        client = app.test_client()
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").data).group(1)
        assert client.post("/login", data={"username": "sup", "password": "secret-pass-1",
                                           "csrf_token": token.decode()}).status_code == 302
        first, last = today - timedelta(days=DAYS - 1), today
        month = f"first={first}&last={last}"
        out: dict[str, Any] = {"database": stack.database, "interactions": INTERACTIONS, "campaigns": CAMPAIGNS,
                               "days": DAYS, "seed_s": round(seeded, 1), "rebuild_s": round(rebuilt, 1),
                               "rebuild_buckets": buckets, "campaign_bucket_rows": rollup_rows,
                               "load_average_before": [round(x, 2) for x in load_before]}
        every = "&".join(f"ids={c}" for c in ids["campaigns"])
        for name, url in (("one_campaign", f"/reports/campaigns?{month}&period=day&ids={ids['campaigns'][0]}"),
                          ("all_campaigns", f"/reports/campaigns?{month}&period=day&{every}"),
                          ("by_hour", f"/reports/campaigns?{month}&period=hour&{every}")):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            samples = _timed(lambda url=url: client.get(url), ROUNDS)
            out[name] = {**_stats(samples), "bytes": len(response.data)}
        html = client.get(f"/reports/campaigns?{month}&period=day&{every}").get_data(as_text=True)
        total = re.search(r"<tfoot><tr><th[^>]*>[^<]*</th><th[^>]*>(\d+)</th>", html)
        out["all_campaigns"]["offered_shown"] = int(total.group(1)) if total else None
        samples = _timed(lambda: _reference(app, ids["campaigns"], first, last), 5, warm=1)
        out["reference_raw_group_by"] = {**_stats(samples),
                                         "rows": len(_reference(app, ids["campaigns"], first, last))}
        out["target_p95_ms"] = TARGET_MS
        out["month_report_p95_within_target"] = max(out["one_campaign"]["p95_ms"],
                                                    out["all_campaigns"]["p95_ms"]) <= TARGET_MS
        out["speedup_vs_reference_p50"] = round(out["reference_raw_group_by"]["p50_ms"]
                                                / max(out["all_campaigns"]["p50_ms"], 0.1), 1)
        out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

"""S1 campaign monitor server time with 200 agents and 2,000 waiting customers (PostgreSQL when reachable).

Ten campaigns of one security group; 200 agents, each a member of two campaigns, most busy with one or two
conversations; 2,000 customers waiting; 6,000 conversations closed today and 20,000 older ones. A supervisor
of the group opens /monitor with every campaign chosen: p50/p95 of the full page, of each polling fragment,
and of the two live renderers (a campaign's interaction.changed, a group's agent.state), with the number of
SQL statements each runs (no N+1: it must not grow with the rows). Target: page p95 ≤ 100 ms.

`python -m tests.bench.bench_monitor` prints the JSON; `run()` returns it.
"""
from __future__ import annotations

import json
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.bench.bench_dispatch import Stack

AGENTS = 200
CAMPAIGNS = 10
WAITING = 2_000
CLOSED_TODAY = 6_000
OLDER = 20_000
ROUNDS = 60
TARGET_MS = 100


def seed(stack: Stack) -> dict[str, Any]:
    """Users and campaigns through the ORM; interactions with one bulk insert."""
    from webapp.extensions import db
    from webapp.models import BreakType, Campaign, Membership, Provider, SecurityGroup, User

    rng = random.Random(5)
    with stack.app.app_context():
        group = SecurityGroup(name="bench")
        provider = Provider(name="bench-sms", type="sandbox", sender="+59829000000", options={})
        provider.credentials = {}
        lunch = BreakType(name="Almuerzo", icon="🍽")
        db.session.add_all([group, provider, lunch])
        db.session.flush()
        campaigns = [Campaign(name=f"Campaña {n:02d}", security_group_id=group.id, provider_id=provider.id,
                              did=f"+5982900{n:04d}", acd_max_waiting=150) for n in range(CAMPAIGNS)]
        states = ["busy"] * 6 + ["free", "free_break", "busy_break", "disconnected"]
        agents = [User(username=f"agent{n:03d}", name=f"Agente {n:03d}", role="agent", password_hash="!",
                       state=states[n % len(states)], on_call=n % 17 == 0,
                       break_type_id=lunch.id if "break" in states[n % len(states)] else None)
                  for n in range(AGENTS)]
        supervisor = User(username="sup", name="Supervisora", role="supervisor", password_hash="!")
        supervisor.set_password("secret-pass-1")
        for user in [*agents, supervisor]:
            user.security_groups.append(group)
        db.session.add_all([*campaigns, *agents, supervisor])
        db.session.flush()
        for n, agent in enumerate(agents):
            for c in (campaigns[n % CAMPAIGNS], campaigns[(n + 3) % CAMPAIGNS]):
                db.session.add(Membership(campaign_id=c.id, user_id=agent.id))
        db.session.commit()
        now = datetime.utcnow().replace(microsecond=0)
        rows = []

        def row(status: str, created: datetime, agent_id: int | None, **kw: Any) -> dict[str, Any]:
            return {"campaign_id": campaigns[len(rows) % CAMPAIGNS].id, "customer_number":
                    f"+598{rng.randrange(91000000, 99999999)}", "customer_name": "", "direction": "inbound",
                    "channel": "whatsapp" if len(rows) % 3 == 0 else "sms", "status": status, "agent_id": agent_id,
                    "created_at": created, "queued_at": created, "last_message_at": created,
                    "out_of_hours_sent": False, "unread": 0, "assigned_at": kw.get("assigned_at"),
                    "first_reply_at": kw.get("first_reply_at"), "closed_at": kw.get("closed_at"),
                    "disposition": kw.get("disposition")}

        for _ in range(WAITING):
            rows.append(row("waiting", now - timedelta(seconds=rng.randrange(5, 1800)), None))
        for n, agent in enumerate(agents):
            for _k in range(0 if agent.state in ("free", "free_break", "disconnected") else 1 + n % 2):
                at = now - timedelta(seconds=rng.randrange(60, 3000))
                rows.append(row("active", at, agent.id, assigned_at=at, first_reply_at=at + timedelta(seconds=30)))
        for _ in range(CLOSED_TODAY):
            at = now - timedelta(seconds=rng.randrange(3600, 8 * 3600))
            rows.append(row("closed", at, rng.choice(agents).id, assigned_at=at,
                            first_reply_at=at + timedelta(seconds=rng.randrange(5, 200)),
                            closed_at=at + timedelta(minutes=10), disposition="resolved"))
        for _ in range(OLDER):
            at = now - timedelta(days=rng.randrange(1, 60), seconds=rng.randrange(0, 86400))
            rows.append(row("closed", at, rng.choice(agents).id, assigned_at=at, first_reply_at=at,
                            closed_at=at + timedelta(minutes=10), disposition="resolved"))
        from webapp.models import Interaction

        db.session.execute(sa.insert(Interaction), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("ANALYZE"))
        return {"group_id": group.id, "campaign_id": campaigns[0].id, "agent_id": agents[0].id,
                "interaction_id": db.session.scalar(sa.select(sa.func.min(Interaction.id)))}


class QueryCounter:
    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._hit)

    def _hit(self, *args: Any) -> None:
        self.count += 1


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def run() -> dict[str, Any]:
    with Stack() as stack:
        ids = seed(stack)
        app = stack.app
        from webapp.extensions import db

        with app.app_context():
            counter = QueryCounter(db.engine)
        client = app.test_client()
        page = client.get("/login")
        import re

        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
        assert client.post("/login", data={"username": "sup", "password": "secret-pass-1",
                                           "csrf_token": token}).status_code == 302
        out: dict[str, Any] = {"database": stack.database, "agents": AGENTS, "waiting": WAITING,
                               "campaigns": CAMPAIGNS, "closed_today": CLOSED_TODAY, "older": OLDER}
        for name, url in (("page", "/monitor"), ("stats_fragment", "/monitor/stats"),
                          ("agents_fragment", "/monitor/agents"), ("waiting_fragment", "/monitor/waiting")):
            for _ in range(10):  # warm caches, templates, connections, prepared statements (psycopg: 5th use)
                client.get(url)
            samples, queries = [], 0
            for _ in range(ROUNDS):
                counter.count = 0
                started = time.perf_counter()
                response = client.get(url)
                samples.append(time.perf_counter() - started)
                queries = counter.count
                assert response.status_code == 200, (url, response.status_code)
            out[name] = {**_stats(samples), "queries": queries, "bytes": len(response.data)}
        page_html = client.get("/monitor").get_data(as_text=True)
        out["page"]["agent_rows"] = page_html.count('class="agent-row')
        out["page"]["waiting_rows"] = page_html.count('id="waiting-')
        from webapp.live.events import make_event
        from webapp.supervisor import live

        for name, fn, topic, kind, data in (
                ("render_interaction_changed", live.render_interaction_changed, f"campaign:{ids['campaign_id']}",
                 "interaction.changed", {"interaction_id": ids["interaction_id"]}),
                ("render_agent_state", live.render_agent_state, f"group:{ids['group_id']}", "agent.state",
                 {"agent_id": ids["agent_id"]})):
            samples = []
            with app.test_request_context("/ws"):
                for _ in range(ROUNDS):
                    event = make_event(topic, kind, data)  # a fresh event: no rendering to reuse
                    counter.count = 0
                    started = time.perf_counter()
                    html = fn(event, None)
                    samples.append(time.perf_counter() - started)
                    db.session.remove()
            frames = [html] if isinstance(html, str) else html or []
            out[name] = {**_stats(samples), "queries": counter.count, "frames": len(frames),
                         "bytes": sum(len(f) for f in frames)}
        out["target_p95_ms"] = TARGET_MS
        out["page_p95_within_target"] = out["page"]["p95_ms"] <= TARGET_MS
        return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

"""Inbox server time on PostgreSQL with 50,000 interactions and 1,000,000 messages.

200 agents in 20 campaigns share the interactions (≈250 each, a few open, the rest closed; 20 messages
each), bulk-loaded with COPY. For one agent with that realistic share: p50/p95 of GET /inbox, of a search,
of opening a conversation (htmx fragment and full page) and of its polling fragment. Target p95 ≤ 50 ms.

`python -m tests.bench.bench_inbox` prints the JSON; `run()` returns it. With `BENCH_KEEP_DB=1` the loaded
database is kept (named after the migrations, so a schema change loads afresh) and reused by the next run.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

from tests.bench.bench_dispatch import ROOT, Stack

INTERACTIONS = 50_000
MESSAGES_EACH = 20
AGENTS = 200
CAMPAIGNS = 20
OPEN_EACH = 4
ROUNDS = 200
TARGET_MS = 50


class InboxStack(Stack):
    """The bench stack; with BENCH_KEEP_DB=1 its PostgreSQL database outlives the run, to be reused."""

    keep = os.environ.get("BENCH_KEEP_DB") == "1"

    def _database(self) -> tuple[str, str]:
        if not self.keep:
            return super()._database()
        import sqlalchemy as sa

        from tests.bench.bench_dispatch import PG_URL

        schema = hashlib.sha1(b"".join(p.read_bytes() for p in sorted((ROOT / "migrations/versions").glob("*.py"))))
        name = f"conversa_bench_inbox_{schema.hexdigest()[:10]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return PG_URL.rsplit("/", 1)[0] + f"/{name}", "postgresql"

    def loaded(self) -> int | None:
        """agent000's id when an earlier run left its data here."""
        from webapp.extensions import db

        if not self.keep:
            return None
        with self.app.app_context():
            if (db.session.scalar(db.text("SELECT count(*) FROM messages")) or 0) < INTERACTIONS * MESSAGES_EACH:
                # An interrupted load: start it again from empty tables.
                db.session.execute(db.text("TRUNCATE users, security_groups, providers RESTART IDENTITY CASCADE"))
                db.session.commit()
                return None
            return db.session.scalar(db.text("SELECT id FROM users WHERE username = 'agent000'"))


def seed(stack: Stack) -> dict[str, Any]:
    """Users, campaigns and memberships through the ORM; interactions and messages with COPY."""
    from webapp.extensions import db
    from webapp.models import Campaign, Membership, Provider, SecurityGroup, User

    rng = random.Random(11)
    started = time.perf_counter()
    with stack.app.app_context():
        group = SecurityGroup(name="bench")
        provider = Provider(name="bench-sms", type="sandbox", sender="+59829000000", options={})
        provider.credentials = {}
        db.session.add_all([group, provider])
        db.session.flush()
        campaigns = [Campaign(name=f"Campaña {n:02d}", security_group_id=group.id, provider_id=provider.id,
                              did=f"+5982900{n:04d}") for n in range(CAMPAIGNS)]
        agents = [User(username=f"agent{n:03d}", name=f"Agente {n}", role="agent", state="busy",
                       password_hash="!") for n in range(AGENTS)]
        agents[0].set_password("secret-pass-1")
        db.session.add_all([*campaigns, *agents])
        db.session.flush()
        for n, agent in enumerate(agents):
            for c in (campaigns[n % CAMPAIGNS], campaigns[(n + 1) % CAMPAIGNS]):
                db.session.add(Membership(campaign_id=c.id, user_id=agent.id))
        db.session.commit()
        agent_ids = [a.id for a in agents]
        campaign_ids = [c.id for c in campaigns]
        names = ["María", "José", "Lucía", "Martín", "Valentina", "Federico", ""]
        now = datetime.utcnow().replace(microsecond=0)
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            seen_open: dict[int, int] = {}
            with cur.copy("COPY interactions (id, campaign_id, customer_number, customer_name, channel, direction, "
                          "status, agent_id, created_at, queued_at, assigned_at, last_message_at, "
                          "last_customer_message_at, out_of_hours_sent, unread, disposition, closed_at) "
                          "FROM STDIN") as copy:
                for i in range(1, INTERACTIONS + 1):
                    agent = agent_ids[i % AGENTS]
                    at = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 90))
                    is_open = seen_open.get(agent, 0) < OPEN_EACH and i > INTERACTIONS - 5 * AGENTS
                    if is_open:
                        seen_open[agent] = seen_open.get(agent, 0) + 1
                        at = now - timedelta(minutes=rng.randrange(0, 30))
                    copy.write_row((i, campaign_ids[i % CAMPAIGNS if i % 2 else (i + 1) % CAMPAIGNS],
                                    f"+598{rng.randrange(91000000, 99999999)}", rng.choice(names), "sms", "inbound",
                                    "active" if is_open else "closed", agent, at, at, at,
                                    at + timedelta(minutes=MESSAGES_EACH), at + timedelta(minutes=MESSAGES_EACH - 1),
                                    False, rng.randrange(0, 3) if is_open else 0,
                                    None if is_open else "Resuelto", None if is_open else at + timedelta(hours=1)))
            with cur.copy("COPY messages (interaction_id, sender_kind, sender_user_id, body, status, created_at) "
                          "FROM STDIN") as copy:
                for i in range(1, INTERACTIONS + 1):
                    agent = agent_ids[i % AGENTS]
                    base = now - timedelta(minutes=(i * 7) % (60 * 24 * 90))
                    for k in range(MESSAGES_EACH):
                        customer = k % 2 == 0
                        copy.write_row((i, "customer" if customer else "agent", None if customer else agent,
                                        "Hola, quería saber el estado de mi pedido número 4411, gracias" if customer
                                        else "¡Hola! Ya lo reviso y te confirmo en un momento.",
                                        "received" if customer else "delivered", base + timedelta(minutes=k)))
            cur.execute("SELECT setval(pg_get_serial_sequence('interactions', 'id'), %s)", (INTERACTIONS,))
            raw.commit()
            cur.execute("ANALYZE interactions")
            cur.execute("ANALYZE messages")
            raw.commit()
        finally:
            raw.close()
    return {"seed_seconds": round(time.perf_counter() - started, 1), "agent_id": agent_ids[0]}


def timed(client: Any, path: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    samples = []
    for _ in range(10):  # warm-up
        assert client.get(path, headers=headers).status_code == 200
    for _ in range(ROUNDS):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
            "max_ms": round(samples[-1], 2)}


def run() -> dict[str, Any]:
    with InboxStack() as stack:
        agent_id = stack.loaded()
        info = seed(stack) if agent_id is None else {"seed_seconds": 0, "agent_id": agent_id}
        from webapp.extensions import db

        with stack.app.app_context():
            own = db.session.execute(db.text(
                "SELECT count(*) FILTER (WHERE status = 'active'), count(*) FROM interactions WHERE agent_id = :a"),
                {"a": info["agent_id"]}).one()
            open_id = db.session.execute(db.text(
                "SELECT id FROM interactions WHERE agent_id = :a AND status = 'active' ORDER BY id LIMIT 1"),
                {"a": info["agent_id"]}).scalar()
            counts = db.session.execute(db.text(
                "SELECT (SELECT count(*) FROM interactions), (SELECT count(*) FROM messages)")).one()
        client = stack.app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"username": "agent000", "password": "secret-pass-1",
                                           "csrf_token": token}).status_code == 302
        hx = {"HX-Request": "true"}
        results = {
            "GET /inbox": timed(client, "/inbox"),
            "GET /inbox/list?q=maría (search)": timed(client, "/inbox/list?q=mar%C3%ADa", hx),
            "GET /inbox/list?q=9912 (number)": timed(client, "/inbox/list?q=9912", hx),
            "GET /inbox/<id> (htmx open)": timed(client, f"/inbox/{open_id}", hx),
            "GET /inbox/<id> (full page)": timed(client, f"/inbox/{open_id}"),
            "GET /inbox/<id>/messages (poll)": timed(client, f"/inbox/{open_id}/messages", hx),
        }
        worst = max(r["p95_ms"] for r in results.values())
        return {"database": stack.database, "interactions": counts[0], "messages": counts[1],
                "agent_interactions": own[1], "agent_open": own[0], "seed_seconds": info["seed_seconds"],
                "rounds": ROUNDS, "requests": results, "worst_p95_ms": worst, "target_p95_ms": TARGET_MS,
                "meets_target": worst <= TARGET_MS}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))

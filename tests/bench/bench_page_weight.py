"""The agent page all-in, as a gzip-capable proxy would serve it: HTML + every stylesheet, script and icon
it references, each gzipped (level 6), summed. Target ≤ 60 KB. A seeded agent with a realistic inbox
(40 open + 30 closed conversations, one open with 60 messages, offers, canned responses, chat lines).

`python -m tests.bench.bench_page_weight` prints the JSON; `run()` returns it.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.helpers import start_redis

ROOT = Path(__file__).resolve().parent.parent.parent
TARGET_KB = 60


def seed(db: Any) -> None:
    """An agent in two campaigns with a working day's inbox."""
    from webapp.models import (
        AgentChatMessage,
        BreakType,
        Campaign,
        CannedResponse,
        Interaction,
        Membership,
        Message,
        Provider,
        SecurityGroup,
        User,
        utcnow,
    )

    group = SecurityGroup(name="ventas")
    provider = Provider(name="twilio", type="twilio", channel="sms", sender="+15005550006", options={})
    provider.credentials = {}
    db.session.add_all([group, provider])
    db.session.flush()
    campaigns = [Campaign(name=n, security_group_id=group.id, provider_id=provider.id, did=f"+5982900{i}",
                          strategy="ringall" if i == 2 else "rrmemory_nocall")
                 for i, n in enumerate(("Ventas", "Soporte técnico", "Cobranzas"))]
    agent = User(username="ana", name="Ana Pérez", role="agent", password_hash="!", state="busy")
    agent.set_password("secret-pass-1")
    boss = User(username="sofia", name="Sofía", role="supervisor", password_hash="!")
    db.session.add_all([*campaigns, agent, boss])
    db.session.flush()
    for c in campaigns:
        db.session.add(Membership(campaign_id=c.id, user_id=agent.id))
        for k in range(8):
            db.session.add(CannedResponse(campaign_id=c.id, title=f"Respuesta {k}", position=k,
                                          body=f"Gracias por escribirnos. Tu consulta número {k} ya está registrada "
                                               "y un agente la revisa ahora mismo."))
    for name, icon in (("Almuerzo", "🍽"), ("Baño", "🚻"), ("Capacitación", "📚"), ("Reunión", "👥")):
        db.session.add(BreakType(name=name, icon=icon))
    now = utcnow()
    for n in range(70):
        at = now - timedelta(minutes=5 * n)
        i = Interaction(campaign_id=campaigns[n % 2].id, customer_number=f"+598991{n:05d}",
                        customer_name="María José Fernández" if n % 3 else "", agent_id=agent.id,
                        status="active" if n < 40 else "closed", created_at=at, queued_at=at, last_message_at=at,
                        last_customer_message_at=at, unread=n % 4 if n < 40 else 0)
        db.session.add(i)
        db.session.flush()
        for k in range(60 if n == 0 else 3):
            db.session.add(Message(interaction_id=i.id, sender_kind="customer" if k % 2 == 0 else "agent",
                                   sender_user_id=None if k % 2 == 0 else agent.id, created_at=at,
                                   status="received" if k % 2 == 0 else "delivered",
                                   body="Hola, quería consultar por el estado de mi pedido y la fecha de entrega "
                                        "estimada, ¿me pueden ayudar?"))
    for n in range(5):
        db.session.add(Interaction(campaign_id=campaigns[2].id, customer_number=f"+598992{n:05d}", status="waiting",
                                   created_at=now, queued_at=now, last_message_at=now))
    for n in range(10):
        db.session.add(AgentChatMessage(agent_id=agent.id, author_id=boss.id if n % 2 == 0 else agent.id,
                                        body="¿Podés tomar la conversación de Cobranzas que está esperando?"))
    db.session.commit()


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="conversa-weight-"))
    redis_proc, redis_url = start_redis(tmp)
    try:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("SECRET_KEY", "bench")
        from flask_migrate import upgrade

        from webapp import create_app
        from webapp.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'w.db'}", "REDIS_URL": redis_url,
                          "WTF_CSRF_ENABLED": True, "TESTING": True})
        with app.app_context():
            upgrade()
            seed(db)
            first = db.session.execute(db.text("SELECT min(id) FROM interactions WHERE status='active'")).scalar()
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
        assert client.post("/login", data={"username": "ana", "password": "secret-pass-1",
                                           "csrf_token": token}).status_code == 302
        resources: dict[str, bytes] = {}
        pages = {}
        for name, path in (("inbox", "/inbox"), ("conversation", f"/inbox/{first}")):
            response = client.get(path)
            assert response.status_code == 200
            pages[name] = response.data
            html = response.get_data(as_text=True)
            for ref in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
                resources[ref.split("?")[0]] = client.get(ref).data  # the path, without its ?v= version
        def gz(data: bytes) -> int:
            return len(gzip.compress(data, 6))

        assets = {ref: {"raw": len(data), "gzip": gz(data)} for ref, data in sorted(resources.items())}
        assets_gz = sum(a["gzip"] for a in assets.values())
        result: dict[str, Any] = {"assets": assets, "assets_gzip_bytes": assets_gz, "target_kb": TARGET_KB}
        for name, data in pages.items():
            total = gz(data) + assets_gz
            result[name] = {"html_raw": len(data), "html_gzip": gz(data), "all_in_gzip_bytes": total,
                            "all_in_gzip_kb": round(total / 1024, 1), "meets_target": total <= TARGET_KB * 1024}
        with app.app_context():
            db.engine.dispose()
        return result
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

"""Issue 15: the rollups the periodic job keeps equal a rebuild from the raw rows."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from report_traffic import generate

NOW = datetime(2026, 3, 10, 15, 7, 30)


def snapshot(db):
    from webapp.services.report_rollups import TABLES

    db.session.expire_all()
    tables = {}
    for table in TABLES:
        cols = [c.name for c in table.__table__.columns]
        rows = db.session.execute(sa.select(*table.__table__.columns)).all()
        tables[table.__tablename__] = sorted(
            tuple(round(v, 3) if isinstance(v, float) else v for v in row) for row in rows)
        assert cols
    return tables


@pytest.fixture
def traffic(make, db):
    g = make.group()
    sms = make.campaign(g, name="Ventas", sl_threshold_seconds=60, abandon_threshold_seconds=300,
                        chat_time_threshold_seconds=1200)
    wa = make.campaign(g, make.provider(channel="whatsapp"), name="WhatsApp", sl_threshold_seconds=30)
    agents = [make.user(f"a{n}", groups=[g]) for n in range(3)]
    dialer = make.dialer(g)
    generate(db, [sms, wa], agents, dialer, NOW - timedelta(hours=30))
    return {"campaigns": [sms, wa], "agents": agents, "dialer": dialer}


def test_rollups_kept_by_refresh_equal_a_rebuild(app, db, traffic):
    from webapp.models import AgentStateSpan, DialerBucket, Interaction, Message, SpoolMessage
    from webapp.services import report_rollups as rr

    # An old conversation still open: its bucket is days before the refresh window.
    old = Interaction(campaign_id=traffic["campaigns"][0].id, customer_number="+59899000001",
                      created_at=NOW - timedelta(days=5), status="waiting")
    db.session.add(old)
    # W5: a dialer message delivered long before t1, read and answered only after t1.
    old_sms = SpoolMessage(dialer_id=traffic["dialer"].id, destination="+59899000009", body="x", state=7,
                           created_at=NOW - timedelta(hours=40), sent_at=NOW - timedelta(hours=40),
                           delivered_at=NOW - timedelta(hours=40))
    db.session.add(old_sms)
    db.session.commit()
    t1 = NOW - timedelta(hours=2)
    rr.refresh(t1)
    db.session.commit()
    rr.mark_refreshed(t1)
    # Things happen after t1: the old one is answered and closed, messages and states go on.
    old.status, old.agent_id, old.first_reply_at = "closed", traffic["agents"][0].id, NOW - timedelta(hours=1)
    old.closed_at, old.disposition = NOW - timedelta(minutes=30), "venta"
    db.session.add(Message(interaction_id=old.id, sender_kind="agent", sender_user_id=traffic["agents"][0].id,
                           created_at=NOW - timedelta(hours=1), body="hola"))
    db.session.add(AgentStateSpan(agent_id=traffic["agents"][1].id, state="free", cause="agent",
                                  started_at=NOW - timedelta(days=3)))  # open since long ago
    old_sms.read_at, old_sms.replied_at = NOW - timedelta(minutes=50), NOW - timedelta(minutes=40)
    db.session.commit()
    rr.refresh(NOW)
    db.session.commit()
    rr.mark_refreshed(NOW)
    kept = snapshot(db)
    for figure, column in (("read", SpoolMessage.read_at), ("replied", SpoolMessage.replied_at)):
        raw = db.session.scalar(sa.select(sa.func.count(column)).where(column < rr.floor(NOW) + rr.BUCKET))
        assert raw > 1 and db.session.scalar(sa.select(sa.func.sum(getattr(DialerBucket, figure)))) == raw
    assert kept["report_campaign_buckets"] and kept["report_agent_state_buckets"] and kept["report_dialer_buckets"]
    rr.rebuild(NOW)
    db.session.commit()
    assert snapshot(db) == kept


def test_recompute_is_idempotent_and_counts_every_conversation(db, traffic):
    from webapp.models import CampaignBucket, Interaction
    from webapp.services import report_rollups as rr

    rr.recompute(NOW - timedelta(days=3), NOW + rr.BUCKET, NOW)
    rr.recompute(NOW - timedelta(days=3), NOW + rr.BUCKET, NOW)
    db.session.commit()
    inbound = db.session.scalar(sa.select(sa.func.count()).where(Interaction.direction == "inbound"))
    assert db.session.scalar(sa.select(sa.func.sum(CampaignBucket.offered))) == inbound
    buckets = db.session.scalars(sa.select(CampaignBucket.bucket)).all()
    assert buckets and all(b == rr.floor(b) for b in buckets)  # cut at 15 minutes on every backend


def test_split_cuts_a_span_at_the_buckets():
    from webapp.services.report_rollups import split

    start = datetime(2026, 3, 1, 10, 10)
    assert list(split(start, datetime(2026, 3, 1, 10, 40))) == [
        (datetime(2026, 3, 1, 10, 0), 300.0), (datetime(2026, 3, 1, 10, 15), 900.0),
        (datetime(2026, 3, 1, 10, 30), 600.0)]

"""/metrics: Prometheus text, for admins and for a scraper with the token only."""
from __future__ import annotations

from tests.helpers import login


def test_metrics_counts_spool_and_interactions(app, client, make, db):
    from webapp.models import SpoolMessage, SpoolState

    group = make.group()
    dialer = make.dialer(group)
    db.session.add_all([SpoolMessage(dialer_id=dialer.id, destination="+59898000001", body="a"),
                        SpoolMessage(dialer_id=dialer.id, destination="+59898000002", body="b",
                                     state=SpoolState.SENT)])
    db.session.commit()
    make.user("boss", role="admin")
    login(client, "boss")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'conversa_spool_messages{state="to_process"} 1' in text
    assert 'conversa_spool_messages{state="sent"} 1' in text
    assert 'conversa_queue_jobs{queue="routing"} 0' in text and 'conversa_queue_jobs{queue="dialer"} 0' in text


def test_metrics_token_and_roles(app, client, make):
    make.user("sup", role="supervisor")
    assert client.get("/metrics").status_code == 404
    app.config["METRICS_TOKEN"] = "scrape-me"
    try:
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer \u00e9t\u00e9"}).status_code == 404  # no 500
    finally:
        app.config["METRICS_TOKEN"] = None
    login(client, "sup")
    assert client.get("/metrics").status_code == 403

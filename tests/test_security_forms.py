"""CSRF on every state-changing route, and user text escaped wherever the admin pages show it."""
from __future__ import annotations

import pytest
from test_access import SKIP_PREFIXES, _rule_ids, url_for_rule, world

from tests.helpers import csrf_token, login

# Gateway webhooks (signatures) and the voice API (bearer token) authenticate without cookies.
NO_CSRF = ("/webhooks/", "/api/")


def _state_changing() -> list[tuple[str, str, str]]:
    from webapp import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(NO_CSRF + SKIP_PREFIXES):
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "DELETE", "PATCH"}):
            out.append((rule.endpoint, rule.rule, method))
    return sorted(out)


@pytest.mark.parametrize("endpoint, path, method", _state_changing())
def test_missing_csrf_token_is_refused(app, client, db, endpoint, path, method):
    """Signed in as the role that may use it, a post without the token answers 400 and changes nothing."""
    assert _rule_ids()  # the same rules the access matrix walks
    objects = world(db)
    role = "agent" if endpoint.startswith("inbox.") else "admin"
    login(client, f"g-{role}")
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint and r.rule == path)
    url = url_for_rule(app, rule, objects)
    response = client.open(url, method=method, data={"name": "x", "csrf_token": "forged"})
    assert response.status_code == 400, f"{method} {url}: {response.status_code}"
    response = client.open(url, method=method, data={"name": "x"})
    assert response.status_code == 400, f"{method} {url} without a token: {response.status_code}"


XSS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')


def _assert_escaped(page: str, payload: str) -> None:
    assert payload not in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    assert escaped in page or escaped.replace("&#34;", "&quot;") in page


@pytest.mark.parametrize("payload", XSS)
def test_text_fields_come_back_escaped(app, client, db, payload):
    """Every text field of the admin and configuration forms, saved with a payload, shows escaped."""
    import sqlalchemy as sa

    from webapp.models import Campaign, Dialer, Provider, SecurityGroup, User

    objects = world(db)
    login(client, "g-admin")
    token = csrf_token(client, "/admin/users")
    p = payload
    group_id = str(objects["group"].id)
    client.post("/admin/groups", data={"csrf_token": token, "name": "G" + p, "description": "D" + p})
    client.post("/admin/breaks", data={"csrf_token": token, "name": "B" + p, "icon": "☕", "enabled": "y"})
    client.post("/admin/voice-campaigns", data={"csrf_token": token, "name": "V" + p})
    client.post("/admin/users", data={"csrf_token": token, "username": "xss.user", "name": "N" + p,
                                      "email": "x@example.com", "role": "agent", "language": "es",
                                      "active": "y", "password": "long-enough-1"})
    client.post("/admin/providers", data={"csrf_token": token, "name": "P" + p, "type": "sandbox", "channel": "sms",
                                          "sender": "S" + p, "max_per_second": "1", "opt-webhook_token": "T" + p})
    provider = db.session.scalar(sa.select(Provider).where(Provider.name == "P" + p))
    client.post("/campaigns", data={
        "csrf_token": token, "name": "C" + p, "service_level_target": "80", "did": "D" + p,
        "provider_id": str(provider.id), "strategy": "ringall", "security_group_id": group_id,
        "out_of_hours_message": "O" + p, "sl_threshold_seconds": "60", "abandon_threshold_seconds": "600",
        "chat_time_threshold_seconds": "900", "acd_max_waiting": "10", "max_interactions_per_agent": "3",
        "canned-0-title": "T" + p, "canned-0-body": "B" + p, "canned-0-template_ref": "R" + p})
    client.post("/dialers/new", data={"csrf_token": token, "name": "M" + p, "provider_id": str(provider.id),
                                      "security_group_id": group_id, "dial_string": "", "interval_ms": "10"})
    db.session.expire_all()
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.name == "C" + p))
    dialer = db.session.scalar(sa.select(Dialer).where(Dialer.name == "M" + p))
    group = db.session.scalar(sa.select(SecurityGroup).where(SecurityGroup.name == "G" + p))
    user = db.session.scalar(sa.select(User).where(User.username == "xss.user"))
    assert None not in (campaign, dialer, group, user), "every form saved"
    pages = {
        "/admin/groups": ["G", "D"], f"/admin/groups/{group.id}": ["G", "D"], "/admin/breaks": ["B"],
        "/admin/voice-campaigns": ["V"], "/admin/users": ["N"], f"/admin/users/{user.id}": ["N"],
        "/admin/providers": ["P", "S"], f"/admin/providers/{provider.id}": ["P", "S", "T"],
        "/campaigns": ["C", "D"], f"/campaigns/{campaign.id}": ["C", "D", "O", "T", "B", "R"],
        f"/members?campaign={campaign.id}": ["C"], f"/dialers/{dialer.id}/edit": ["M"],
        f"/campaigns/{campaign.id}/delete": ["C"], "/admin/audit": [],
    }
    for url, prefixes in pages.items():
        page = client.get(url).get_data(as_text=True)
        assert client.get(url).status_code == 200, url
        for prefix in prefixes:
            _assert_escaped(page, prefix + payload)
        assert payload not in page, url

"""The access matrix: every route of the app × each role and signed-out, from app.url_map.

A new route is covered automatically; its endpoint must be classified in ACCESS (else this fails), and
any path argument it takes must have a real object in `world` (else this fails too).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import PASSWORD, csrf_token, login

EVERYONE = frozenset({"admin", "supervisor", "agent", "anonymous"})
STAFF = frozenset({"admin", "supervisor"})
# Who may reach each endpoint, by the part before the dot (or the whole endpoint name when it has none).
ACCESS: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin"}),
    "campaigns": STAFF,
    "dialers": STAFF,
    "supervisor": STAFF,
    "inbox": frozenset({"agent"}),
    "auth": EVERYONE,
    "index": EVERYONE,
    "api": frozenset(),  # the voice platform's bearer token only, never a session
    "metrics": frozenset({"admin"}),  # or its bearer token
    "media": frozenset({"admin", "supervisor", "agent"}),  # whoever sees the conversation (all do, in `world`)
    "reports": STAFF,
}
# Their own authentication (gateway signatures, the socket's handshake) or none by design.
# (/media/link/: a signed, expiring link to one file, for the gateway; tests/test_whatsapp_attachments.py.)
SKIP_PREFIXES = ("/static", "/ws", "/webhooks/", "/healthz", "/media/link/")
ROLES = ("admin", "supervisor", "agent", "anonymous")
HOME = {"admin": "/admin/users", "supervisor": "/campaigns", "agent": "/inbox", "anonymous": "/login"}


def _rules(app: Any) -> list[Any]:
    return sorted((r for r in app.url_map.iter_rules() if not r.rule.startswith(SKIP_PREFIXES)),
                  key=lambda r: (r.rule, r.endpoint))


@lru_cache(maxsize=1)
def _rule_ids() -> list[tuple[str, str]]:
    from webapp import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x"})
    return [(r.endpoint, r.rule) for r in _rules(app)]


def _area(endpoint: str) -> str:
    return endpoint.split(".", 1)[0]


@lru_cache(maxsize=1)
def _password_hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD)


def _user(db: Any, username: str, role: str, group: Any, **kw: Any) -> Any:
    from webapp.models import User

    user = User(username=username, role=role, password_hash=_password_hash(), **kw)
    db.session.add(user)
    user.security_groups.append(group)
    return user


def world(db: Any, group_name: str = "g") -> dict[str, Any]:
    """One of everything, in one security group; the agent owns the interaction."""
    from webapp.models import (
        BreakType,
        Campaign,
        Dialer,
        Interaction,
        Membership,
        Provider,
        SecurityGroup,
        SpoolMessage,
        VoiceCampaign,
        WhatsAppTemplate,
    )

    group = SecurityGroup(name=f"{group_name}-group")
    db.session.add(group)
    users = {role: _user(db, f"{group_name}-{role}", role, group) for role in ("admin", "supervisor", "agent")}
    users["agent"].monitor_screen_allowed = True
    spare = _user(db, f"{group_name}-spare", "agent", group)
    voice = VoiceCampaign(name=f"{group_name}-voice", members=[users["agent"], spare])
    provider = Provider(name=f"{group_name}-provider", type="sandbox", channel="whatsapp", options={})
    provider.credentials = {}
    db.session.add_all([voice, provider])
    db.session.flush()
    campaign = Campaign(name=f"{group_name}-campaign", security_group_id=group.id, provider_id=provider.id,
                        did=f"+598{abs(hash(group_name)) % 10**8:08d}")
    dialer = Dialer(name=f"{group_name}-dialer", security_group_id=group.id, provider_id=provider.id)
    break_type = BreakType(name=f"{group_name}-lunch")
    db.session.add_all([campaign, dialer, break_type])
    db.session.flush()
    membership = Membership(campaign_id=campaign.id, user_id=users["agent"].id)
    interaction = Interaction(campaign_id=campaign.id, customer_number="+59899000001", status="active",
                              agent_id=users["agent"].id, channel="whatsapp")
    template = WhatsAppTemplate(provider_id=provider.id, external_id=f"{group_name}-tpl", name="aviso",
                                language="es", status="approved", body="Hola {{1}}", variables=["1"])
    spool = SpoolMessage(dialer_id=dialer.id, destination="+59899000002", body="hola", needs_review=True,
                         state=2)
    db.session.add_all([membership, interaction, spool, template])
    db.session.flush()
    attachment = _kept_photo(db, interaction, group_name)
    db.session.commit()
    return {"group": group, "users": users, "spare": spare, "voice": voice, "provider": provider,
            "campaign": campaign, "dialer": dialer, "break_type": break_type, "membership": membership,
            "interaction": interaction, "spool": spool, "attachment": attachment, "template": template}


def _kept_photo(db: Any, interaction: Any, group_name: str) -> Any:
    """A customer's photo in the interaction, in the media store with its thumbnail."""
    import io

    from webapp.models import Attachment, Message
    from webapp.services import media_store

    message = Message(interaction_id=interaction.id, sender_kind="customer", body="", media=[{"kind": "image"}])
    db.session.add(message)
    db.session.flush()
    key = f"access/{group_name}-{message.id}"
    store = media_store.current()
    store.put(key, io.BytesIO(b"\xff\xd8photo"), "image/jpeg")
    store.put(key + ".thumb.jpg", io.BytesIO(b"\xff\xd8thumb"), "image/jpeg")
    attachment = Attachment(message_id=message.id, kind="image", state="ready", content_type="image/jpeg",
                            filename="photo.jpg", size=7, sha256="0" * 64, storage_key=key,
                            thumb_key=key + ".thumb.jpg", thumb_width=10, thumb_height=10)
    db.session.add(attachment)
    return attachment


# Values for path arguments; the generic admin sections share `object_id`, resolved by endpoint.
OBJECT_IDS = {"admin.user": "spare", "admin.group": "group", "admin.break_type": "break_type",
              "admin.voice_campaign": "voice"}
ARGUMENTS = {"campaign_id": "campaign", "dialer_id": "dialer", "provider_id": "provider",
             "interaction_id": "interaction", "membership_id": "membership", "message_id": "spool",
             "agent_id": ("users", "agent"), "user_id": ("users", "agent"), "attachment_id": "attachment",
             "template_id": "template"}
# Query arguments a route needs to find its object (a form's GET fallback).
QUERY = {"dialers.pick": {"dialer_id": "dialer"}}
# Signed-out visitors are sent to sign in from these even though "everyone" may call them.
SIGN_IN_FIRST = {"index", "auth.logout"}
LITERALS = {"token": "no-such-upload", "fmt": "txt", "username": "g-agent", "filename": "css/app.css",
            "kind": "campaigns"}
ENDPOINT_LITERALS = {"reports.export": {"fmt": "xlsx"}, "reports.conversations": {"fmt": "csv"}}


def url_for_rule(app: Any, rule: Any, objects: dict[str, Any]) -> str:
    values: dict[str, Any] = {}
    for arg in rule.arguments:
        if arg == "object_id":
            stem = rule.endpoint.rsplit("_", 1)[0]
            key = OBJECT_IDS.get(stem) or pytest.fail(f"{rule.endpoint}: which object does object_id name?")
            values[arg] = objects[key].id
        elif arg in ARGUMENTS:
            key = ARGUMENTS[arg]
            values[arg] = (objects[key[0]][key[1]] if isinstance(key, tuple) else objects[key]).id
        elif arg in ENDPOINT_LITERALS.get(rule.endpoint, {}):
            values[arg] = ENDPOINT_LITERALS[rule.endpoint][arg]
        elif arg in LITERALS:
            values[arg] = LITERALS[arg]
        else:
            pytest.fail(f"{rule.endpoint} takes <{arg}>: add a real value for it to tests/test_access.py")
    for arg, key in QUERY.get(rule.endpoint, {}).items():
        values[arg] = objects[key].id
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def request(client: Any, rule: Any, url: str, token: str) -> Any:
    method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": token})


def _allowed(endpoint: str) -> frozenset[str]:
    area = _area(endpoint) if "." in endpoint else endpoint
    if area not in ACCESS:
        pytest.fail(f"endpoint {endpoint} is not classified: add '{area}' to ACCESS in tests/test_access.py")
    return ACCESS[area]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint, path", _rule_ids())
def test_access_matrix(app, client, db, endpoint, path, role):
    """Allowed roles reach the route; the others get 403 (signed in) or go to sign-in (signed out)."""
    allowed = _allowed(endpoint)
    objects = world(db)
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint and r.rule == path)
    url = url_for_rule(app, rule, objects)
    if role != "anonymous":
        login(client, f"g-{role}")
    token = csrf_token(client, HOME[role])
    response = request(client, rule, url, token)
    location = response.headers.get("Location", "")
    to_login = response.status_code in (301, 302, 303) and location.startswith("/login")
    if role in allowed:
        assert response.status_code not in (401, 403, 404), f"{role} should reach {url}: {response.status_code}"
        assert not (to_login and endpoint not in SIGN_IN_FIRST), f"{role} was sent to sign in from {url}"
    elif role == "anonymous":
        assert to_login or response.status_code in (401, 404), f"signed-out reached {url}: {response.status_code}"
    else:
        assert response.status_code in (401, 403), f"{role} reached {url}: {response.status_code}"


def test_every_endpoint_is_classified(app):
    """A route added without a row in ACCESS fails here once, by name."""
    missing = sorted({r.endpoint for r in _rules(app)
                      if (_area(r.endpoint) if "." in r.endpoint else r.endpoint) not in ACCESS})
    assert missing == []


@pytest.mark.parametrize("endpoint, path", [(e, p) for e, p in _rule_ids()
                                            if "<int:campaign_id>" in p or "<int:dialer_id>" in p
                                            or "<int:attachment_id>" in p])
def test_other_groups_objects_answer_404_to_a_supervisor(app, client, db, endpoint, path):
    """A supervisor of group g guessing the URL of group h's campaign, dialer or media file gets 404, never
    the object."""
    world(db, "g")
    theirs = world(db, "h")
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint and r.rule == path)
    url = url_for_rule(app, rule, theirs)
    login(client, "g-supervisor")
    response = request(client, rule, url, csrf_token(client, HOME["supervisor"]))
    assert response.status_code == 404, f"{url}: {response.status_code}"
    from webapp.models import Campaign, Dialer

    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 2
    assert db.session.scalar(sa.select(sa.func.count(Dialer.id))) == 2


REPORT_IDS = {"campaigns": "campaign", "agents": ("users", "agent"), "dialers": "dialer"}


@pytest.mark.parametrize("url", ["/reports/{kind}", "/reports/{kind}.csv", "/reports/{kind}.xlsx",
                                 "/reports/conversations.csv"])
@pytest.mark.parametrize("kind", sorted(REPORT_IDS))
def test_reports_answer_404_for_another_groups_ids(app, client, db, url, kind):
    """Reports: a supervisor asking for group h's campaign, agent or dialer by id gets 404; an admin sees it."""
    world(db, "g")
    theirs = world(db, "h")
    key = REPORT_IDS["campaigns" if "conversations" in url else kind]
    other = theirs[key[0]][key[1]] if isinstance(key, tuple) else theirs[key]
    address = url.format(kind=kind) + f"?ids={other.id}"
    login(client, "g-supervisor")
    assert client.get(address).status_code == 404
    assert client.get(url.format(kind=kind) + "?ids=x").status_code == 404
    admin = app.test_client()
    login(admin, "h-admin")
    assert admin.get(address).status_code == 200

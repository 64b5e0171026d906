"""Requests through the app as a signed-in user: the test client, the factory of valid objects, the real sign-in
form and its CSRF token, and the queued jobs run in this process."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from tests.helpers.waiting import wait_until


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production: a test that holds an app
    context (for its own queries) must not share `g`, the login cache or the DB session with it."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


PASSWORD = "secret-pass-1"


class Factory:
    """Builds valid objects with sensible defaults; each call commits."""

    def __init__(self, app: Any):
        self.app = app
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def _save(self, obj: Any) -> Any:
        from webapp.extensions import db

        db.session.add(obj)
        db.session.commit()
        return obj

    def group(self, name: str | None = None) -> Any:
        from webapp.models import SecurityGroup

        return self._save(SecurityGroup(name=name or f"group{self._next()}"))

    def user(self, username: str | None = None, role: str = "agent", groups: list[Any] | None = None,
             voice: bool = True, **kw: Any) -> Any:
        from webapp.extensions import db
        from webapp.models import User, VoiceCampaign

        user = User(username=username or f"{role}{self._next()}", role=role, password_hash="!", **kw)
        user.set_password(PASSWORD)
        db.session.add(user)  # before the groups: autoflush must not meet a user outside the session
        for group in groups or []:
            user.security_groups.append(group)
        if voice and role == "agent":
            vc = db.session.scalar(sa.select(VoiceCampaign).where(VoiceCampaign.name == "voz"))
            vc = vc or VoiceCampaign(name="voz")
            vc.members.append(user)
            db.session.add(vc)
        return self._save(user)

    def provider(self, type: str = "sandbox", name: str | None = None, credentials: dict[str, str] | None = None,
                 **kw: Any) -> Any:
        from webapp.models import Provider

        provider = Provider(name=name or f"{type}{self._next()}", type=type, options=kw.pop("options", {}), **kw)
        provider.credentials = credentials or {}
        return self._save(provider)

    def campaign(self, group: Any, provider: Any | None = None, name: str | None = None, **kw: Any) -> Any:
        from webapp.models import Campaign

        provider = provider or self.provider()
        return self._save(Campaign(name=name or f"campaign{self._next()}", security_group_id=group.id,
                                   provider_id=provider.id, did=kw.pop("did", None) or f"+5982900{self._next():04d}",
                                   **kw))

    def dialer(self, group: Any, provider: Any | None = None, name: str | None = None, **kw: Any) -> Any:
        from webapp.models import Dialer

        provider = provider or self.provider()
        kw.setdefault("enabled", True)
        return self._save(Dialer(name=name or f"dialer{self._next()}", security_group_id=group.id,
                                 provider_id=provider.id, **kw))

    def member(self, campaign: Any, user: Any, position: int = 0, penalty: int = 0) -> Any:
        from webapp.models import Membership

        return self._save(Membership(campaign_id=campaign.id, user_id=user.id, position=position,
                                     penalty=penalty))


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form (CSRF included)."""
    page = client.get("/login")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert token, "login form has no CSRF token"
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token.group(1).decode()})
    assert response.status_code == 302, f"sign-in as {username} failed: {response.status_code}"
    return response


def csrf_token(client: Any, path: str = "/login") -> str:
    """A valid CSRF token for this client's session, read from a page that renders one."""
    page = client.get(path)
    match = re.search(rb'name="csrf-token" content="([^"]+)"', page.data) or re.search(
        rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert match, f"no CSRF token on {path}"
    return match.group(1).decode()


def run_jobs(app: Any) -> int:
    """Run every queued RQ job now, in this process (a real RQ worker in burst mode)."""
    from rq import SimpleWorker

    from webapp import queues

    served = [app.extensions["conversa_queues"][kind] for kind in queues.PRIORITY]  # as `python -m workers`
    before = sum(queue.count for queue in served)
    SimpleWorker(served, connection=served[0].connection).work(burst=True, logging_level="WARNING")
    return before


def run_jobs_until(app: Any, condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Run the queued jobs (webhooks, routing, sends, downloads) again and again until `condition()` holds,
    i.e. until what they cause shows (on a page, at a gateway fake); fails naming `what` after `timeout`."""
    def done() -> object:
        run_jobs(app)
        return condition()

    wait_until(done, timeout, what)

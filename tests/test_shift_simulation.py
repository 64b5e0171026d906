"""Issue 12: a shift over the real stack (two gunicorn web processes, a worker with its clock, Redis, the
database). Agents connect (a socket, or only the polling fallback), close tabs, come back within the grace
and after it, take a break, are logged out by a supervisor and sign in again; customers write throughout
(Twilio-signed webhooks), and some wait past the abandon threshold. At the end every customer message is in
a conversation that is answered, waiting, or closed by a person (none abandoned by the system), and no
conversation is held by a disconnected agent past the grace. The counts are printed (-s shows them)."""
from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import websocket
from twilio.request_validator import RequestValidator

from tests.helpers import PASSWORD, process_env, start_worker, stop_worker, wait_until, web_processes
from tests.helpers import twilio_provider as make_twilio_provider
from tests.helpers.dialer import ACCOUNT_SID, AUTH_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.per_database]
DID = "+59829001000"
GRACE = 2.0
ABANDON_AFTER = 3
CUSTOMERS = 24
SHIFT = 30.0  # seconds customers write for


@pytest.fixture
def stack(app: Any, tmp_path: Path) -> Iterator[list[str]]:
    env = process_env(app)
    env.update(PRESENCE_GRACE_SECONDS=str(GRACE), PRESENCE_SWEEP_SECONDS="0.5", LOG_LEVEL="WARNING")
    with web_processes(env, tmp_path, 2) as urls:
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            yield urls
        finally:
            stop_worker(worker)


@pytest.fixture
def people() -> Iterator[list[Person]]:
    """Every browser the shift opens, each closed after (its socket and its HTTP connections)."""
    opened: list[Person] = []
    yield opened
    for person in opened:
        person.close_tab()
        person.http.close()


def csrf(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page) or re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token"
    return match.group(1)


class Person:
    """A browser: its cookie session on one web process, a socket while its page is open (agents
    using the polling fallback have none and poll the state pane instead)."""

    def __init__(self, base: str, username: str, *, socket: bool = True):
        self.base, self.username, self.socket = base, username, socket
        self.http = requests.Session()
        self.ws: Any = None
        self.token = ""
        self.open = False
        self.poller: threading.Thread | None = None

    def sign_in(self) -> None:
        page = self.http.get(f"{self.base}/login", timeout=10).text
        answer = self.http.post(f"{self.base}/login", data={"username": self.username, "password": PASSWORD,
                                                            "csrf_token": csrf(page)}, allow_redirects=False,
                                timeout=10)
        assert answer.status_code == 302, answer.text[:300]

    def open_page(self, path: str = "/inbox") -> None:
        answer = self.http.get(f"{self.base}{path}", timeout=10)
        assert answer.status_code == 200 and "/login" not in answer.url, answer.url
        self.token = csrf(answer.text)
        if self.socket:
            cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
            self.ws = websocket.create_connection(self.base.replace("http", "ws") + "/ws", cookie=cookie, timeout=10)
            self.ws.recv()  # live-status
        self.open = True
        if not self.socket and self.username != "sup":
            self.poller = threading.Thread(target=self._poll, daemon=True)
            self.poller.start()

    def _poll(self) -> None:
        """The polling fallback, as the page's timers do it (every few seconds; here twice a second)."""
        with requests.Session() as page:
            page.cookies.update(self.http.cookies)
            while self.open:
                page.get(f"{self.base}/inbox/state", headers={"HX-Request": "true"}, timeout=10).close()
                time.sleep(0.5)

    def close_tab(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        self.open = False
        if self.poller is not None:
            self.poller.join(15)
            self.poller = None

    def post(self, path: str, **data: Any) -> requests.Response:
        return self.http.post(f"{self.base}{path}", data={"csrf_token": self.token, **data}, allow_redirects=False,
                              timeout=10)


def test_a_shift_loses_no_customer(app: Any, make: Any, db: Any, stack: list[str], fake_twilio: Any,
                                   people: list[Person]) -> None:
    from webapp.models import (
        AgentStateSpan,
        BreakType,
        Interaction,
        InteractionStatus,
        Message,
        SenderKind,
        User,
        utcnow,
    )
    from webapp.services import stats
    from webapp.services.interactions import AUTO_CLOSED

    rng = random.Random(12)
    web_a, web_b = stack
    group = make.group("turno")
    provider = make_twilio_provider(make, fake_twilio)
    campaign = make.campaign(group, provider, did=DID, strategy="rrmemory_nocall", max_interactions_per_agent=1,
                             abandon_threshold_seconds=ABANDON_AFTER)
    make.user("sup", role="supervisor", groups=[group])
    names = ["a1", "a2", "a3", "a4"]
    users = {n: make.user(n, groups=[group], name=n.upper()) for n in names}
    for position, n in enumerate(names):
        make.member(campaign, users[n], position=position)
    lunch = BreakType(name="Almuerzo")
    db.session.add(lunch)
    db.session.commit()
    ids = {n: u.id for n, u in users.items()}

    agents = {n: Person(web_a if i % 2 == 0 else web_b, n, socket=(n != "a4")) for i, n in enumerate(names)}
    for person in agents.values():
        person.sign_in()
        person.open_page()
    sup = Person(web_b, "sup", socket=False)
    people.extend([*agents.values(), sup])
    sup.sign_in()
    sup.open_page("/monitor")

    # Customers: each writes a first message at some point of the shift and one or two more later.
    validator = RequestValidator(AUTH_TOKEN)
    # A burst arrives while a1 is gone, a3 on a break and a4 logged out: some wait past the threshold.
    writes = sorted((rng.uniform(0, SHIFT * 0.8) if c >= 6 else 13.5 + c * 0.1, f"+598991{c:05d}")
                    for c in range(CUSTOMERS))
    writes += [(t + rng.uniform(2, SHIFT - t), number) for t, number in list(writes) if rng.random() < 0.6]
    writes.sort()
    sent = 0

    def customer_writes(number: str) -> None:
        nonlocal sent
        sent += 1
        base = web_a if sent % 2 else web_b
        path = f"/webhooks/{provider.id}/inbound"
        params = {"MessageSid": f"SM{sent:032d}", "AccountSid": ACCOUNT_SID, "From": number, "To": DID,
                  "Body": f"mensaje {sent}", "NumMedia": "0"}
        signature = validator.compute_signature(f"{app.config['PUBLIC_BASE_URL']}{path}", params)
        with requests.post(base + path, data=params, headers={"X-Twilio-Signature": signature},
                           timeout=10) as answer:
            assert answer.status_code == 200

    def read(query: Any) -> list[Any]:
        try:
            return list(db.session.execute(query))
        finally:
            db.session.rollback()  # never hold a read transaction between steps

    answered_at: dict[int, float] = {}
    signed_out: set[str] = set()

    def agents_work(now: float) -> None:
        """Each agent with an open page answers what routing gave them and closes what is done."""
        for n, person in agents.items():
            if not person.open or n in signed_out:
                continue
            rows = read(sa.select(Interaction.id, Interaction.status).where(
                Interaction.agent_id == ids[n], Interaction.status.in_(InteractionStatus.OPEN)))
            for interaction_id, status in rows[:1]:  # one action per agent per step: people are not instant
                if status == InteractionStatus.ASSIGNED:
                    person.post(f"/inbox/{interaction_id}/send", body="Hola, ¿en qué te ayudo?")
                    answered_at[interaction_id] = now
                elif now - answered_at.get(interaction_id, now) > 3 and rng.random() < 0.5:
                    person.post(f"/inbox/{interaction_id}/close", disposition="resolved")

    # The shift's events: (second, what happens).
    def a1_closes_tab() -> None:
        agents["a1"].close_tab()

    def a1_comes_back() -> None:  # long after the grace: the page brings them back
        agents["a1"].open_page()

    def a2_reloads_within_grace_close() -> None:
        agents["a2"].close_tab()

    def a2_reloads_within_grace_open() -> None:
        agents["a2"].open_page()

    def a3_break() -> None:
        assert agents["a3"].post("/inbox/break", break_type_id=lunch.id).status_code in (200, 302)

    def a3_back() -> None:
        assert agents["a3"].post("/inbox/back").status_code in (200, 302)

    def sup_logs_out_a4() -> None:
        sup.open_page("/monitor")
        assert sup.post(f"/monitor/agents/{ids['a4']}/logout").status_code in (200, 302)
        signed_out.add("a4")
        agents["a4"].close_tab()  # its page went to sign-in

    def a4_signs_in_again() -> None:
        signed_out.discard("a4")
        agents["a4"].sign_in()
        agents["a4"].open_page()

    timeline = [(6.0, a1_closes_tab), (9.0, a2_reloads_within_grace_close),
                (9.0 + GRACE / 3, a2_reloads_within_grace_open), (11.0, a3_break), (13.0, sup_logs_out_a4), (16.0, a3_back), (17.0, a4_signs_in_again),
                (20.0, a1_comes_back)]
    start = time.monotonic()
    while True:
        now = time.monotonic() - start
        while writes and writes[0][0] <= now:
            customer_writes(writes.pop(0)[1])
        while timeline and timeline[0][0] <= now:
            timeline.pop(0)[1]()
        if not writes and not timeline and now > SHIFT + 4:
            break
        agents_work(now)
        time.sleep(0.25)

    # The end of the day: a1, a2 and a4 close their tabs without signing out; a3 stays on.
    last_close = time.monotonic()
    for n in ("a1", "a2", "a4"):
        agents[n].close_tab()
    stored = sa.select(sa.func.count(Message.id)).where(Message.sender_kind == SenderKind.CUSTOMER)
    wait_until(lambda: read(stored)[0][0] == sent, 60, "every customer message stored")
    held = (sa.select(sa.func.count(Interaction.id)).join(User, User.id == Interaction.agent_id)
            .where(Interaction.status.in_((InteractionStatus.ASSIGNED, InteractionStatus.ACTIVE)),
                   User.state == "disconnected"))
    connected = sa.select(User.username).where(User.role == "agent", User.state != "disconnected")
    wait_until(lambda: [u for u, in read(connected)] == ["a3"], GRACE * 10 + 30,
               "every agent whose page closed disconnected, a3 still on")
    assert time.monotonic() - last_close >= GRACE  # not before the grace
    wait_until(lambda: read(held)[0][0] == 0, 30, "nothing held by a disconnected agent")

    by_status = dict(read(sa.select(Interaction.status, sa.func.count(Interaction.id)).group_by(Interaction.status)))
    messages = read(sa.select(Interaction.status, Interaction.disposition, Interaction.first_reply_at.is_not(None))
                    .join(Message, Message.interaction_id == Interaction.id)
                    .where(Message.sender_kind == SenderKind.CUSTOMER))
    kinds = {"with an agent, answered": 0, "with an agent, not answered yet": 0, "waiting, answered before": 0,
             "waiting, never answered": 0, "closed by a person": 0, "closed by a rule": 0, "unaccounted": 0}
    for status, disposition, replied in messages:
        if status in (InteractionStatus.ASSIGNED, InteractionStatus.ACTIVE):
            kinds["with an agent, answered" if replied else "with an agent, not answered yet"] += 1
        elif status == InteractionStatus.WAITING:
            kinds["waiting, answered before" if replied else "waiting, never answered"] += 1
        elif status == InteractionStatus.CLOSED and disposition == AUTO_CLOSED:
            kinds["closed by a rule"] += 1
        elif status == InteractionStatus.CLOSED and disposition:
            kinds["closed by a person"] += 1
        else:
            kinds["unaccounted"] += 1
    assert kinds["unaccounted"] == 0 and sum(kinds.values()) == sent
    assert by_status.get(InteractionStatus.ABANDONED, 0) == 0
    [figures] = stats.campaign_stats([campaign.id])
    timeouts = dict(read(sa.select(AgentStateSpan.agent_id, sa.func.count(AgentStateSpan.id))
                         .where(AgentStateSpan.cause == "presence_timeout").group_by(AgentStateSpan.agent_id)))
    # a1 lapsed mid-shift and at the end; a2's reload within the grace changed nothing (only the end counts).
    assert timeouts.get(ids["a1"]) == 2 and timeouts.get(ids["a2"]) == 1
    end = utcnow()
    waited_long = sum(1 for created, replied in read(sa.select(Interaction.created_at, Interaction.first_reply_at))
                      if ((replied or end) - created).total_seconds() >= ABANDON_AFTER)
    assert waited_long > 0  # some waited past the threshold (S1 counts the unanswered ones): none was closed for it
    handed_back = read(sa.select(sa.func.count(Interaction.id)).where(Interaction.previous_agent_id.is_not(None)))[0][0]
    print(f"\nshift: {CUSTOMERS} customers, {sent} customer messages, {sum(by_status.values())} conversations "
          f"{by_status}; customer messages: {kinds}; waited past the abandon threshold: {waited_long}, of them "
          f"counted abandoned now (S1: no reply yet, still in the queue): {figures.abandoned}; "
          f"conversations handed back at least once: {handed_back}; presence timeouts: {sum(timeouts.values())}; "
          f"held by a disconnected agent: {read(held)[0][0]}")

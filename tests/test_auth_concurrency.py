"""Sign-in throttling under concurrency (issue 10, point 4): a burst of simultaneous wrong passwords
against a real server gets at most LOGIN_MAX_FAILURES of them checked, whichever process answers; the
right password sent once the limit is reached is refused, and one sent inside the burst gets in only
as one of the first LOGIN_MAX_FAILURES."""
from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import PASSWORD, process_env, web_processes

BURST = 40


def login_form(base: str) -> tuple[requests.Session, str]:
    """A browser that has the sign-in form open: its session cookie and the form's CSRF token."""
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=30)
    return http, re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def burst(urls: list[str], username: str, max_failures: int, right_inside: bool) -> dict[str, Any]:
    """BURST wrong passwords at once, spread over `urls`, and one right password: released with them
    (`right_inside`), or as soon as `max_failures` wrong ones were answered "wrong" (checked)."""
    forms = [login_form(urls[i % len(urls)]) + (urls[i % len(urls)],) for i in range(BURST + 1)]
    start = threading.Barrier(BURST + 1 if right_inside else BURST)
    answered = threading.Condition()
    statuses: list[int] = []

    def attempt(form: tuple[requests.Session, str, str], password: str) -> int:
        http, token, base = form
        answer = http.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token},
                           allow_redirects=False, timeout=120)
        return answer.status_code

    def wrong(form: tuple[requests.Session, str, str]) -> None:
        start.wait(60)
        status = attempt(form, "not-the-password")
        with answered:
            statuses.append(status)
            answered.notify_all()

    threads = [threading.Thread(target=wrong, args=(form,)) for form in forms[:BURST]]
    for thread in threads:
        thread.start()
    if right_inside:
        start.wait(60)
        in_flight = BURST
    else:
        with answered:  # a generous bound for a slow machine, not a timing assertion
            answered.wait_for(lambda: statuses.count(401) >= max_failures or len(statuses) == BURST, timeout=120)
            in_flight = BURST - len(statuses)
    right = attempt(forms[BURST], PASSWORD)
    for thread in threads:
        thread.join(120)
    return {"right_inside": right_inside, "statuses": dict(Counter(statuses)), "checked": statuses.count(401),
            "right": right, "wrong_in_flight_when_right_sent": in_flight}


def real_hash_user(make: Any, db: Any, username: str) -> Any:
    """A user whose password is hashed as in production (scrypt), so checking one takes real time."""
    from werkzeug.security import generate_password_hash

    user = make.user(username, role="agent")
    user.password_hash = generate_password_hash(PASSWORD, method="scrypt")
    db.session.commit()
    return user


def assert_throttled(result: dict[str, Any], user: Any, db: Any, max_failures: int) -> None:
    """At most `max_failures` passwords checked until a right one resets the count (a right one
    checked inside the first `max_failures` gets in: it is within the limit); after that the lock holds."""
    from webapp.models import User

    report = {"database": db.engine.dialect.name, "load_average": os.getloadavg(), **result}  # said on failure
    assert set(result["statuses"]) <= {401, 429}, report  # each one answered "wrong" or "wait", nothing broke
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    if result["right"] == 302:
        assert result["right_inside"], report  # sent after the limit was reached, it must wait
        # before it: fewer than the limit; after its reset: the limit again
        assert result["checked"] <= 2 * max_failures - 1, report
        assert fresh.last_login_at is not None
    else:
        assert result["right"] == 429, report
        assert result["checked"] <= max_failures, report
        assert fresh.locked_until is not None and fresh.last_login_at is None


SENT = pytest.mark.parametrize("right_inside", [False, True], ids=["right-after-limit", "right-inside-burst"])


@SENT
def test_a_burst_of_wrong_passwords_on_a_threaded_server_checks_at_most_the_limit(live_server, app, make, db,
                                                                                   right_inside):
    """One multi-threaded server: the lock holds for simultaneous attempts."""
    user = real_hash_user(make, db, "ana")
    max_failures = app.config["LOGIN_MAX_FAILURES"]
    assert_throttled(burst([live_server], "ana", max_failures, right_inside), user, db, max_failures)


@pytest.fixture
def two_web_processes(app: Any, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn web processes (32 threads each) on this session's database and Redis."""
    with web_processes(process_env(app), tmp_path, 2, threads=32) as urls:
        yield urls


@pytest.mark.per_database
@pytest.mark.slow
@SENT
def test_a_burst_spread_over_two_web_processes_checks_at_most_the_limit(two_web_processes, make, db,
                                                                        right_inside):
    """The limit is in the database: two processes answering the same burst still check at most the limit."""
    user = real_hash_user(make, db, "ana")
    max_failures = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))  # what the processes read (Config)
    assert_throttled(burst(two_web_processes, "ana", max_failures, right_inside), user, db, max_failures)


def test_a_right_password_after_the_lock_expires_signs_in_and_resets(client, app, make, db, monkeypatch):
    """The lock lasts LOGIN_LOCK_SECONDS; then the right password gets in and the count starts again."""
    from datetime import timedelta

    from tests.helpers import csrf_token
    from webapp.models import User, base

    user = make.user("ana")
    token = csrf_token(client)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert client.post("/login", data={"username": "ana", "password": "x", "csrf_token": token}).status_code == 401
    assert client.post("/login", data={"username": "ana", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 429
    later = base.utcnow() + timedelta(seconds=app.config["LOGIN_LOCK_SECONDS"] + 1)
    monkeypatch.setattr("webapp.services.accounts.utcnow", lambda: later)
    assert client.post("/login", data={"username": "ana", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert (fresh.failed_logins, fresh.locked_until) == (0, None)

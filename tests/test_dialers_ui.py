"""S4 dialer monitoring: the list, the dashboard, its buttons and uploads, the live fragments."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import websocket
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers import PASSWORD, csrf_token, login, run_jobs
from webapp.models import Dialer, DoNotContact, SpoolMessage, SpoolState, SpoolUpload


@pytest.fixture
def world(make):
    """Two groups; a supervisor of the first, an admin, an agent; one dialer per group."""
    mine, theirs = make.group("norte"), make.group("sur")
    make.user("sup", role="supervisor", groups=[mine])
    make.user("boss", role="admin")
    make.user("agent1", role="agent", groups=[mine])
    provider = make.provider("sandbox", name="sandbox-a")
    dialer = make.dialer(mine, provider, name="campsms", interval_ms=10)
    other = make.dialer(theirs, provider, name="ajeno")
    return {"group": mine, "other_group": theirs, "dialer_id": dialer.id, "other_id": other.id,
            "provider": provider}


def spool(db, dialer_id, *states, **kw):
    for i, state in enumerate(states):
        db.session.add(SpoolMessage(dialer_id=dialer_id, destination=f"+5989{i:07d}", body="Hola", state=state,
                                    **kw))
    db.session.commit()


def flashes(html: bytes) -> str:
    return " ".join(re.findall(r'<p class="flash[^"]*" role="status">(.*?)</p>', html.decode(), re.S))


def post(client, path, data=None, **kw):
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, "/dialers"))
    return client.post(path, data=data, **kw)


# -- access ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/dialers", "/dialers/{d}", "/dialers/{d}/counts", "/dialers/{d}/state",
                                  "/dialers/{d}/review"])
def test_agent_is_forbidden_and_visitor_is_sent_to_sign_in(client, world, path):
    """Dialer monitoring is for supervisors and admins."""
    url = path.format(d=world["dialer_id"])
    assert client.get(url).status_code == 302
    login(client, "agent1")
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("path", ["/dialers/{d}", "/dialers/{d}/counts", "/dialers/{d}/state",
                                  "/dialers/{d}/review", "/dialers/pick?dialer_id={d}"])
def test_another_groups_dialer_answers_404(client, world, path):
    login(client, "sup")
    assert client.get(path.format(d=world["other_id"])).status_code == 404
    assert client.get(path.format(d=world["dialer_id"])).status_code in (200, 302)


@pytest.mark.parametrize("action", ["start", "stop", "cancel", "single", "dnc", "bulk"])
def test_another_groups_dialer_refuses_every_action(client, world, db, action):
    spool(db, world["other_id"], SpoolState.TO_PROCESS)
    login(client, "sup")
    assert post(client, f"/dialers/{world['other_id']}/{action}").status_code == 404
    assert db.session.scalar(sa.select(SpoolMessage.state)) == SpoolState.TO_PROCESS


def test_list_shows_the_users_dialers_with_state_and_links(client, world, db):
    """Supervisor sees their group's dialers only; admin sees all; each row links to its dashboard."""
    spool(db, world["dialer_id"], SpoolState.SENT, SpoolState.SENT, SpoolState.TO_PROCESS, SpoolState.INVALID)
    login(client, "sup")
    html = client.get("/dialers").data.decode()
    row = re.search(rf'<tr id="dialer-{world["dialer_id"]}-row">(.*?)</tr>', html, re.S).group(1)
    assert f'href="/dialers/{world["dialer_id"]}"' in row and "campsms" in row
    assert "Inactivo" in row and "sandbox-a" in row
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row)] == [2, 1, 1, 0, 0]
    assert "ajeno" not in html
    assert f"dialers%3A{world['group'].id}" in html and f"dialers%3A{world['other_group'].id}" not in html
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dialers")})
    login(client, "boss")
    html = client.get("/dialers").data.decode()
    assert "ajeno" in html and "campsms" in html and f"dialers%3A{world['other_group'].id}" in html


def test_list_polling_fallback_returns_the_rows_alone(client, world):
    login(client, "sup")
    response = client.get("/dialers", headers={"HX-Request": "true"})
    body = response.data.decode()
    assert body.startswith('<tbody id="dialer-list"') and "<html" not in body
    assert f'id="dialer-{world["dialer_id"]}-row"' in body
    assert "HX-Request" in response.headers["Vary"]


def test_dashboard_shows_the_send_rate(client, world, app):
    """Issue 14.1: the counters show the messages per second every worker sent over the last 10 s (Redis,
    counted by the engine as it records results), next to the in-flight count."""
    import time

    from webapp.services.dialer.counts import _sent_key

    d = world["dialer_id"]
    now = int(time.time())
    r = app.extensions["conversa_redis"]
    r.set(_sent_key(d, now - 1), 30)
    r.set(_sent_key(d, now - 5), 12)
    r.set(_sent_key(d, now - 30), 500)  # too old
    login(client, "sup")
    html = client.get(f"/dialers/{d}/counts", headers={"HX-Request": "true"}).data.decode()
    assert re.search(r'data-count="rate"[^>]*>\s*<span class="label">Ritmo</span><b>4.2/s</b>', html)


def test_dashboard_shows_manual_layout(client, world, db):
    spool(db, world["dialer_id"], SpoolState.SENT, SpoolState.TO_PROCESS, SpoolState.TO_PROCESS,
          SpoolState.BLOCKED, SpoolState.INVALID)
    login(client, "sup")
    html = client.get(f"/dialers/{world['dialer_id']}").data.decode()
    d = world["dialer_id"]
    counts = re.search(rf'<section id="dialer-{d}-counts".*?</section>', html, re.S).group(0)
    assert re.search(r'data-count="processed">\s*<span class="label">Procesadas</span><b>1</b>', counts)
    assert re.search(r'data-count="not_processed">\s*<span class="label">No procesadas</span><b>2</b>', counts)
    assert re.search(r'data-count="other"[^>]*>\s*<span class="label">Otros</span><b>1</b>', counts)
    assert re.search(r'data-count="blocked"[^>]*>\s*<span class="label">Bloqueadas</span><b>1</b>', counts)
    assert f'ws-connect="/ws?topics=dialer:{d}"' in html
    assert f'id="dialer-{d}-state"' in html and "Estado" in html and "En fecha" in html
    assert "Envío de mensaje único" in html and "Envío de mensajes masivos" in html
    assert "Subir registro no llamada DNCR" in html and ">Eliminar<" in html
    assert "(4 ahora" in html  # Delete would cancel 2 to process + invalid + blocked
    assert f'<option value="{d}" selected>campsms</option>' in html and "ajeno" not in html


# -- Start / Stop / Delete ------------------------------------------------------------------------
def test_start_and_stop(client, world, db):
    login(client, "sup")
    d = world["dialer_id"]
    response = post(client, f"/dialers/{d}/start")
    assert response.status_code == 302 and response.location.endswith(f"/dialers/{d}")
    assert db.session.get(Dialer, d).running is True
    html = client.get(f"/dialers/{d}").data.decode()
    assert "Marcador iniciado." in flashes(html.encode())
    state = re.search(rf'<div id="dialer-{d}-state".*?</form>', html, re.S).group(0)
    assert f'action="/dialers/{d}/stop"' in state and "Activo" in state
    post(client, f"/dialers/{d}/stop")
    db.session.expire_all()
    assert db.session.get(Dialer, d).running is False


def test_start_refused_when_disabled(client, world, db):
    db.session.get(Dialer, world["dialer_id"]).enabled = False
    db.session.commit()
    login(client, "sup")
    response = post(client, f"/dialers/{world['dialer_id']}/start", follow_redirects=True)
    assert "El marcador no se inició" in flashes(response.data)
    assert "Habilite el marcador" in flashes(response.data) or "Enable the dialer" in flashes(response.data)
    db.session.expire_all()
    assert db.session.get(Dialer, world["dialer_id"]).running is False


def test_delete_cancels_not_processed_and_reports_the_count(client, world, db):
    d = world["dialer_id"]
    spool(db, d, SpoolState.TO_PROCESS, SpoolState.TO_PROCESS, SpoolState.BLOCKED, SpoolState.INVALID,
          SpoolState.FAILED, SpoolState.SENT, SpoolState.DELIVERED)
    spool(db, world["other_id"], SpoolState.TO_PROCESS)
    login(client, "sup")
    response = post(client, f"/dialers/{d}/cancel", follow_redirects=True)
    assert "5 mensajes" in flashes(response.data)
    states = sorted(db.session.scalars(sa.select(SpoolMessage.state).where(SpoolMessage.dialer_id == d)))
    assert states == sorted([SpoolState.CANCELLED] * 5 + [SpoolState.SENT, SpoolState.DELIVERED])
    other = db.session.scalar(sa.select(SpoolMessage.state).where(SpoolMessage.dialer_id == world["other_id"]))
    assert other == SpoolState.TO_PROCESS


def test_state_changes_need_csrf(client, world, db):
    login(client, "sup")
    d = world["dialer_id"]
    spool(db, d, SpoolState.TO_PROCESS)
    for action in ("start", "cancel", "single", "bulk", "dnc"):
        assert client.post(f"/dialers/{d}/{action}", data={"phone": "098344384", "text": "x"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Dialer, d).running is False
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 1


# -- single message ---------------------------------------------------------------------------
def test_single_message_is_queued_on_this_dialer(client, world, db):
    login(client, "sup")
    d = world["dialer_id"]
    response = post(client, f"/dialers/{d}/single", {"phone": "098 344 384", "text": "Hola Mundo!"},
                    follow_redirects=True)
    assert "+59898344384" in flashes(response.data)
    message = db.session.scalar(sa.select(SpoolMessage))
    assert (message.dialer_id, message.destination, message.body, message.state) == (
        d, "+59898344384", "Hola Mundo!", SpoolState.TO_PROCESS)


def test_single_message_with_a_bad_number_is_a_field_error(client, world, db):
    login(client, "sup")
    response = post(client, f"/dialers/{world['dialer_id']}/single", {"phone": "12ab", "text": "Hola"})
    assert response.status_code == 422
    html = response.data.decode()
    field = re.search(r'<label class="field  has-error">\s*<span>Teléfono \*</span>.*?</label>', html, re.S)
    assert field and 'role="alert"' in field.group(0) and "12ab" in field.group(0)
    assert 'value="12ab"' in html and "Hola</textarea>" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 0


# -- uploads -------------------------------------------------------------------------------------
def staged_files(app) -> list[str]:
    """Tokens of the bulk files whose bytes are still kept (a preview waiting, or a load not yet done)."""
    from webapp.extensions import db
    from webapp.models import StagedUploadChunk

    with app.app_context():
        tokens = set(db.session.scalars(sa.select(StagedUploadChunk.token)))
        db.session.remove()
    return sorted(tokens)


def staged_states(app) -> list[str]:
    from webapp.extensions import db
    from webapp.models import StagedUpload

    with app.app_context():
        states = sorted(db.session.scalars(sa.select(StagedUpload.state)))
        db.session.remove()
    return states


def upload(client, path, content: bytes, filename: str, **kw):
    return post(client, path, {"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data", **kw)


def spool_count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage))


def loads_html(client, dialer_id) -> str:
    """The bulk-loads block as its polling fallback returns it."""
    return client.get(f"/dialers/{dialer_id}/loads", headers={"HX-Request": "true"}).data.decode()


BULK = (b"1campsms;098344384;Hola Mundo!;9999;\n"
        b"2campsms;098356484;Hola Mundo!;9999;\n"
        b"3campsms;12;Numero malo;1;\n"
        b"4campsms;098378984;Se\xc3\xb1or \xe2\x82\xac;5;\n")


def test_bulk_upload_preview_then_confirm_queues_a_load_that_a_worker_runs(client, world, db, app):
    """Preview writes nothing and keeps the file; Confirm answers at once and queues the load; the worker
    loads it, drops the kept bytes, and the dashboard shows the summary."""
    login(client, "sup")
    d = world["dialer_id"]
    response = upload(client, f"/dialers/{d}/bulk", BULK, "DISCTEST29042014.csv")
    assert response.status_code == 200
    html = response.data.decode()
    assert spool_count(db) == 0
    assert re.search(r'data-count="total"><span class="label">[^<]+</span><b>4</b>', html)
    assert re.search(r'data-count="invalid"><span class="label">[^<]+</span><b>1</b>', html)
    assert "+59898344384" in html and "Hola Mundo!" in html
    assert len(staged_files(app)) == 1
    confirm = re.search(rf'action="(/dialers/{d}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1)
    response = post(client, confirm, follow_redirects=True)
    assert "cargando en segundo plano" in flashes(response.data)
    assert spool_count(db) == 0  # the web request loaded nothing: a worker will
    block = re.search(rf'<section id="dialer-{d}-loads".*?</section>', response.data.decode(), re.S).group(0)
    assert 'data-state="queued"' in block and 'data-total="4"' in block and "<progress" in block
    assert "4 filas, esperando un proceso que las cargue." in block

    assert run_jobs(app) == 1
    states = db.session.execute(sa.select(SpoolMessage.destination, SpoolMessage.state).where(
        SpoolMessage.dialer_id == d).order_by(SpoolMessage.id)).all()
    assert [s for _, s in states].count(SpoolState.TO_PROCESS) == 3
    assert [s for _, s in states].count(SpoolState.INVALID) == 1
    assert staged_files(app) == [] and staged_states(app) == ["done"]
    block = loads_html(client, d)
    assert block.startswith(f'<section id="dialer-{d}-loads"') and "<html" not in block
    assert "every 5s[document.body.dataset.live!='on']" in block
    assert 'data-state="done"' in block and 'data-rows="4"' in block
    assert "Cargados 4 mensajes; 1 número inválido; 0 bloqueados." in " ".join(block.split())
    # the token is spent: a second confirm loads nothing more
    response = post(client, confirm, follow_redirects=True)
    assert "no se cargará dos veces" in flashes(response.data) or "venci" in flashes(response.data)
    assert run_jobs(app) == 0
    assert spool_count(db) == 4


def test_the_load_summary_follows_the_viewers_language(client, world, db, app):
    """Plural forms in both languages: one row loads as "1 message", in English and in Spanish."""
    login(client, "sup")
    d = world["dialer_id"]
    html = upload(client, f"/dialers/{d}/bulk", b"1campsms;098344384;Hola;1;\n", "ONE.csv").data.decode()
    post(client, re.search(rf'action="(/dialers/{d}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1))
    assert "1 fila, esperando un proceso que la cargue." in loads_html(client, d)
    run_jobs(app)
    assert "Cargado 1 mensaje; 0 números inválidos; 0 bloqueados." in " ".join(loads_html(client, d).split())
    client.post("/language", data={"lang": "en", "next": f"/dialers/{d}", "csrf_token": csrf_token(client, "/dialers")})
    assert "Loaded 1 message; 0 invalid numbers; 0 blocked." in " ".join(loads_html(client, d).split())


def confirm_page(live_server, dialer_id, content: bytes):
    """A supervisor's browser-like session on the live server with a previewed file: (session, confirm URL, CSRF)."""
    import requests

    s = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', s.get(f"{live_server}/login").text).group(1)
    s.post(f"{live_server}/login", data={"username": "sup", "password": PASSWORD, "csrf_token": token})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', s.get(f"{live_server}/dialers/{dialer_id}").text).group(1)
    html = s.post(f"{live_server}/dialers/{dialer_id}/bulk", data={"csrf_token": csrf},
                  files={"file": ("DISCTEST.csv", content, "text/csv")}).text
    confirm = re.search(rf'action="(/dialers/{dialer_id}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1)
    return s, live_server + confirm, csrf


@pytest.mark.parametrize("confirms", [2, 4, 8])
def test_concurrent_confirms_of_one_upload_load_it_once(live_server, app, world, db, confirms):
    """A double click or two tabs: N confirms of the same staged upload posted at once to a live server
    (threads, each its own connection) claim it once; the others are told it is already being loaded."""
    import threading

    import requests

    d = world["dialer_id"]
    rows = "".join(f"{n}campsms;0983{n:05d};Hola {n};1;\n" for n in range(1, 41)).encode()
    s, confirm, csrf = confirm_page(live_server, d, rows)
    barrier = threading.Barrier(confirms)
    answers: list[str] = []

    def click() -> None:
        with requests.Session() as tab:
            tab.cookies.update(s.cookies)
            barrier.wait()
            answers.append(flashes(tab.post(confirm, data={"csrf_token": csrf}).content))

    threads = [threading.Thread(target=click) for _ in range(confirms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    s.close()
    run_jobs(app)
    assert spool_count(db) == 40
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolUpload)) == 1
    assert sum("cargando en segundo plano" in a for a in answers) == 1
    assert sum("ya se está cargando" in a for a in answers) == confirms - 1, answers


def test_a_file_refused_at_load_time_names_line_and_field_and_loads_nothing(client, world, db, app):
    """The dialer renamed between preview and confirm: the worker refuses the file (line 1, field campaign),
    nothing is loaded, and the dashboard says so in the confirming user's language."""
    login(client, "sup")
    d = world["dialer_id"]
    html = upload(client, f"/dialers/{d}/bulk", BULK, "DISCTEST.csv").data.decode()
    db.session.execute(sa.update(Dialer).where(Dialer.id == d).values(name="renamed"))
    db.session.commit()
    post(client, re.search(rf'action="(/dialers/{d}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1))
    run_jobs(app)
    assert spool_count(db) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolUpload)) == 0
    assert staged_files(app) == [] and staged_states(app) == ["refused"]
    block = loads_html(client, d)
    assert 'data-state="refused"' in block and 'role="alert"' in block
    assert "Archivo rechazado: línea 1, campo campaña: no existe un marcador llamado 1campsms" in block
    # a finished load can be taken off the dashboard
    token = re.search(r'action="/dialers/\d+/loads/([A-Za-z0-9_-]+)/dismiss"', block).group(1)
    post(client, f"/dialers/{d}/loads/{token}/dismiss")
    assert staged_states(app) == []
    assert 'hidden' in loads_html(client, d).split(">", 1)[0]


def test_bulk_preview_on_one_web_machine_confirms_on_another(client, app, world, db, tmp_path):
    """The preview and the confirm may reach different web machines (own disks, own memory): the staged
    file waits in the database, in pieces, and a large one comes back byte for byte."""
    from webapp import create_app
    from webapp.dialers import staging

    login(client, "sup")
    d = world["dialer_id"]
    lines = [f"{n}campsms;0983{n:05d};Hola número {n}, su turno está confirmado;1;\n" for n in range(1, 40001)]
    content = "".join(lines).encode()
    assert len(content) > 2 * staging.CHUNK  # several pieces, the last one short
    # Encoded here: the test client's own encoder leaves its temporary file open for bodies this large.
    boundary, body = encode_multipart({"csrf_token": csrf_token(client, "/dialers"),
                                       "file": FileStorage(io.BytesIO(content), "DISCTEST.csv")})
    html = client.post(f"/dialers/{d}/bulk", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}").data.decode()
    confirm = re.search(rf'action="(/dialers/{d}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1)
    assert len(staged_files(app)) == 1
    other = create_app(type("OtherMachine", (), {k: app.config[k] for k in app.config if k.isupper()}))
    other.instance_path = str(tmp_path / "other-machine")  # nothing of the first machine's disk
    other.test_client_class = type(client)
    second = other.test_client()
    second.set_cookie(app.config["SESSION_COOKIE_NAME"], client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value)
    response = post(second, confirm, follow_redirects=True)
    assert "cargando en segundo plano" in flashes(response.data)
    run_jobs(app)
    assert "Cargados 40000 mensajes" in loads_html(second, d)
    bodies = db.session.scalars(sa.select(SpoolMessage.body).where(SpoolMessage.dialer_id == d)
                                .order_by(SpoolMessage.id)).all()
    assert bodies[0] == "Hola número 1, su turno está confirmado" and len(bodies) == 40000
    assert bodies[-1] == "Hola número 40000, su turno está confirmado"
    assert staged_files(app) == []
    with other.app_context():
        from webapp.extensions import db as other_db

        other_db.engine.dispose()


def test_abandoned_previews_are_swept_after_an_hour(client, app, world, db):
    from webapp.dialers import staging
    from webapp.models import StagedUpload, utcnow

    login(client, "sup")
    upload(client, f"/dialers/{world['dialer_id']}/bulk", BULK, "DISCTEST.csv")
    assert len(staged_files(app)) == 1
    with app.app_context():
        assert staging.sweep() == 0  # fresh: kept
        db.session.execute(sa.update(StagedUpload).values(created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
        assert staging.sweep() == 1
    assert staged_files(app) == []


def test_bulk_preview_token_belongs_to_its_session(client, app, world, db):
    login(client, "sup")
    d = world["dialer_id"]
    html = upload(client, f"/dialers/{d}/bulk", BULK, "DISCTEST.csv").data.decode()
    confirm = re.search(rf'action="(/dialers/{d}/bulk/[A-Za-z0-9_-]+/confirm)"', html).group(1)
    intruder = app.test_client()
    login(intruder, "boss")
    post(intruder, confirm, follow_redirects=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 0
    cancel = confirm.replace("/confirm", "/cancel")
    post(client, cancel)
    assert staged_files(app) == []


def test_refused_bulk_file_names_line_and_field_and_loads_nothing(client, world, db, app):
    login(client, "sup")
    bad = b"1campsms;098344384;Hola;1;\n2campsms;098356484;Hola \"amigo\";1;\n"
    response = upload(client, f"/dialers/{world['dialer_id']}/bulk", bad, "DISCTEST.csv", follow_redirects=True)
    message = flashes(response.data)
    assert "línea 2" in message and "mensaje" in message.lower()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 0
    assert staged_files(app) == []


def test_bulk_rows_of_another_dialer_are_refused_on_this_dashboard(client, world, db):
    login(client, "sup")
    rows = b"1campsms;098344384;Hola;1;\n2ajeno;098356484;Hola;1;\n"
    response = upload(client, f"/dialers/{world['dialer_id']}/bulk", rows, "DISCTEST.csv", follow_redirects=True)
    assert "línea 2" in flashes(response.data)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 0


@pytest.mark.parametrize("name", ["mi archivo.csv", "DISC'TEST.csv"])
def test_file_names_with_spaces_or_odd_characters_are_refused(client, world, db, app, name):
    login(client, "sup")
    for kind in ("bulk", "dnc"):
        response = upload(client, f"/dialers/{world['dialer_id']}/{kind}", b"1campsms;098344384;Hola;1;\n", name,
                          follow_redirects=True)
        assert "Archivo rechazado" in flashes(response.data)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpoolMessage)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DoNotContact)) == 0
    assert staged_files(app) == []


def test_dnc_upload_adds_numbers(client, world, db):
    login(client, "sup")
    csv = b"098344384;campsms;\n098356484;campsms;\n"
    response = upload(client, f"/dialers/{world['dialer_id']}/dnc", csv, "DNCR2024.csv", follow_redirects=True)
    assert "2" in flashes(response.data)
    phones = sorted(db.session.scalars(sa.select(DoNotContact.phone)))
    assert phones == ["+59898344384", "+59898356484"]


# -- live fragments ------------------------------------------------------------------------------------
def test_counters_fragment_for_htmx(client, world, db):
    d = world["dialer_id"]
    spool(db, d, SpoolState.SENT, SpoolState.DELIVERED, SpoolState.TO_PROCESS, SpoolState.BLOCKED)
    login(client, "sup")
    body = client.get(f"/dialers/{d}/counts", headers={"HX-Request": "true"}).data.decode()
    assert body.startswith(f'<section id="dialer-{d}-counts"') and "<html" not in body
    assert "every 3s[document.body.dataset.live!='on']" in body
    assert re.search(r'data-count="processed">\s*<span class="label">Procesadas</span><b>2</b>', body)
    assert re.search(r'data-count="delivered">\s*<span class="label">Entregadas</span><b>1</b>', body)


def test_renderers_give_oob_blocks_with_the_right_ids_and_numbers(app, world, db):
    from webapp.live.channel import render_event
    from webapp.live.events import make_event
    from webapp.live.registry import allowed
    from webapp.models import User

    d = world["dialer_id"]
    spool(db, d, SpoolState.SENT, SpoolState.SENT, SpoolState.SENT, SpoolState.TO_PROCESS)
    sup = db.session.scalar(sa.select(User).where(User.username == "sup"))
    assert allowed(sup, f"dialer:{d}") and not allowed(sup, f"dialer:{world['other_id']}")
    assert allowed(sup, f"dialers:{world['group'].id}") and not allowed(sup, f"dialers:{world['other_group'].id}")
    agent = db.session.scalar(sa.select(User).where(User.username == "agent1"))
    assert not allowed(agent, f"dialer:{d}") and not allowed(agent, f"dialers:{world['group'].id}")
    with app.test_request_context("/ws"):
        [counts] = render_event(make_event(f"dialer:{d}", "dialer.counts", {"dialer_id": d}), sup, "es")
        [state] = render_event(make_event(f"dialer:{d}", "dialer.state", {"dialer_id": d}), sup, "en")
        [row] = render_event(make_event(f"dialers:{world['group'].id}", "dialer.state", {"dialer_id": d}), sup, "es")
    assert counts.startswith(f'<section id="dialer-{d}-counts" class="counters" hx-swap-oob="true"')
    assert re.search(r'data-count="processed">\s*<span class="label">Procesadas</span><b>3</b>', counts)
    assert re.search(r'data-count="not_processed">\s*<span class="label">No procesadas</span><b>1</b>', counts)
    assert state.startswith(f'<div id="dialer-{d}-state" class="dial-state" hx-swap-oob="true"')
    assert "Inactive" in state and f'action="/dialers/{d}/start"' in state
    assert row.startswith(f'<tr id="dialer-{d}-row" hx-swap-oob="true">') and "campsms" in row


def test_socket_pushes_the_state_block_when_started(live_server, client, world, db):
    """A real socket on the dashboard topic receives the new state block after Start."""
    import requests

    s = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', s.get(f"{live_server}/login").text).group(1)
    s.post(f"{live_server}/login", data={"username": "sup", "password": PASSWORD, "csrf_token": token})
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    d = world["dialer_id"]
    url = live_server.replace("http://", "ws://") + f"/ws?topics=dialer:{d},dialer:{world['other_id']}"
    ws = websocket.create_connection(url, cookie=cookie, timeout=5)
    try:
        assert 'data-live="on"' in ws.recv()
        page = s.get(f"{live_server}/dialers/{d}").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        assert s.post(f"{live_server}/dialers/{d}/start", data={"csrf_token": csrf}).status_code == 200
        frame = ws.recv()
        assert frame.startswith(f'<div id="dialer-{d}-state" class="dial-state" hx-swap-oob="true"')
        assert f'action="/dialers/{d}/stop"' in frame
    finally:
        ws.close()
        s.close()


def test_socket_pushes_the_loads_block_as_the_load_moves(live_server, app, world, db):
    """The dashboard's socket hears the load claimed (waiting, with its bar) and then done (the summary)."""
    d = world["dialer_id"]
    s, confirm, csrf = confirm_page(live_server, d, BULK)
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    ws = websocket.create_connection(live_server.replace("http://", "ws://") + f"/ws?topics=dialer:{d}",
                                     cookie=cookie, timeout=10)

    def loads_block(state: str) -> str:
        """The next pushed loads block whose load is in `state` (a running one may come first)."""
        while True:
            frame = ws.recv()  # the socket's timeout fails the test if it never comes
            if frame.startswith(f'<section id="dialer-{d}-loads"') and f'data-state="{state}"' in frame:
                return frame

    try:
        assert 'data-live="on"' in ws.recv()
        assert s.post(confirm, data={"csrf_token": csrf}).status_code == 200
        frame = loads_block("queued")
        assert 'hx-swap-oob="true"' in frame and "<progress" in frame
        run_jobs(app)
        frame = loads_block("done")
        assert "Cargados 4 mensajes" in frame
        assert f'action="/dialers/{d}/loads/' in frame  # the viewer's own Dismiss form
    finally:
        ws.close()
        s.close()

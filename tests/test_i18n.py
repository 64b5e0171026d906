"""Every UI string has Spanish; the pages follow the language the user picks."""
from __future__ import annotations

import re

from tests.helpers import ROOT, csrf_token, login


def test_every_ui_string_has_spanish():
    from webapp import i18n

    assert i18n.missing() == []


def test_lazy_strings_and_provider_fields_of_the_admin_pages_have_spanish():
    """Form labels (lazy_gettext) and the provider types' field names, which `missing()` cannot see."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

    from webapp import i18n
    from webapp.providers import TYPES

    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found: set[str] = set()
    for pattern in ("webapp/admin/*.py", "webapp/campaigns/*.py", "webapp/services/records.py", "webapp/services/users.py",
                    "webapp/services/security_groups.py", "webapp/services/provider_config.py",
                    "webapp/services/campaign_config.py"):
        for path in ROOT.glob(pattern):
            for _, m, _, _ in extract_from_file("python", str(path), keywords=keywords):
                found.update(m if isinstance(m, tuple) else (m,))  # both forms of an ngettext
    for meta in TYPES.values():
        found.add(meta.label)
        for field in meta.credentials + meta.options:
            found.update(filter(None, (field.label, field.help, *field.choice_labels)))
    done = i18n.translated("es")
    untranslated = sorted(m for m in found if m not in done and m not in ("Twilio", "Quality Telecom"))
    assert untranslated == []


def test_page_renders_in_english_after_picking_english(client, make, db):
    from webapp.models import User

    group = make.group()
    make.user("sup", role="supervisor", groups=[group])
    login(client, "sup")
    spanish = client.get("/campaigns").get_data(as_text=True)
    assert "Nueva campaña" in spanish and "Estrategia" in spanish and "Respuestas Pre-armadas" in spanish
    response = client.post("/language", data={"lang": "en", "next": "/campaigns",
                                              "csrf_token": csrf_token(client, "/campaigns")})
    assert response.headers["Location"] == "/campaigns"
    english = client.get("/campaigns").get_data(as_text=True)
    assert "New campaign" in english and "Strategy" in english and "Canned responses" in english
    assert "Estrategia" not in english and 'lang="en"' in english
    db.session.expire_all()
    assert db.session.query(User).filter_by(username="sup").one().language == "en"


def test_out_of_request_text_speaks_the_centres_language_unless_told(app, make, db):
    """i18n.translating: a job (no request) speaks BABEL_DEFAULT_LOCALE, a given locale wins, and a
    request keeps its user's language."""
    from flask_babel import gettext

    from webapp import i18n

    with app.app_context():
        assert i18n.center_locale() == "es"
        with i18n.translating():
            assert gettext("Write a message first.") == "Escribe un mensaje primero."
        with i18n.translating("en"):
            assert gettext("Write a message first.") == "Write a message first."
        assert i18n.gettext_anywhere("Write a message first.") == "Escribe un mensaje primero."
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with i18n.translating():
            assert gettext("Write a message first.") == "Write a message first."


# -- plural forms (issue 12.6) -------------------------------------------------------------------
# A count in a sentence needs ngettext: Spanish agrees the noun (and often the verb) with it.
COUNT = re.compile(r"%\((count|num|seconds|minutes|hours|days|rows|total|shown|units)\)[sd]|\{(units|count|num)\}")
# Singular strings whose number agrees with no word (a label, a list after a colon, a limit that is never 1).
NOT_A_COUNT = {
    "Open conversations: %(count)s",  # "Conversaciones abiertas: 1"
    "The %(shown)s longest waits of %(total)s are listed.",  # shown only when more than the limit wait
    "First %(shown)s of %(total)s rows.",  # likewise, the preview's limit
    "Choose at most %(days)d days.",  # MAX_DAYS, a constant above 1
    "Group by hour covers at most %(days)d days.",  # likewise a constant
    "Cancel every message of this dialer not yet processed (%(count)s now, errored and blocked ones included)? "
    "Sent messages stay.",  # "(1 ahora, …)"
    "%(count)s over chat time",  # "1 sobre el tiempo de chat"
}


def _singular_messages() -> list[str]:
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    keywords = dict(DEFAULT_KEYWORDS, _l=None, lazy_gettext=None, lazy_pgettext=((1, "c"), 2),
                    lazy_ngettext=(1, 2), n_=(1, 2))
    return [m for _f, _l, m, _c, _x in extract_from_dir(
        str(ROOT), method_map=[("webapp/**.py", "python"), ("webapp/templates/**.html", "jinja2")],
        keywords=keywords, options_map={"webapp/templates/**.html": {}}) if isinstance(m, str)]


def test_every_count_in_a_sentence_has_plural_forms():
    """A gettext (not ngettext) string with a count in it reads "1 membresías agregadas" in Spanish."""
    counted = sorted({m for m in _singular_messages() if COUNT.search(m)} - NOT_A_COUNT)
    assert counted == [], "use ngettext for: " + "; ".join(counted)


def test_every_spanish_catalog_has_two_plural_forms():
    """Without the header Babel takes CLDR's three Spanish forms and the catalogs' two leave one empty."""
    for po in sorted(ROOT.glob("webapp/translations/*/es/LC_MESSAGES/messages.po")):
        assert '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"' in po.read_text(encoding="utf-8"), po


def test_a_count_of_one_reads_singular_in_spanish(client, make, db):
    from flask_babel import force_locale, ngettext

    group = make.group("ventas")
    make.user("sup", role="supervisor", groups=[group])
    ventas = make.campaign(group, name="Ventas")
    diego = make.user("diego", groups=[group], name="Diego Suárez", voice=False)
    ana = make.user("ana", groups=[group], name="Ana")
    login(client, "sup")
    token = csrf_token(client, "/members")
    added = client.post("/members/add", data={"csrf_token": token, "campaign": [ventas.id], "agent": [ana.id]})
    assert "1 membresía agregada." in added.get_data(as_text=True)
    refused = client.post("/members/add", data={"csrf_token": token, "campaign": [ventas.id], "agent": [diego.id]})
    assert "Diego Suárez no pertenece a ninguna campaña de voz, por lo que no recibiría" in refused.get_data(as_text=True)
    with client.application.test_request_context(), force_locale("es"):
        assert ngettext("Loaded %(num)s message", "Loaded %(num)s messages", 1) == "Cargado 1 mensaje"
        assert ngettext("%(num)s invalid number", "%(num)s invalid numbers", 1) == "1 número inválido"
        assert ngettext("Loaded %(num)s message", "Loaded %(num)s messages", 2) == "Cargados 2 mensajes"
    dashboard = client.get(f"/dialers/{make.dialer(group).id}").get_data(as_text=True)
    assert 'data-template-one="{encoding} · {units} carácter · {segments} SMS"' in dashboard
    assert 'data-template="{encoding} · {units} caracteres · {segments} SMS"' in dashboard


# -- nothing English in Spanish mode (issue 12.6) ------------------------------------------------
def _english_words() -> set[str]:
    """Words of the English source strings that no Spanish translation uses (so "SMS", "DID", "token"
    or "Total", which Spanish keeps, are not English here)."""
    from webapp import i18n

    def words(text: str) -> set[str]:
        return {w.casefold() for w in re.findall(r"[A-Za-z]{4,}", re.sub(r"%\(\w+\)\w|\{\w+\}", " ", text))}

    done = i18n.translated("es")
    english = set().union(*(words(m) for m in i18n.extract_messages()))
    brands = {"quality", "telecom", "twilio", "dinstar"}  # provider names stay as they are
    return english - set().union(*(words(t) for t in done.values())) - brands


def _visible_words(html: str) -> set[str]:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    shown = re.findall(r'(?:title|placeholder|aria-label|alt)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", " ", html)
    # Placeholders ({to_digits}) and addresses (the webhook URLs) are code, not words.
    text = re.sub(r"\{\w+\}|(https?://|/)\S+", " ", " ".join([text, *shown]))
    return {w.casefold() for w in re.findall(r"[A-Za-z]{4,}", text)}


def test_spanish_pages_and_exports_show_no_english_word(client, make, db, app):
    """The main pages, the audit log and the exports, rendered in Spanish: a word of an English source
    string that Spanish never uses is an untranslated text (a status, an option, an action name)."""
    from datetime import timedelta

    from webapp.models import Interaction, Message, utcnow
    from webapp.services import audit

    group = make.group("ventas")
    boss = make.user("jefa", role="admin", groups=[group], name="Jefa")
    make.user("sup", role="supervisor", groups=[group], name="Sofía")
    ana = make.user("ana", groups=[group], name="Ana", state="free")
    http = make.provider("http", name="agregador", base_url="http://127.0.0.1:9/",
                         options={"method": "POST", "params": "{}", "auth": "basic", "body_format": "json"})
    ventas = make.campaign(group, http, name="Ventas", strategy="ringall")
    make.member(ventas, ana)
    dialer = make.dialer(group, http, name="Cobros")
    at = utcnow() - timedelta(minutes=5)
    done = Interaction(campaign_id=ventas.id, customer_number="+59899100100", status="closed", channel="sms",
                       agent_id=ana.id, created_at=at, queued_at=at, closed_at=at, disposition="venta")
    waiting = Interaction(campaign_id=ventas.id, customer_number="+59899100200", status="waiting", channel="sms",
                          created_at=at, queued_at=at)
    db.session.add_all([done, waiting])
    db.session.flush()
    db.session.add(Message(interaction_id=done.id, sender_kind="customer", body="hola", created_at=at))
    for action, kind, detail in (
            ("campaign.update", "campaign", {"name": "Ventas", "changed": ["did", "strategy", "enabled"]}),
            ("provider.update", "provider", {"name": "agregador", "changed": ["options"],
                                             "credentials_changed": ["password"]}),
            ("membership.add", "campaign", {"campaign": "Ventas", "agents": ["ana"]}),
            ("agent.logout", "user", {"agent": "ana", "requeued": [1], "handed_to": []}),
            ("agent.spy", "user", {"agent": "ana", "interactions": [1]}),
            ("dialer.start", "dialer", {"name": "Cobros"}), ("dialer.cancel_pending", "dialer", {"count": 3}),
            ("user.update", "user", {"username": "ana", "changed": ["security_groups", "active", "password"]})):
        audit.record(boss, action, kind, 1, **detail)
    db.session.commit()
    english = _english_words()
    pages = ["/campaigns", f"/campaigns/{ventas.id}", "/members", "/dialers", "/dialers/new",
             f"/dialers/{dialer.id}", f"/dialers/{dialer.id}/edit", "/monitor", "/transcripts",
             f"/transcripts/{done.id}", f"/transcripts/{done.id}.txt", f"/transcripts/{done.id}.csv",
             "/transcripts/export.csv", "/admin/users", "/admin/providers", f"/admin/providers/{http.id}",
             "/admin/groups", "/admin/breaks", "/admin/voice-campaigns", "/admin/audit"]
    login(client, "jefa")
    found = {}
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        left = _visible_words(response.get_data(as_text=True)) & english
        if left:
            found[url] = sorted(left)
    agent = app.test_client()
    login(agent, "ana")
    left = _visible_words(agent.get("/inbox").get_data(as_text=True)) & english
    if left:
        found["/inbox"] = sorted(left)
    assert found == {}, found

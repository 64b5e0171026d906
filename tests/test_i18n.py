"""Every UI string has Spanish; the pages follow the language the user picks."""
from __future__ import annotations

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
            found.update(m for _, m, _, _ in extract_from_file("python", str(path), keywords=keywords))
    for meta in TYPES.values():
        found.add(meta.label)
        for field in meta.credentials + meta.options:
            found.update(filter(None, (field.label, field.help)))
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

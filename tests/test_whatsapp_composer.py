"""W3, templates in the agent's composer: with the 24-hour window closed only the campaign's approved
templates in the conversation's language are offered; the agent fills the variables (and a header
picture), sees the message as the customer will, and sends it: Meta gets a template message with its
components, Twilio ContentSid + ContentVariables. The window's state and closing time show in the header."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import run_jobs, samples
from tests.helpers.whatsapp import agent_client, center, token
from webapp.models import Message, WhatsAppTemplate
from webapp.services import templates

BODY = "Hola {{1}}, tu cuota de {{2}} vence mañana."


def meta_catalog(db: Any, c: Any) -> dict[str, WhatsAppTemplate]:
    fake = c.fake
    fake.add_template("recordatorio", "es", body=BODY, buttons=[{"type": "QUICK_REPLY", "text": "Ya pagué"}])
    fake.add_template("reminder", "en_US", body="Hi {{1}}, your {{2}} is due.")
    fake.add_template("encuesta", "es", status="PENDING", body="¿Qué tal {{1}}?")
    fake.add_template("promo", "es_AR", category="MARKETING", body="¡{{1}}, 20% off!",
                      header={"format": "IMAGE"}, footer="Respondé BAJA")
    templates.sync(c.provider)
    db.session.commit()
    return {t.name: t for t in db.session.scalars(sa.select(WhatsAppTemplate))}


def post_template(client: Any, iid: int, template_id: int, values: dict[str, str], **files: Any) -> Any:
    data: dict[str, Any] = {"csrf_token": token(client, iid), **{f"var-{k}": v for k, v in values.items()}, **files}
    return client.post(f"/inbox/{iid}/templates/{template_id}", data=data, content_type="multipart/form-data",
                       headers={"HX-Request": "true"})


def test_window_closed_offers_only_the_approved_templates_in_the_conversations_language(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    catalog = meta_catalog(db, c)
    page = agent_client(app).get(f"/inbox/{c.iid}").get_data(as_text=True)
    assert f'id="composer-body-{c.iid}"' not in page  # no free text outside the window
    assert "Ventana cerrada a las" in page and "solo plantillas" in page
    offered = [name for name in catalog if f'data-template="{name}"' in page]
    assert sorted(offered) == ["promo", "recordatorio"]  # es and es_AR; not en_US, not pending


def test_the_campaigns_language_chooses_the_templates(app: Any, db: Any, make: Any,
                                                      fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False, language="en_US")
    meta_catalog(db, c)
    page = agent_client(app).get(f"/inbox/{c.iid}").get_data(as_text=True)
    assert 'data-template="reminder"' in page and 'data-template="recordatorio"' not in page


def test_window_open_shows_until_when_and_the_agent_may_still_choose_a_template(
        app: Any, db: Any, make: Any, fake_whatsapp: Any) -> None:
    from webapp.templating import short_clock

    c = center(make, db, "meta", fake_whatsapp)
    catalog = meta_catalog(db, c)
    client = agent_client(app)
    page = client.get(f"/inbox/{c.iid}").get_data(as_text=True)
    with app.test_request_context():
        closes = short_clock(c.interaction.last_customer_message_at + __import__("datetime").timedelta(hours=24), True)
    assert f"Ventana abierta hasta las {closes}" in page and f'id="composer-body-{c.iid}"' in page
    listed = client.get(f"/inbox/{c.iid}/templates").get_data(as_text=True)
    assert 'data-template="recordatorio"' in listed and 'data-template="encuesta"' not in listed
    assert client.get(f"/inbox/{c.iid}/templates/{catalog['recordatorio'].id}").status_code == 200


def test_the_form_previews_the_message_as_the_customer_will_see_it(app: Any, db: Any, make: Any,
                                                                   fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    template = meta_catalog(db, c)["recordatorio"]
    client = agent_client(app)
    form = client.get(f"/inbox/{c.iid}/templates/{template.id}").get_data(as_text=True)
    assert 'name="var-1"' in form and 'name="var-2"' in form and "{{2}}" in form
    preview = client.get(f"/inbox/{c.iid}/templates/{template.id}/preview",
                         query_string={"var-1": "Ana", "var-2": "marzo"}).get_data(as_text=True)
    assert "Hola Ana, tu cuota de marzo vence mañana." in preview and "Ya pagué" in preview
    escaped = client.get(f"/inbox/{c.iid}/templates/{template.id}/preview",
                         query_string={"var-1": "<b>x</b>"}).get_data(as_text=True)
    assert "<b>x</b>" not in escaped and "&lt;b&gt;x&lt;/b&gt;" in escaped


def test_meta_gets_the_template_with_its_variables_in_its_language(app: Any, db: Any, make: Any,
                                                                   fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    template = meta_catalog(db, c)["recordatorio"]
    client = agent_client(app)
    answer = post_template(client, c.iid, template.id, {"1": "Ana", "2": "marzo"})
    assert answer.status_code == 200 and "Hola Ana, tu cuota de marzo vence mañana." in answer.get_data(as_text=True)
    run_jobs(app)
    (sent,) = fake_whatsapp.sent()
    assert sent["type"] == "template"
    assert sent["payload"]["template"] == {"name": "recordatorio", "language": {"code": "es"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "marzo"}]}]}
    db.session.expire_all()
    message = db.session.scalar(sa.select(Message))
    assert (message.status, message.template_ref) == ("sent", "recordatorio")
    assert message.body.startswith("Hola Ana, tu cuota de marzo")


def test_a_variable_left_empty_is_refused_and_nothing_goes(app: Any, db: Any, make: Any,
                                                           fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    template = meta_catalog(db, c)["recordatorio"]
    answer = post_template(agent_client(app), c.iid, template.id, {"1": "Ana", "2": " "})
    assert "Completá {{2}}." in answer.get_data(as_text=True)
    answer = post_template(agent_client(app), c.iid, template.id, {"1": "Ana\nDos", "2": "x"})
    assert "{{1}} debe ser una sola línea" in answer.get_data(as_text=True)
    run_jobs(app)
    assert fake_whatsapp.sent() == [] and db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_a_header_picture_is_uploaded_and_sent_in_the_header(app: Any, db: Any, make: Any,
                                                             fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    template = meta_catalog(db, c)["promo"]
    client = agent_client(app)
    form = client.get(f"/inbox/{c.iid}/templates/{template.id}").get_data(as_text=True)
    assert 'type="file" name="header"' in form
    assert "necesita un encabezado" in post_template(client, c.iid, template.id, {"1": "Ana"}).get_data(as_text=True)
    photo = samples.jpeg()
    answer = post_template(client, c.iid, template.id, {"1": "Ana"}, header=(io.BytesIO(photo), "promo.jpg",
                                                                              "image/jpeg"))
    assert answer.status_code == 200
    run_jobs(app)
    (sent,) = fake_whatsapp.sent()
    (upload_id,) = fake_whatsapp.uploads
    assert fake_whatsapp.uploads[upload_id][0] == photo
    assert sent["payload"]["template"]["language"] == {"code": "es_AR"}
    assert sent["payload"]["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": upload_id}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]


def test_twilio_gets_content_sid_and_content_variables(app: Any, db: Any, make: Any,
                                                       fake_twilio: Any) -> None:
    c = center(make, db, "twilio", fake_twilio, window_open=False)
    sid = fake_twilio.add_content("recordatorio", BODY, variables={"1": "nombre", "2": "mes"})
    templates.sync(c.provider)
    db.session.commit()
    template = db.session.scalar(sa.select(WhatsAppTemplate))
    assert post_template(agent_client(app), c.iid, template.id, {"1": "Ana", "2": "marzo"}).status_code == 200
    run_jobs(app)
    (sent,) = fake_twilio.sent()
    assert (sent["content_sid"], sent["content_variables"]) == (sid, {"1": "Ana", "2": "marzo"})
    assert "Body" not in json.dumps(fake_twilio.api_requests(method="POST")[0].form)


def test_a_canned_template_goes_in_its_catalog_language_not_a_fixed_one(app: Any, db: Any, make: Any,
                                                                        fake_whatsapp: Any) -> None:
    from webapp.models import CannedResponse

    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    catalog = meta_catalog(db, c)
    canned = CannedResponse(campaign_id=c.campaign.id, title="Reminder", body="Hi", template_ref="reminder",
                            template_id=catalog["reminder"].id)
    db.session.add(canned)
    db.session.commit()
    client = agent_client(app)
    answer = client.post(f"/inbox/{c.iid}/send", data={"canned_id": str(canned.id), "csrf_token": token(client, c.iid)})
    assert answer.status_code in (200, 302)
    run_jobs(app)
    (sent,) = fake_whatsapp.sent()
    assert sent["payload"]["template"]["language"] == {"code": "en_US"}


@pytest.mark.parametrize("case", ["other provider", "pending", "other agent"])
def test_templates_not_offered_answer_404(case: str, app: Any, db: Any, make: Any,
                                          fake_whatsapp: Any) -> None:
    c = center(make, db, "meta", fake_whatsapp, window_open=False)
    catalog = meta_catalog(db, c)
    template, user = catalog["recordatorio"], "ana"
    if case == "other provider":
        other = make.provider("sandbox", channel="whatsapp")
        template = WhatsAppTemplate(provider_id=other.id, external_id="x1", name="ajena", language="es",
                                    status="approved", body="Hola {{1}}", variables=["1"])
        db.session.add(template)
        db.session.commit()
    elif case == "pending":
        template = catalog["encuesta"]
    else:
        user = "beto"
    client = agent_client(app, user)
    assert client.get(f"/inbox/{c.iid}/templates/{template.id}").status_code == 404
    if case != "other agent":
        assert post_template(client, c.iid, template.id, {"1": "x"}).status_code == 404
    run_jobs(app)
    assert fake_whatsapp.sent() == []

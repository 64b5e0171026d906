"""Command-line: `flask create-user`, `flask seed-demo`."""
from __future__ import annotations

import secrets
from datetime import time
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask

from .extensions import db
from .models import (
    BreakType,
    Campaign,
    CannedResponse,
    Dialer,
    Membership,
    Provider,
    Role,
    ScheduleEntry,
    SecurityGroup,
    User,
    VoiceCampaign,
    WhatsAppTemplate,
)

DEMO_USERS = [
    ("admin", "Administradora", Role.ADMIN),
    ("supervisor", "Supervisora", Role.SUPERVISOR),
    ("agent1", "Ana Pérez", Role.AGENT),
    ("agent2", "Bruno Díaz", Role.AGENT),
    ("agent3", "Carla Núñez", Role.AGENT),
]


def _get_or_create(model: Any, lookup: dict[str, Any], **defaults: Any) -> tuple[Any, bool]:
    obj = db.session.scalar(sa.select(model).filter_by(**lookup))
    if obj is not None:
        return obj, False
    obj = model(**lookup, **defaults)
    db.session.add(obj)
    db.session.flush()
    return obj, True


def seed_demo(password: str) -> dict[str, Any]:
    """Create the demo data once; a second run changes nothing."""
    from .services import demo

    group, _ = _get_or_create(SecurityGroup, {"name": "Demo"}, description="Grupo de demostración")
    users = {}
    created_users = []
    for username, name, role in DEMO_USERS:
        user, created = _get_or_create(User, {"username": username}, name=name, role=role.value,
                                       password_hash="!")
        if created:
            user.set_password(password)
            user.security_groups.append(group)
            user.monitor_screen_allowed = role is Role.AGENT
            created_users.append(username)
        users[username] = user
    voice, created = _get_or_create(VoiceCampaign, {"name": "Voz demo"})
    if created:
        voice.members.extend(users[f"agent{i}"] for i in (1, 2, 3))
    for name, icon in (("Almuerzo", "🍽"), ("Capacitación", "🎓"), ("Baño", "🚻")):
        _get_or_create(BreakType, {"name": name}, icon=icon)
    provider, created = _get_or_create(Provider, {"name": "Sandbox"}, type="sandbox", channel="sms",
                                       sender="+59829000000", max_per_second=50.0,
                                       options={"webhook_token": secrets.token_urlsafe(24)})
    if created:
        provider.credentials = {}
    campaign, created = _get_or_create(
        Campaign, {"name": "demo"}, security_group_id=group.id, provider_id=provider.id,
        did="+59829000000", strategy="rrmemory_nocall")
    if created:
        campaign.schedule.append(ScheduleEntry(days=0b1111111, start_time=time(0, 0), end_time=time(23, 59)))
        campaign.canned_responses.extend([
            CannedResponse(title="Saludo", body="¡Hola! Gracias por comunicarte. ¿En qué te puedo ayudar?",
                           position=0),
            CannedResponse(title="Espera", body="Dame un momento que lo reviso.", position=1),
            CannedResponse(title="Despedida", body="Gracias por escribirnos. ¡Que tengas un buen día!",
                           position=2),
        ])
        for pos, i in enumerate((1, 2, 3)):
            campaign.memberships.append(Membership(user_id=users[f"agent{i}"].id, position=pos, penalty=0))
    _seed_whatsapp(group, users)
    dialer, created = _get_or_create(
        Dialer, {"name": "demo"}, security_group_id=group.id, provider_id=provider.id,
        interval_ms=demo.DIALER_INTERVAL_MS,
        enabled=True, dncr=True, running=True)
    if created:
        dialer.schedule.append(ScheduleEntry(days=0b1111111, start_time=time(0, 0), end_time=time(23, 59)))
    db.session.commit()
    return {"created_users": created_users, "campaign": campaign.id, "dialer": dialer.id}


def _seed_whatsapp(group: SecurityGroup, users: dict[str, User]) -> None:
    """W1/W2 in the demo: a WhatsApp sandbox provider (its customers send photos and voice notes now and
    then) with its small template catalog synced, and a campaign on it for the demo agents."""
    from .services import templates

    provider, created = _get_or_create(Provider, {"name": "Sandbox WhatsApp"}, type="sandbox", channel="whatsapp",
                                       sender="+59829000001", max_per_second=50.0,
                                       options={"webhook_token": secrets.token_urlsafe(24)})
    if created:
        provider.credentials = {}
        templates.sync(provider)
    campaign, created = _get_or_create(
        Campaign, {"name": "whatsapp"}, security_group_id=group.id, provider_id=provider.id,
        did="+59829000001", strategy="rrmemory_nocall")
    if created:
        campaign.schedule.append(ScheduleEntry(days=0b1111111, start_time=time(0, 0), end_time=time(23, 59)))
        reminder = db.session.scalar(sa.select(WhatsAppTemplate).where(
            WhatsAppTemplate.provider_id == provider.id, WhatsAppTemplate.name == "recordatorio_pago"))
        campaign.canned_responses.extend([
            CannedResponse(title="Saludo", body="¡Hola! Gracias por escribirnos por WhatsApp. ¿En qué te ayudo?",
                           position=0),
            CannedResponse(title="Recordatorio (plantilla)", body=reminder.body if reminder else "",
                           template_id=reminder.id if reminder else None,
                           template_ref=reminder.ref if reminder else None, position=1),
        ])
        for pos, i in enumerate((1, 2, 3)):
            campaign.memberships.append(Membership(user_id=users[f"agent{i}"].id, position=pos, penalty=0))


def register(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AGENT.value)
    @click.option("--name", default="")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--group", "groups", multiple=True, help="Security group name (created if missing).")
    def create_user(username: str, role: str, name: str, password: str, groups: tuple[str, ...]) -> None:
        """Create a user."""
        if db.session.scalar(sa.select(User).where(User.username == username)):
            raise click.ClickException(f"user {username!r} already exists")
        user = User(username=username, name=name, role=role, password_hash="!")
        user.set_password(password)
        for group_name in groups:
            group, _ = _get_or_create(SecurityGroup, {"name": group_name})
            user.security_groups.append(group)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created {role} {username}")

    @app.cli.command("seed-demo")
    @click.option("--password", default=None, help="Password for the demo users (random if omitted).")
    def seed_demo_command(password: str | None) -> None:
        """Create the demo users, sandbox provider, campaign and dialer (idempotent)."""
        chosen = password or secrets.token_urlsafe(9)
        result = seed_demo(chosen)
        if result["created_users"]:
            click.echo(f"demo users: {', '.join(result['created_users'])}  password: {chosen}")
        else:
            click.echo("demo data already present; nothing changed")

    @app.cli.command("demo-traffic")
    def demo_traffic_command() -> None:
        """Queue demo messages on the demo dialer when it has none left to send."""
        from .services import demo

        queued = demo.queue_demo_messages()
        click.echo(f"demo dialer: {queued} messages queued" if queued else "demo dialer: already has messages")

    from .dialers.cli import dialer_group  # `flask dialer import` / `import-dnc` (F1, F2 files)

    app.cli.add_command(dialer_group)
    from .reports.cli import reports_group  # `flask reports rebuild` / `refresh` (issue 15)

    app.cli.add_command(reports_group)

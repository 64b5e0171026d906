"""Every provider whose gateway does not sign its webhooks gets a webhook token: without one, its webhooks
are now refused. The provider's page shows the URLs with the token, to set at the gateway.

Revision ID: 0004_webhook_tokens
Revises: 0003_staged_uploads
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004_webhook_tokens"
down_revision = "0003_staged_uploads"
branch_labels = None
depends_on = None

UNSIGNED_TYPES = ("dinstar", "quality", "http", "sandbox")  # the types with a `webhook_token` option


def upgrade():
    providers = sa.table("providers", sa.column("id", sa.Integer), sa.column("type", sa.String),
                         sa.column("options", sa.JSON))
    conn = op.get_bind()
    rows = conn.execute(sa.select(providers.c.id, providers.c.options)
                        .where(providers.c.type.in_(UNSIGNED_TYPES))).all()
    for provider_id, options in rows:
        options = dict(options or {})
        if not options.get("webhook_token"):
            options["webhook_token"] = secrets.token_urlsafe(24)
            conn.execute(sa.update(providers).where(providers.c.id == provider_id).values(options=options))


def downgrade():
    pass  # the tokens stay: they were valid options before this revision too

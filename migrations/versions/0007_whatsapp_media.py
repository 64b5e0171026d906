"""WhatsApp as centers use it (issue 13): inbound media kept as attachments in the media store, and each
WhatsApp provider's template catalog, which canned responses may point at.

Revision ID: 0007_whatsapp_media
Revises: 0006_bulk_loads
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_whatsapp_media"
down_revision = "0006_bulk_loads"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "whatsapp_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("header", sa.JSON(), nullable=True),
        sa.Column("footer", sa.Text(), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"],
                                name=op.f("fk_whatsapp_templates_provider_id_providers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_templates")),
        sa.UniqueConstraint("provider_id", "external_id", name="uq_whatsapp_templates_provider_external"),
    )
    op.create_index("ix_whatsapp_templates_provider_name", "whatsapp_templates", ["provider_id", "name", "language"])
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("thumb_key", sa.String(length=255), nullable=True),
        sa.Column("thumb_width", sa.Integer(), nullable=True),
        sa.Column("thumb_height", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_attachments_message_id_messages"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"], name=op.f("fk_attachments_provider_id_providers"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_message_id"), "attachments", ["message_id"])
    op.create_index("ix_attachments_state_next", "attachments", ["state", "next_attempt_at"])
    with op.batch_alter_table("canned_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_canned_responses_template_id_whatsapp_templates"),
                                    "whatsapp_templates", ["template_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("templates_synced_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("templates_sync_error", sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_column("templates_sync_error")
        batch_op.drop_column("templates_synced_at")
    with op.batch_alter_table("canned_responses", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_canned_responses_template_id_whatsapp_templates"), type_="foreignkey")
        batch_op.drop_column("template_id")
    op.drop_index("ix_attachments_state_next", table_name="attachments")
    op.drop_index(op.f("ix_attachments_message_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index("ix_whatsapp_templates_provider_name", table_name="whatsapp_templates")
    op.drop_table("whatsapp_templates")

"""Additions made while the areas were built (append operations here; keep upgrade and downgrade paired).

Revision ID: 0002_additions
Revises: 0001_initial
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_additions"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    # inbound: the WhatsApp template a chat message was sent as
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("template_ref", sa.String(length=120), nullable=True))
    # supervision: the monitor's "closed today" reads this index instead of the whole table
    with op.batch_alter_table("interactions") as batch:
        batch.create_index("ix_interactions_status_closed", ["status", "closed_at"], unique=False)


def downgrade():
    # supervision
    with op.batch_alter_table("interactions") as batch:
        batch.drop_index("ix_interactions_status_closed")
    # inbound
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("template_ref")

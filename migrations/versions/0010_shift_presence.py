"""A real shift (issue 12): who had a conversation before it went back to the queue, and the optional
per-campaign rule that closes conversations left waiting for hours.

Revision ID: 0010_shift_presence
Revises: 0009_report_rollups
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_shift_presence"
down_revision = "0009_report_rollups"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_agent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_interactions_previous_agent_id_users"), "users", ["previous_agent_id"],
                                    ["id"], ondelete="SET NULL")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_close_hours", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("auto_close_message", sa.Text(), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("auto_close_message")
        batch_op.drop_column("auto_close_hours")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_interactions_previous_agent_id_users"), type_="foreignkey")
        batch_op.drop_column("previous_agent_id")

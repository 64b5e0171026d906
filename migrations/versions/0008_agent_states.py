"""Agent state history (issue 15): one row per stretch of an agent in one state, with its cause.

Revision ID: 0008_agent_states
Revises: 0007_whatsapp_media
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_agent_states"
down_revision = "0007_whatsapp_media"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "agent_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("break_type_id", sa.Integer(), nullable=True),
        sa.Column("on_call", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(length=24), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_agent_states_agent_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["break_type_id"], ["break_types.id"],
                                name=op.f("fk_agent_states_break_type_id_break_types"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_states")),
    )
    op.create_index("ix_agent_states_agent_started", "agent_states", ["agent_id", "started_at"])
    op.create_index("ix_agent_states_agent_ended", "agent_states", ["agent_id", "ended_at"])
    op.create_index("ix_agent_states_ended", "agent_states", ["ended_at"])


def downgrade():
    op.drop_index("ix_agent_states_ended", table_name="agent_states")
    op.drop_index("ix_agent_states_agent_ended", table_name="agent_states")
    op.drop_index("ix_agent_states_agent_started", table_name="agent_states")
    op.drop_table("agent_states")

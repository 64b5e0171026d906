"""Bulk loads run as background jobs: a staged upload is claimed by one confirm (its state), and keeps
the load's record (who, attempts, the summary or the refusal) for the dashboard.

Revision ID: 0006_bulk_loads
Revises: 0005_user_sessions
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_bulk_loads"
down_revision = "0005_user_sessions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=16), server_default="staged", nullable=False))
        batch_op.add_column(sa.Column("rows_total", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_staged_uploads_user_id_users"), "users", ["user_id"], ["id"],
                                    ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_staged_uploads_user_id_users"), type_="foreignkey")
        for name in ("result", "finished_at", "claimed_at", "attempts", "locale", "user_id", "rows_total", "state"):
            batch_op.drop_column(name)

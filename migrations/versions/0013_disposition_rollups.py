"""Report rollups (issue 15): dispositions kept per campaign and, apart, per agent (one table keyed by both
made a month's campaign report read a row per agent and bucket). Rollups are rebuilt from the raw rows:
run `flask reports rebuild` after this revision.

Revision ID: 0013_disposition_rollups
Revises: 0012_wa_composer
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_disposition_rollups"
down_revision = "0012_wa_composer"
branch_labels = None
depends_on = None


def _table(name, owner_column, owner_table):
    op.create_table(
        name,
        sa.Column(owner_column, sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(), nullable=False),
        sa.Column("disposition", sa.String(length=80), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint([owner_column], [f"{owner_table}.id"],
                                name=op.f(f"fk_{name}_{owner_column}_{owner_table}"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(owner_column, "bucket", "disposition", name=op.f(f"pk_{name}")),
    )


def upgrade():
    op.drop_table("report_disposition_buckets")
    _table("report_disposition_buckets", "campaign_id", "campaigns")
    _table("report_agent_disposition_buckets", "agent_id", "users")


def downgrade():
    op.drop_table("report_agent_disposition_buckets")
    op.drop_table("report_disposition_buckets")
    op.create_table(
        "report_disposition_buckets",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(), nullable=False),
        sa.Column("disposition", sa.String(length=80), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_report_disposition_buckets_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "agent_id", "bucket", "disposition",
                                name=op.f("pk_report_disposition_buckets")),
    )

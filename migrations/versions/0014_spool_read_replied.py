"""W5 on the dialer (issue 13.7, issue 15.4): a spool message records when the customer read it and when
they replied, with the indexes the rollups and the reply match use. Run `flask reports rebuild` after it.

Revision ID: 0014_spool_read_replied
Revises: 0013_disposition_rollups
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_spool_read_replied"
down_revision = "0013_disposition_rollups"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sms_spool") as batch:
        batch.add_column(sa.Column("read_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("replied_at", sa.DateTime(), nullable=True))
    op.create_index("ix_sms_spool_read", "sms_spool", ["read_at"])
    op.create_index("ix_sms_spool_replied", "sms_spool", ["replied_at"])
    op.create_index("ix_sms_spool_destination_sent", "sms_spool", ["destination", "sent_at"])
    with op.batch_alter_table("report_dialer_buckets") as batch:
        batch.add_column(sa.Column("read", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("replied", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("report_dialer_buckets") as batch:
        batch.drop_column("replied")
        batch.drop_column("read")
    op.drop_index("ix_sms_spool_destination_sent", table_name="sms_spool")
    op.drop_index("ix_sms_spool_replied", table_name="sms_spool")
    op.drop_index("ix_sms_spool_read", table_name="sms_spool")
    with op.batch_alter_table("sms_spool") as batch:
        batch.drop_column("replied_at")
        batch.drop_column("read_at")

"""WhatsApp in the agent's composer (issue 13, second part): a message may answer another one (a button or
list reply), a template send keeps its variables, and a campaign names the language its templates are
offered in.

Revision ID: 0012_wa_composer
Revises: 0011_campaign_did_unique
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_wa_composer"
down_revision = "0011_campaign_did_unique"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("template_params", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_messages_reply_to_id_messages"), "messages", ["reply_to_id"],
                                    ["id"], ondelete="SET NULL")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_reply_to_id_messages"), type_="foreignkey")
        batch_op.drop_column("template_params")
        batch_op.drop_column("reply_to_id")

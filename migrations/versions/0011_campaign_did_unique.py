"""One campaign per DID of a provider (issue 12.4): a second campaign with the same DID on the same
provider never got traffic; the form refuses it, naming the other, and this constraint holds it under
simultaneous saves.

Revision ID: 0011_campaign_did_unique
Revises: 0010_shift_presence
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_campaign_did_unique"
down_revision = "0010_shift_presence"
branch_labels = None
depends_on = None


def upgrade():
    duplicates = op.get_bind().execute(sa.text(
        "SELECT a.name, b.name, a.did FROM campaigns a JOIN campaigns b"
        " ON a.provider_id = b.provider_id AND a.did = b.did AND a.id < b.id ORDER BY a.id, b.id")).all()
    if duplicates:
        pairs = "; ".join(f"“{first}” and “{second}” ({did})" for first, second, did in duplicates)
        raise RuntimeError(f"Campaigns share a DID on the same provider: {pairs}. Only the first of each pair "
                           "ever received traffic: give the others their own DID, then upgrade again.")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_campaigns_provider_did", ["provider_id", "did"])


def downgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint("uq_campaigns_provider_did", type_="unique")

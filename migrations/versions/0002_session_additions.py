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
    pass


def downgrade():
    pass

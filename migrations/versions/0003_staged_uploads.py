"""Bulk files between preview and confirm live in the database, so any web machine can confirm them.

Revision ID: 0003_staged_uploads
Revises: 0002_additions
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_staged_uploads"
down_revision = "0002_additions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staged_uploads",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("dialer_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"], name=op.f("fk_staged_uploads_dialer_id_dialers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_staged_uploads")),
    )
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staged_uploads_dialer_id"), ["dialer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_staged_uploads_created_at"), ["created_at"], unique=False)
    op.create_table(
        "staged_upload_chunks",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["token"], ["staged_uploads.token"],
                                name=op.f("fk_staged_upload_chunks_token_staged_uploads"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token", "seq", name=op.f("pk_staged_upload_chunks")),
    )


def downgrade():
    op.drop_table("staged_upload_chunks")
    with op.batch_alter_table("staged_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staged_uploads_created_at"))
        batch_op.drop_index(batch_op.f("ix_staged_uploads_dialer_id"))
    op.drop_table("staged_uploads")

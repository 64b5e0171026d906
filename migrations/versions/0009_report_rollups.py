"""Report rollups (issue 15): 15-minute buckets of campaigns, dispositions, agents, agent states and
dialers, kept by services/report_rollups.py and rebuildable from the raw rows; interactions count their
transfers; indexes the rollup job reads the raw tables by.

Revision ID: 0009_report_rollups
Revises: 0008_agent_states
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009_report_rollups'
down_revision = '0008_agent_states'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_agent_buckets',
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('handled', sa.Integer(), nullable=False),
    sa.Column('messages_sent', sa.Integer(), nullable=False),
    sa.Column('first_response_count', sa.Integer(), nullable=False),
    sa.Column('first_response_sum', sa.Float(), nullable=False),
    sa.Column('handle_count', sa.Integer(), nullable=False),
    sa.Column('handle_sum', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_report_agent_buckets_agent_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'bucket', name=op.f('pk_report_agent_buckets'))
    )
    op.create_table('report_agent_state_buckets',
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('break_type_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('on_call', sa.Boolean(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_report_agent_state_buckets_agent_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'bucket', 'state', 'break_type_id', 'on_call', name=op.f('pk_report_agent_state_buckets'))
    )
    op.create_table('report_dialer_buckets',
    sa.Column('dialer_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('loaded', sa.Integer(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('blocked', sa.Integer(), nullable=False),
    sa.Column('invalid', sa.Integer(), nullable=False),
    sa.Column('cancelled', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dialer_id'], ['dialers.id'], name=op.f('fk_report_dialer_buckets_dialer_id_dialers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dialer_id', 'bucket', name=op.f('pk_report_dialer_buckets'))
    )
    op.create_table('report_dialer_failure_buckets',
    sa.Column('dialer_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=120), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dialer_id'], ['dialers.id'], name=op.f('fk_report_dialer_failure_buckets_dialer_id_dialers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dialer_id', 'bucket', 'reason', name=op.f('pk_report_dialer_failure_buckets'))
    )
    op.create_table('report_campaign_buckets',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('offered', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('answered_in_sl', sa.Integer(), nullable=False),
    sa.Column('abandoned', sa.Integer(), nullable=False),
    sa.Column('wait_count', sa.Integer(), nullable=False),
    sa.Column('wait_sum', sa.Float(), nullable=False),
    sa.Column('wait_max', sa.Float(), nullable=False),
    sa.Column('wait_h0', sa.Integer(), nullable=False),
    sa.Column('wait_h1', sa.Integer(), nullable=False),
    sa.Column('wait_h2', sa.Integer(), nullable=False),
    sa.Column('wait_h3', sa.Integer(), nullable=False),
    sa.Column('wait_h4', sa.Integer(), nullable=False),
    sa.Column('wait_h5', sa.Integer(), nullable=False),
    sa.Column('first_response_sum', sa.Float(), nullable=False),
    sa.Column('handle_count', sa.Integer(), nullable=False),
    sa.Column('handle_sum', sa.Float(), nullable=False),
    sa.Column('closed', sa.Integer(), nullable=False),
    sa.Column('transferred', sa.Integer(), nullable=False),
    sa.Column('out_of_hours', sa.Integer(), nullable=False),
    sa.Column('long_chats', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_report_campaign_buckets_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'bucket', name=op.f('pk_report_campaign_buckets'))
    )
    op.create_table('report_disposition_buckets',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('bucket', sa.DateTime(), nullable=False),
    sa.Column('disposition', sa.String(length=80), nullable=False),
    sa.Column('closed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_report_disposition_buckets_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'agent_id', 'bucket', 'disposition', name=op.f('pk_report_disposition_buckets'))
    )
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfers', sa.Integer(), server_default='0', nullable=False))


    op.create_index("ix_interactions_created", "interactions", ["created_at"])
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_index("ix_sms_spool_created", "sms_spool", ["created_at"])
    op.create_index("ix_sms_spool_sent", "sms_spool", ["sent_at"])
    op.create_index("ix_sms_spool_delivered", "sms_spool", ["delivered_at"])

def downgrade():
    op.drop_index("ix_sms_spool_delivered", table_name="sms_spool")
    op.drop_index("ix_sms_spool_sent", table_name="sms_spool")
    op.drop_index("ix_sms_spool_created", table_name="sms_spool")
    op.drop_index("ix_messages_created", table_name="messages")
    op.drop_index("ix_interactions_created", table_name="interactions")
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_column('transfers')

    op.drop_table('report_disposition_buckets')
    op.drop_table('report_campaign_buckets')
    op.drop_table('report_dialer_failure_buckets')
    op.drop_table('report_dialer_buckets')
    op.drop_table('report_agent_state_buckets')
    op.drop_table('report_agent_buckets')

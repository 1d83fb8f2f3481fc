"""repairs

Revision ID: 0002_repair
Revises: 0001_core
Create Date: 2026-11-25 19:50:47.464260
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002_repair'
down_revision: str | Sequence[str] | None = '0001_core'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('repairticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=True),
    sa.Column('taken_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('rated_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('finish_note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rating_comment', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_nudged_at', sa.DateTime(), nullable=True),
    sa.Column('escalated_untaken_at', sa.DateTime(), nullable=True),
    sa.Column('escalated_unfinished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['reporter_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repairticket', schema=None) as batch_op:
        batch_op.create_index('ix_repairticket_assignee_state', ['assignee_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_repairticket_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index('ix_repairticket_state_created', ['state', 'created_at'], unique=False)

    op.create_table('repairhistory',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['repairticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repairhistory', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repairhistory_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('repairphoto',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('media_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('pic_url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['repairticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repairphoto', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repairphoto_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('repairphoto', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repairphoto_ticket_id'))
    op.drop_table('repairphoto')
    with op.batch_alter_table('repairhistory', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repairhistory_ticket_id'))
    op.drop_table('repairhistory')
    with op.batch_alter_table('repairticket', schema=None) as batch_op:
        batch_op.drop_index('ix_repairticket_state_created')
        batch_op.drop_index(batch_op.f('ix_repairticket_reporter_id'))
        batch_op.drop_index('ix_repairticket_assignee_state')
    op.drop_table('repairticket')

"""visitors: entries, bookings, blacklist and the ID-reveal log

Revision ID: 0003_visitor
Revises: 0001_core
Create Date: 2026-11-25 19:47:25.702228
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003_visitor'
down_revision: str | Sequence[str] | None = '0001_core'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('visitorblacklist',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('value_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value_masked', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('value_hash')
    )
    op.create_table('idreveallog',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('field_name', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=False),
    sa.Column('admin_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('revealed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('idreveallog', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idreveallog_entry_id'), ['entry_id'], unique=False)

    op.create_table('visitorbooking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('phone_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('phone_enc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('phone_masked', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expected_at', sa.DateTime(), nullable=False),
    sa.Column('teacher_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['teacher_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('visitorbooking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visitorbooking_expected_at'), ['expected_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitorbooking_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitorbooking_teacher_id'), ['teacher_id'], unique=False)

    op.create_table('visitorentry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('phone_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('phone_enc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('phone_masked', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('id_enc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('id_masked', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('host_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('plate', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('party', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('guard_id', sa.Integer(), nullable=False),
    sa.Column('blacklisted', sa.Boolean(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(), nullable=False),
    sa.Column('checked_out_at', sa.DateTime(), nullable=True),
    sa.Column('checked_out_by', sa.Integer(), nullable=True),
    sa.Column('host_denied_at', sa.DateTime(), nullable=True),
    sa.Column('long_stay_notified_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['booking_id'], ['visitorbooking.id'], ),
    sa.ForeignKeyConstraint(['checked_out_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['guard_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['host_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('visitorentry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visitorentry_checked_in_at'), ['checked_in_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitorentry_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitorentry_id_hash'), ['id_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitorentry_phone_hash'), ['phone_hash'], unique=False)


def downgrade() -> None:
    op.drop_table('visitorentry')
    op.drop_table('visitorbooking')
    op.drop_table('idreveallog')
    op.drop_table('visitorblacklist')

"""calendar coverage: the last year of official holiday data the records were checked against

Revision ID: 0006_calendar
Revises: 0005_reminder
Create Date: 2026-12-01 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_calendar'
down_revision: str | Sequence[str] | None = '0005_reminder'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calendarcoverage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('official_through', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('calendarcoverage')

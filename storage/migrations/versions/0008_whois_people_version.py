"""people version: a number that changes with every change of a person or a role (storage/whois.py)

Triggers set it to a new random value in the transaction that changes a person's name, openid, active flag or
worker categories, or any role — whoever makes the change — so that a process's cache of who-is-who knows at once that it is stale.

Revision ID: 0008_whois
Revises: 0001_core
Create Date: 2026-12-01 05:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_whois'
down_revision: str | Sequence[str] | None = '0001_core'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION houqin_people_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO people_version (id, v) VALUES (1, (random() * 9e18)::bigint)
  ON CONFLICT (id) DO UPDATE SET v = excluded.v;
  RETURN NULL;
END $$
"""
_PG_TRIGGERS = [
    "CREATE TRIGGER person_changed AFTER INSERT OR DELETE OR UPDATE OF name, openid, active, categories ON person "
    "FOR EACH STATEMENT EXECUTE FUNCTION houqin_people_changed()",
    "CREATE TRIGGER person_truncated AFTER TRUNCATE ON person "
    "FOR EACH STATEMENT EXECUTE FUNCTION houqin_people_changed()",
    "CREATE TRIGGER personrole_changed AFTER INSERT OR DELETE OR UPDATE ON personrole "
    "FOR EACH STATEMENT EXECUTE FUNCTION houqin_people_changed()",
    "CREATE TRIGGER personrole_truncated AFTER TRUNCATE ON personrole "
    "FOR EACH STATEMENT EXECUTE FUNCTION houqin_people_changed()",
]
_SQLITE_BUMP = "INSERT INTO people_version (id, v) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET v = excluded.v;"
_SQLITE_TRIGGERS = {
    "person_inserted": "AFTER INSERT ON person",
    "person_deleted": "AFTER DELETE ON person",
    "person_changed": "AFTER UPDATE OF name, openid, active, categories ON person",
    "personrole_inserted": "AFTER INSERT ON personrole",
    "personrole_deleted": "AFTER DELETE ON personrole",
    "personrole_changed": "AFTER UPDATE ON personrole",
}


def upgrade() -> None:
    op.create_table('people_version',
    sa.Column('v', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for name, when in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {_SQLITE_BUMP} END")
    op.execute("INSERT INTO people_version (id, v) VALUES (1, 1)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in (("person_changed", "person"), ("person_truncated", "person"),
                            ("personrole_changed", "personrole"), ("personrole_truncated", "personrole")):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS houqin_people_changed()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('people_version')

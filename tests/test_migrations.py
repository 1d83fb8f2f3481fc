"""The Alembic migrations build exactly the schema the models describe (nothing missing, nothing extra)."""

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel, select

from storage.db import Database, alembic_config, load_models
from storage.people import Person, create_person


def test_migrations_match_the_models(database: Database) -> None:
    load_models()
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff


def schema(database: Database) -> dict[str, list[tuple[str, str]]]:
    found = inspect(database.engine)
    return {t: [(c["name"], str(c["type"])) for c in found.get_columns(t)] for t in sorted(found.get_table_names())}


def test_migrating_twice_is_harmless(db: Database) -> None:
    """Running `houqin init` (upgrade heads) on a database already at heads changes nothing and loses nothing."""
    with db.session() as s:
        create_person(s, "王老师", ["teacher"], now=datetime(2026, 12, 1, 9, 0))
    heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())
    before = schema(db)
    db.migrate()
    db.migrate()
    with db.engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == heads
    assert len(heads) > 1  # every domain is its own branch: all of them are applied
    assert schema(db) == before and "person" in before and "outboxmessage" in before
    with db.session() as s:
        assert [p.name for p in s.exec(select(Person)).all()] == ["王老师"]

"""The Alembic migrations build exactly the schema the models describe (nothing missing, nothing extra)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from storage.db import Database, load_models


def test_migrations_match_the_models(database: Database) -> None:
    load_models()
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff


def test_migrating_twice_is_harmless(database: Database) -> None:
    database.migrate()
    database.migrate()

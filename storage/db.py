"""Engine, transactions and migrations. SQLite file by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

import storage

MIGRATIONS = Path(__file__).parent / "migrations"


USED = "db_used"  # session.info: this session's transaction has sent something to the database


class DatabaseUnavailable(Exception):
    """The database cannot be reached: the webhook answers 503 so WeChat retries."""


def load_models() -> None:
    """Import every storage module so all tables are registered on SQLModel.metadata."""
    for mod in pkgutil.iter_modules(storage.__path__):
        if not mod.name.startswith("_") and mod.name != "migrations":
            importlib.import_module(f"storage.{mod.name}")


def normalise_url(url: str) -> str:
    # Plain postgresql:// URLs pick psycopg2 in SQLAlchemy; we ship psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        # hide_parameters: an error's text (logged with its traceback) never carries the statement's values,
        # which may be a phone or ID number from a message.
        kwargs: dict = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # No pre-ping: it costs a round trip per transaction (measured: ~40% of the 报修 throughput). A
            # dead connection surfaces as an OperationalError → 503, and WeChat's retry gets a fresh one.
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800, pool_timeout=5,
                          connect_args={"connect_timeout": 3})
        self.connect_args: dict[str, object] = dict(kwargs.get("connect_args", {}))  # for other engines on it
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Take the write lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        # SQLite allows one writer: queue this process's transactions on a lock instead of letting them
        # spin in SQLite's busy handler (which sleeps in coarse steps and wrecks tail latency).
        self._writer = threading.RLock() if self.is_sqlite else None
        load_models()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        if self._writer is None:
            with self._session() as s:
                yield s
        else:
            with self._writer, self._session() as s:
                yield s

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            session = Session(self.engine, expire_on_commit=False)
        except (OperationalError, DBAPIError) as exc:  # pragma: no cover - creation is lazy
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            yield session
            if touched(session):  # (a transaction that never reached the database has nothing to commit)
                session.commit()
        except OperationalError as exc:
            session.rollback()
            if _is_connection_error(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One transaction on a plain Core connection (no ORM session): for hot paths that only run
        statements built once. Committed when the block ends, rolled back on any exception."""
        with self._writer or nullcontext():
            try:
                with self.engine.begin() as conn:
                    yield conn
            except OperationalError as exc:
                if _is_connection_error(exc):
                    raise DatabaseUnavailable(str(exc)) from exc
                raise

    def migrate(self) -> None:
        """Bring the schema to the newest revision of every migration branch (alembic `upgrade heads`)."""
        command.upgrade(alembic_config(self.url), "heads")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def touched(session: Session) -> bool:
    """Whether this transaction sent anything to the database, or holds changes that a flush would send."""
    return bool(session.info.get(USED)) or bool(session.new or session.dirty or session.deleted)


@event.listens_for(Session, "after_begin")
def _mark_used(session: Session, _transaction: object, _connection: Connection) -> None:
    session.info[USED] = True


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def _is_connection_error(exc: OperationalError) -> bool:
    msg = str(exc).lower()
    return any(w in msg for w in ("connection", "could not connect", "server closed", "terminating", "timeout"))


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN IMMEDIATE control transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def all_tables() -> list[str]:
    load_models()
    return [t.name for t in SQLModel.metadata.sorted_tables]

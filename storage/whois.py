"""Who-is-who, per process: the sender of a message without the sender query while nobody changed.

Every message needs its sender (person, name, roles, active), and SPEC 1 says that a role change or a
deactivation applies at the very next message. The database keeps a *people version*: one row in
`people_version`, set to a new random number by triggers (migration 0008_whois) whenever a person's name,
openid, active flag or worker categories, or any role, changes — by chat, console, CLI, a job, or an admin with psql — in the
same transaction as the change. A cache entry is used only while the version it was stored under is still the
current one, so the first message after a change reads the person again.

Reading the version is one prepared single-row SELECT on a connection of this thread's own, in autocommit
(about a quarter of the cost of the sender query and its transaction: bench/cpu.py). Without the row (a
wiped table), or when the read fails, the cache is not used and the person is read as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, create_engine
from sqlalchemy.pool import NullPool
from sqlmodel import Field, Session, SQLModel

from storage.db import Database
from storage.people import Actor, sender_by_openid

log = logging.getLogger("houqin.whois")

MAX_ENTRIES = 20_000
T = TypeVar("T")
_VERSION_SQL = "SELECT v FROM people_version WHERE id = 1"


class PeopleVersion(SQLModel, table=True):
    """One row (id 1): changes whenever a person or a role does (database triggers, migration 0008_whois)."""

    __tablename__ = "people_version"
    id: int = Field(primary_key=True)
    v: int = Field(sa_column=Column(BigInteger, nullable=False))


VERSION_INFO = "people_version"  # session.info: the people version read for this message
_memo: dict[tuple[int, Hashable], Any] = {}
_memo_lock = threading.Lock()
_MISSING = object()


def remembered(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    """A read that depends only on people and roles (e.g. the workers of a repair category), kept while the
    people version read for this message (by `WhoIsWho.sender`) is current; read afresh in any session that
    has no version (outside a message, or no version row). `load` must return something immutable, and the
    session must not have changed people or roles itself (its own writes would be kept under the old version)."""
    version = session.info.get(VERSION_INFO)
    if version is None:
        return load()
    memo_key = (version, key)
    found = _memo.get(memo_key, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[no-any-return]
    value = load()
    with _memo_lock:
        if len(_memo) >= MAX_ENTRIES:
            _memo.clear()
        _memo[memo_key] = value
    return value


@dataclass(frozen=True)
class _Entry:
    actor: Actor | None
    last_inbound: datetime | None
    version: int


class WhoIsWho:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        self.enabled = ":memory:" not in db.url
        # Connections of their own (not the pool's): one per thread that handles messages, kept open.
        # Its connections give up as the main ones do (connect_timeout), and a dead peer is noticed (keepalives).
        connect_args = dict(db.connect_args)
        if not db.is_sqlite:
            connect_args.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        self._engine = (create_engine(db.url, poolclass=NullPool, connect_args=connect_args)
                        if self.enabled else None)

    def sender(self, session: Session, openid: str) -> tuple[Actor | None, datetime | None]:
        """The sender and when they last wrote: from the cache while the people version is the one the entry
        was stored under, else from the database (and kept for the next message)."""
        version = self.version()
        if version is None:
            return sender_by_openid(session, openid)
        session.info[VERSION_INFO] = version
        entry = self._entries.get(openid)
        if entry is not None and entry.version == version:
            return entry.actor, entry.last_inbound
        actor, last = sender_by_openid(session, openid)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[openid] = _Entry(actor, last, version)
        return actor, last

    def wrote(self, openid: str, at: datetime) -> None:
        """The sender's last_inbound_at was written (and committed) as `at`."""
        entry = self._entries.get(openid)
        if entry is not None:
            with self._lock:
                self._entries[openid] = _Entry(entry.actor, at, entry.version)

    def version(self) -> int | None:
        """The current people version, or None (no row, or the database could not say: do not cache)."""
        if self._engine is None:
            return None
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._connect()
            cur = conn.cursor()
            try:
                if self.db.is_sqlite:
                    cur.execute(_VERSION_SQL)
                else:
                    cur.execute(_VERSION_SQL, prepare=True)
                row = cur.fetchone()
            finally:
                cur.close()
        except Exception as exc:  # the database is away or the table is not there: read the person instead
            log.debug("people version unavailable: %s", exc)
            self._drop(conn)
            return None
        return int(row[0]) if row else None

    def _connect(self) -> Any:
        assert self._engine is not None
        fairy = self._engine.raw_connection()
        driver = fairy.driver_connection
        if self.db.is_sqlite:
            driver.isolation_level = None  # autocommit: each read sees the last commit
        else:
            driver.autocommit = True
        self._local.conn = fairy
        with self._lock:
            self._connections.append(fairy)
        return fairy

    def _drop(self, conn: Any) -> None:
        self._local.conn = None
        if conn is None:
            return
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        try:
            conn.close()
        except Exception:  # pragma: no cover - already broken
            pass

    def close(self) -> None:
        with self._lock:
            conns, self._connections = self._connections, []
            self._entries.clear()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                pass
        if self._engine is not None:
            self._engine.dispose()

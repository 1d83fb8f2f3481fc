"""The durable record of inbound messages: what makes a message's effect happen exactly once (SPEC 7).

One row per message key (WeChat's MsgId, or sender + CreateTime + event), unique in the database:
- `done`: written by `finish` in the same transaction as the handler's effect, with its reply. A second run
  of the same message (a retry after Redis lost its claim, a recovery run racing a slow original) finds the
  row, is rolled back whole, and answers the stored reply — the database, not the KV store, decides.
- `pending`: written by `accept` before the webhook answers `success` to a message whose handler is not done
  within 4.5 s, with the message itself. Whoever finishes it turns it `done` (and queues its reply in the
  outbox, as the person got no answer); if its holder dies or fails, a recovery loop runs it again once its
  lease (`claimed_until`) has run out.
Rows are pruned a day after they are done (WeChat's retries all come within ~15 s).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Text, bindparam, delete, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Column, Field, Session, SQLModel, col, select

from storage.fastsql import Hot

PENDING, DONE = "pending", "done"
MAX_KEY = 128
KEEP_DONE = timedelta(days=1)


class InboundMessage(SQLModel, table=True):
    __tablename__ = "inbound_message"
    __table_args__ = (Index("ix_inbound_due", "state", "claimed_until"),)
    id: int | None = Field(default=None, primary_key=True)
    msg_key: str = Field(max_length=MAX_KEY, unique=True)
    openid: str = Field(max_length=64)
    state: str = Field(max_length=12)  # pending | done
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the message, while pending
    reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    late: bool = False  # the reply went through the outbox (a retry answers `success`)
    attempts: int = 0
    claimed_until: datetime | None = None  # pending: nobody else runs it before then
    received_at: datetime
    done_at: datetime | None = None


@dataclass(frozen=True)
class Stored:
    state: str
    reply: str | None
    late: bool


class AlreadyHandled(Exception):  # noqa: N818 - it is an outcome, not a failure
    """This message was acted on before: the transaction must roll back; answer with the stored reply."""

    def __init__(self, stored: Stored) -> None:
        super().__init__("message already handled")
        self.stored = stored


def normal_key(key: str) -> str:
    """The key as stored: a key too long for the column (an odd sender id) is replaced by its digest."""
    return key if len(key) <= MAX_KEY else "h:" + hashlib.sha256(key.encode()).hexdigest()


_TABLE = InboundMessage.__table__  # type: ignore[attr-defined]


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)


# INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING, the same on PostgreSQL and SQLite (3.35+). Written out:
# SQLAlchemy's on_conflict_do_update construct cannot be cached, and compiling it was 11 % of a `帮助`'s CPU.
_FINISH = Hot(text(
    "INSERT INTO inbound_message (msg_key, openid, state, reply, late, attempts, received_at, done_at) "
    "VALUES (:k, :o, 'done', :r, :l, 0, :t, :t) "
    "ON CONFLICT (msg_key) DO UPDATE SET state = 'done', reply = excluded.reply, late = excluded.late, "
    "done_at = excluded.done_at, payload = NULL, claimed_until = NULL "
    "WHERE inbound_message.state = 'pending' RETURNING id"
).bindparams(bindparam("l", type_=Boolean()), bindparam("t", type_=DateTime())))


def finish(session: Session, key: str, openid: str, reply: str | None, *, late: bool, now: datetime) -> None:
    """Record, in the transaction of the message's effect, that it has been acted on (a pending row becomes
    done). Raises AlreadyHandled if it was done before: the caller rolls back, so the effect happens once."""
    key = normal_key(key)
    session.flush()  # what the session holds goes first; then Core, on the session's transaction
    rows = _FINISH.run(session, {"k": key, "o": openid[:64], "r": reply, "l": late, "t": now})
    if not rows:
        stored = lookup(session, key)
        assert stored is not None
        raise AlreadyHandled(stored)


def accept(session: Session, key: str, openid: str, payload: dict[str, Any], *, now: datetime,
           lease: float) -> Stored:
    """Make a message durable before answering `success` without its reply: a pending row (nobody else runs
    it for `lease` seconds), unless it is there already. Returns the row as it now stands."""
    key = normal_key(key)
    stmt = (
        _insert(session)
        .values(msg_key=key, openid=openid[:64], state=PENDING, payload=json.dumps(payload, ensure_ascii=False),
                late=True, attempts=0, received_at=now, claimed_until=now + timedelta(seconds=lease))
        .on_conflict_do_nothing(index_elements=["msg_key"])
    )
    session.execute(stmt)
    stored = lookup(session, key)
    assert stored is not None
    return stored


def lookup(session: Session, key: str) -> Stored | None:
    row = session.execute(
        select(_TABLE.c.state, _TABLE.c.reply, _TABLE.c.late).where(_TABLE.c.msg_key == normal_key(key))
    ).first()
    return Stored(row[0], row[1], bool(row[2])) if row else None


def release(session: Session, key: str, now: datetime) -> None:
    """The holder of a pending message failed: let the recovery loop take it at once."""
    session.execute(update(_TABLE).where(_TABLE.c.msg_key == normal_key(key), _TABLE.c.state == PENDING)
                    .values(claimed_until=now))


def claim_pending(session: Session, *, now: datetime, lease: float, limit: int = 20,
                  skip: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, dict[str, Any]]]:
    """Take pending messages whose lease has run out (their holder died or failed): (key, payload) each, now
    leased to the caller; the lease grows with the attempts so a message that keeps failing backs off."""
    M = InboundMessage
    query = (
        select(M)
        .where(col(M.state) == PENDING, col(M.claimed_until) <= now)
        .order_by(col(M.id))
        .limit(limit)
    )
    if skip:
        query = query.where(col(M.msg_key).not_in(list(skip)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken = []
    for row in session.exec(query).all():
        row.attempts += 1
        row.claimed_until = now + timedelta(seconds=min(lease * 2 ** min(row.attempts - 1, 6), 3600))
        session.add(row)
        try:
            payload = json.loads(row.payload or "{}")
        except ValueError:
            payload = {}
        taken.append((row.msg_key, payload if isinstance(payload, dict) else {}))
    return taken


def pending_count(session: Session) -> int:
    return len(session.exec(select(InboundMessage.id).where(col(InboundMessage.state) == PENDING)).all())


def prune(session: Session, now: datetime, keep: timedelta = KEEP_DONE) -> int:
    """Forget messages done more than `keep` ago. Returns how many rows went."""
    result = session.execute(delete(_TABLE).where(_TABLE.c.state == DONE, _TABLE.c.done_at < now - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

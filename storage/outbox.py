"""The persistent outbox: every push (notification, reminder, late reply) is a row first.

Rows are written in the same transaction as the change that caused them, so a rolled-back change
never notifies anyone and a committed one is never forgotten. A background sender (bot.wechat.sender)
delivers them through the WeChat API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Index, Text, insert
from sqlmodel import Column, Field, Session, SQLModel, col, select

from storage.errors import NotFound, UserError
from storage.fastsql import Hot

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
# Not a message: the sender tags the person for their role's custom menu (data: {"menu_role": role or null}).
# Queued like a push so that it happens after the binding commits and is retried when WeChat fails.
MENU_TAG = "menu_tag"
STATES_ZH = {PENDING: "待发送", SENDING: "发送中", SENT: "已发送", FAILED: "失败", SKIPPED: "已跳过"}


class OutboxMessage(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    openid: str | None = Field(default=None, max_length=64)  # for late replies to someone not yet bound
    kind: str = Field(max_length=40)  # repair, visitor, leave, reminder, duty, reply, system …
    text: str = Field(sa_column=Column(Text, nullable=False))
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    force_cs: bool = False  # direct answers always go as customer-service messages
    dedup_key: str | None = Field(default=None, unique=True, max_length=200)
    state: str = Field(default=PENDING, max_length=12)
    attempts: int = 0
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    errcode: int | None = None
    channel: str | None = Field(default=None, max_length=12)  # template | custom
    wechat_msgid: str | None = Field(default=None, max_length=40, index=True)
    delivery_status: str | None = Field(default=None, max_length=40)
    created_at: datetime
    sent_at: datetime | None = None


def enqueue(
    session: Session,
    person_id: int | None,
    kind: str,
    text: str,
    *,
    now: datetime,
    data: dict | None = None,
    openid: str | None = None,
    force_cs: bool = False,
    dedup_key: str | None = None,
) -> OutboxMessage:
    """One row, for the transport (a late reply to an openid not bound yet); domains tell people with `notify`."""
    row = OutboxMessage(
        person_id=person_id,
        openid=openid,
        kind=kind,
        text=text,
        data=json.dumps(data or {}, ensure_ascii=False),
        force_cs=force_cs,
        dedup_key=dedup_key,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    mark_queued(session)
    return row


_INSERT = Hot(insert(OutboxMessage.__table__))  # type: ignore[attr-defined]  # built once, compiled once per process


def notify(
    session: Session,
    person_ids: Iterable[int | None],
    kind: str,
    text: str,
    *,
    now: datetime,
    data: dict | None = None,
    skip: int | None = None,
    dedup: str | None = None,
) -> int:
    """The one way a domain tells people: the same text queued for each person once, in order, in the same
    transaction as the change. `skip`: the person who made the change (they already have the reply).
    `dedup`: makes each push once-only — person P's row gets the key `{dedup}:{P}`, and a person who already
    has a row with that key is not queued again. Returns how many rows were queued."""
    ids = [pid for pid in dict.fromkeys(person_ids) if pid is not None and pid != skip]
    if dedup is None or not ids:
        return enqueue_many(session, ids, kind, text, now=now, data=data)
    keys = {pid: f"{dedup}:{pid}" for pid in ids}
    have = set(session.exec(select(OutboxMessage.dedup_key).where(col(OutboxMessage.dedup_key).in_(keys.values())))
               .all())
    ids = [pid for pid in ids if keys[pid] not in have]
    return enqueue_many(session, ids, kind, text, now=now, data=data, dedup_keys=keys)


def enqueue_many(
    session: Session, person_ids: Iterable[int | None], kind: str, text: str, *, now: datetime,
    data: dict | None = None, dedup_keys: dict[int, str] | None = None,
) -> int:
    """`notify`'s write: the rows (each person once, in order) in one Core INSERT on the session's connection
    and transaction instead of one ORM object per person (object construction and the flush are most of the
    cost of a push; 报修 and reminders are hot paths). Returns how many rows were queued."""
    ids = [pid for pid in dict.fromkeys(person_ids) if pid is not None]
    if not ids:
        return 0
    payload = json.dumps(data or {}, ensure_ascii=False)
    keys = dedup_keys or {}
    rows = [{"person_id": pid, "openid": None, "kind": kind, "text": text, "data": payload, "force_cs": False,
             "dedup_key": keys.get(pid), "state": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
            for pid in ids]
    # Write what the session holds first (nothing, usually: then this is cheap), so rows queued earlier with
    # `enqueue` keep their order and a person added in this transaction exists for the foreign key.
    session.flush()
    # Several rows: an executemany (compiled once; one round trip in psycopg's pipeline).
    _INSERT.run(session, rows[0] if len(rows) == 1 else rows)
    mark_queued(session)
    return len(rows)


QUEUED = "outbox_queued"


def mark_queued(session: Session) -> None:
    """Note on the session that this transaction queued pushes: the web process wakes its sender only then."""
    session.info[QUEUED] = True


def queued(session: Session) -> bool:
    return bool(session.info.get(QUEUED))


def retry(session: Session, msg_id: int, *, now: datetime) -> OutboxMessage:
    """A failed push is queued again: the sender picks it up at once, with a fresh count of attempts."""
    row = session.exec(select(OutboxMessage).where(OutboxMessage.id == msg_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"消息 {msg_id}")
    if row.state != FAILED:
        raise UserError(f"消息 {msg_id} 当前状态为「{STATES_ZH.get(row.state, row.state)}」，只有失败的消息可以重发。")
    row.state = PENDING
    row.next_attempt_at = now
    row.attempts = 0
    row.claimed_until = None
    session.add(row)
    session.flush()
    mark_queued(session)
    return row


def record_delivery(session: Session, wechat_msgid: str, status: str) -> bool:
    """A TEMPLATESENDJOBFINISH event: WeChat says whether a template message reached the person."""
    row = session.exec(select(OutboxMessage).where(OutboxMessage.wechat_msgid == wechat_msgid)).first()
    if row is None:
        return False
    row.delivery_status = status[:40]
    session.add(row)
    return True

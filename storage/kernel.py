"""The shared domain kernel: what every domain does the same way — record numbers (`Ref`), state machines
(`StateMachine`), once-only marks (`mark_once`), durations and dates (`fmt_duration`, `fmt_day`, `fmt_time`,
`parse_day`). Two more belong to their owners and are used the same way everywhere: pushes go through
`storage.outbox.notify`, and "the one person of this name" is `storage.people.find_one`.

Record numbers are the table ids with a two-letter prefix per kind: BX 报修, FK 访客, QJ 请假, TX 提醒, XC 巡查.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from storage.errors import UserError
from storage.schoolcal import WEEKDAY_NAMES

__all__ = ["PREFIXES", "Ref", "StateMachine", "Transition", "fmt_day", "fmt_duration", "fmt_time", "mark_once",
           "parse_day"]

PREFIXES = {"BX": "报修", "FK": "访客", "QJ": "请假", "TX": "提醒", "XC": "巡查"}

_REF = re.compile(r"^([A-Za-z]{2})?(\d{1,9})$")
_DAY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")


@dataclass(frozen=True)
class Ref:
    """A record number: `Ref("BX", 12)` is shown as BX12 and parsed from `BX12`, `bx12` or `12`."""

    prefix: str
    number: int

    def __str__(self) -> str:
        return f"{self.prefix}{self.number}"

    @classmethod
    def of(cls, prefix: str, number: int | None) -> str:
        """The shown form of a record's number (`Ref.of("BX", ticket.id)` → "BX12")."""
        return f"{prefix}{number}"

    @classmethod
    def parse(cls, text: str | None, prefix: str) -> Ref:
        """`BX12`, `bx12` or `12` → Ref("BX", 12) for prefix BX; anything else is a clear error."""
        if not text:
            raise UserError(f"请写上编号，例如 {prefix}12")
        m = _REF.match(text.strip())
        if not m or (m.group(1) and m.group(1).upper() != prefix):
            raise UserError(f"编号格式不对：{text}（应为 {prefix}12 或 12）")
        return cls(prefix, int(m.group(2)))

    @staticmethod
    def typed_prefix(text: str | None) -> str | None:
        """The prefix a user typed (`TX3` → TX), or None for a bare number or no number at all."""
        m = _REF.match(text.strip()) if text else None
        return m.group(1).upper() if m and m.group(1) else None

    @staticmethod
    def search(text: str, prefix: str) -> int | None:
        """The number in a search box's text (`BX12`, `bx 12`, `12`), or None if it is not a record number."""
        m = re.fullmatch(rf"(?i)\s*(?:{prefix})?\s*(\d{{1,9}})\s*", text)
        return int(m.group(1)) if m else None


def parse_day(text: str) -> date:
    """`2026-10-01`, `2026/10/1`, `2026.10.1`, `2026年10月1日` → a date; ValueError otherwise."""
    m = _DAY.match(text.strip())
    if not m:
        raise ValueError(text)
    return date(int(m[1]), int(m[2]), int(m[3]))


# --- state machines ---------------------------------------------------------------------------------------


class Stateful(Protocol):
    """A record that moves through a state machine: its id, its state and its shown number."""

    id: int | None
    state: str

    @property
    def ref(self) -> str: ...


@dataclass(frozen=True)
class Transition:
    verb: str  # the Chinese word for the action, used in history and refusals
    sources: frozenset[str]
    target: str
    stamp: str | None = None  # the record's timestamp set on arrival


Hint = str | Callable[[Any], str]


@dataclass(frozen=True)
class StateMachine:
    """A table of allowed transitions (action name → Transition) and one refusal wording for everything else:
    `BX1 当前状态为「已派单」，不能完成。` followed by the hint for (action, state), if any (`{ref}` in a hint is
    the record number; a callable hint gets the record)."""

    transitions: Mapping[str, Transition]
    hints: Mapping[tuple[str, str], Hint] = field(default_factory=dict)

    def refusal(self, record: Stateful, action: str) -> str:
        hint = self.hints.get((action, record.state), "")
        extra = hint(record) if callable(hint) else hint.format(ref=record.ref)
        return f"{record.ref} 当前状态为「{record.state}」，不能{self.transitions[action].verb}。{extra}".rstrip()

    def check(self, record: Stateful, action: str) -> Transition:
        """The transition for `action` from the record's state, or the refusal."""
        t = self.transitions[action]
        if record.state not in t.sources:
            raise UserError(self.refusal(record, action))
        return t

    def move(self, record: Stateful, action: str, now: datetime) -> str:
        """Move the record along the table in memory (the caller writes it); returns the state it left."""
        t = self.check(record, action)
        before = record.state
        record.state = t.target
        if t.stamp:
            setattr(record, t.stamp, now)
        return before

    def advance(self, session: Session, record: Stateful, action: str, now: datetime, **values: Any) -> bool:
        """Move the record along the table in the database, atomically: a conditional UPDATE that only matches
        the state we read (and, when the transition stamps a time, a record not stamped yet), so of two people
        acting at once only one moves it. The record is re-read; False when the other one won."""
        t = self.check(record, action)
        model = type(record)
        stmt = update(model).where(model.id == record.id, model.state == record.state)  # type: ignore[arg-type]
        if t.stamp:
            stmt = stmt.where(getattr(model, t.stamp).is_(None))
            values.setdefault(t.stamp, now)
        result = session.execute(stmt.values(state=t.target, **values).execution_options(synchronize_session=False))
        session.refresh(record)
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def advance_or_refuse(self, session: Session, record: Stateful, action: str, now: datetime,
                          **values: Any) -> None:
        """`advance`, and the refusal (for the state the other one left it in) when it did not move."""
        if not self.advance(session, record, action, now, **values):
            raise UserError(self.refusal(record, action))


# --- once-only marks -------------------------------------------------------------------------------------


def mark_once(session: Session, record: Any, column: str, now: datetime, **where: Any) -> bool:
    """Set a "done at" mark (notified, escalated, re-pushed …) on a record only if it is not set yet, by a
    conditional UPDATE; True for the one caller that set it. However often a job runs, and whichever process
    runs it, the thing the mark stands for happens once. `where` adds conditions (`state="已出校"`)."""
    model = type(record)
    stmt = update(model).where(model.id == record.id, getattr(model, column).is_(None))
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    result = session.execute(stmt.values({column: now}).execution_options(synchronize_session=False))
    won = result.rowcount == 1  # type: ignore[attr-defined]
    if won:
        set_committed_value(record, column, now)  # the row has it; the object need not write it again
    return bool(won)


# --- durations and dates ---------------------------------------------------------------------------------


def fmt_duration(d: timedelta, *, coarse: bool = False) -> str:
    """`5分钟`, `2小时5分钟`, `3天1小时` (from 48 hours on); coarse: the largest unit only (`2小时`, `3天`)."""
    minutes = max(0, int(d.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}小时" + (f"{minutes}分钟" if minutes and not coarse else "")
    return f"{hours // 24}天" + (f"{hours % 24}小时" if not coarse else "")


def fmt_day(d: date, *, year: bool = False) -> str:
    """`12月1日（周二）`; `2027年1月3日（周日）` with the year."""
    return f"{d.year}年" * year + f"{d.month}月{d.day}日（周{WEEKDAY_NAMES[d.weekday()]}）"


def fmt_time(dt: datetime, *, weekday: bool = False, year: bool = False, seconds: bool = False) -> str:
    """`12月1日 09:00`; with the weekday `12月1日 09:00（周二）`; seconds (when not 0) and the year on request."""
    clock = dt.strftime("%H:%M:%S" if seconds and dt.second else "%H:%M")
    day = f"（周{WEEKDAY_NAMES[dt.weekday()]}）" if weekday else ""
    return f"{dt.year}年" * year + f"{dt.month}月{dt.day}日 {clock}{day}"

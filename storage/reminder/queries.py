"""The console's read-only views of reminders: the list and one reminder's deliveries and receipts, the
提醒发送台账 export (one row per delivery), and the dashboard's next reminders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.listing import EXPORT_LIMIT, Filters, Page, Sheet, in_range, paged, ref_or_text, xl_time, yes_no
from storage.people import ROLES, Person
from storage.reminder.models import STATE_ZH, Reminder, ReminderOccurrence, ReminderReceipt
from storage.reminder.service import describe_when

__all__ = ["DeliveryRow", "OccurrenceLine", "ReceiptLine", "ReminderDetails", "ReminderRow", "export_reminders",
           "next_reminders", "reminder_details", "reminders"]


@dataclass
class ReminderRow:
    reminder: Reminder
    creator: str
    when: str
    targets: str


def _reminder_targets(r: Reminder) -> str:
    if r.target_label:
        return str(r.target_label)
    try:
        specs = json.loads(r.targets or "[]")
    except ValueError:
        return ""
    labels = []
    for spec in specs:
        if spec == "all":
            labels.append("@全体")
        elif spec.startswith("role:"):
            labels.append("@" + ROLES.get(spec[5:], spec[5:]))
        elif spec.startswith("person:"):
            labels.append("本人" if r.creator_id and spec == f"person:{r.creator_id}" else "@" + spec[7:])
    return " ".join(labels)


def _reminder_stmt(f: Filters) -> Any:
    creator = aliased(Person)
    stmt = select(Reminder, creator.name).join(creator, col(creator.id) == col(Reminder.creator_id), isouter=True)
    if f.state:
        stmt = stmt.where(Reminder.state == f.state)
    if f.kind:
        stmt = stmt.where(Reminder.source == f.kind)
    if f.like:
        stmt = stmt.where(or_(*ref_or_text(f, "TX", Reminder.id, Reminder.text, Reminder.target_label, creator.name)))
    stmt = stmt.where(*in_range(col(Reminder.first_due_at), f))
    return stmt.order_by(col(Reminder.id).desc())


def _reminder_row(r: Reminder, creator: str | None) -> ReminderRow:
    return ReminderRow(r, creator or ("内置" if r.creator_id is None else "?"), describe_when(r), _reminder_targets(r))


def reminders(session: Session, f: Filters, page: int = 1) -> Page[ReminderRow]:
    rows, total = paged(session, _reminder_stmt(f), page)
    return Page([_reminder_row(r, c) for r, c in rows], total, max(1, page))


@dataclass
class ReceiptLine:
    person: str
    bound: bool
    acked_at: datetime | None
    how: str
    note: str


@dataclass
class OccurrenceLine:
    occurrence: ReminderOccurrence
    receipts: list[ReceiptLine] = field(default_factory=list)

    @property
    def acked(self) -> int:
        return sum(1 for r in self.receipts if r.acked_at)


@dataclass
class ReminderDetails:
    row: ReminderRow
    occurrences: list[OccurrenceLine]
    pushes: list[tuple[Any, str]]  # outbox rows of this reminder (if the reminder service tags them), name


def reminder_details(session: Session, n: int) -> ReminderDetails:
    r = session.get(Reminder, n)
    if r is None:
        raise NotFound(f"TX{n}")
    creator = session.get(Person, r.creator_id) if r.creator_id else None
    occs = session.exec(select(ReminderOccurrence).where(ReminderOccurrence.reminder_id == n)
                        .order_by(col(ReminderOccurrence.due_at).desc()).limit(100)).all()
    lines = []
    for occ in occs:
        got = session.exec(
            select(ReminderReceipt, Person)
            .join(Person, col(Person.id) == col(ReminderReceipt.person_id))
            .where(ReminderReceipt.occurrence_id == occ.id)
            .order_by(col(Person.id))
        ).all()
        lines.append(OccurrenceLine(occ, [ReceiptLine(p.name, bool(p.openid), rc.acked_at, rc.how or "", rc.note or "")
                                          for rc, p in got]))
    return ReminderDetails(_reminder_row(r, creator.name if creator else None), lines, [])


@dataclass
class DeliveryRow:
    reminder: Reminder
    occurrence: ReminderOccurrence
    receipts: int
    acked: int
    missing: str


def _delivery_rows(session: Session, f: Filters) -> list[DeliveryRow]:
    stmt = (select(ReminderOccurrence, Reminder)
            .join(Reminder, col(Reminder.id) == col(ReminderOccurrence.reminder_id))
            .where(*in_range(col(ReminderOccurrence.due_at), f))
            .order_by(col(ReminderOccurrence.due_at), col(ReminderOccurrence.id)).limit(EXPORT_LIMIT))
    if f.like:
        stmt = stmt.where(col(Reminder.text).ilike(f.like, escape="\\"))
    out = []
    for occ, r in session.exec(stmt).all():
        got = session.exec(
            select(ReminderReceipt.acked_at, Person.name)
            .join(Person, col(Person.id) == col(ReminderReceipt.person_id))
            .where(ReminderReceipt.occurrence_id == occ.id)
        ).all()
        missing = "、".join(name for acked, name in got if acked is None)
        out.append(DeliveryRow(r, occ, len(got), sum(1 for acked, _ in got if acked), missing))
    return out


def next_reminders(session: Session, now: datetime, limit: int = 5) -> list[ReminderRow]:
    creator = aliased(Person)
    rows = session.exec(
        select(Reminder, creator.name).join(creator, col(creator.id) == col(Reminder.creator_id), isouter=True)
        .where(col(Reminder.next_due_at) >= now)
        .order_by(col(Reminder.next_due_at), col(Reminder.id)).limit(limit)
    ).all()
    return [_reminder_row(r, c) for r, c in rows]


def export_reminders(session: Session, f: Filters, **_: Any) -> Sheet:
    """One row per delivery (a reminder firing), with its receipts: the ledger of what was announced, to whom."""
    out = []
    for d in _delivery_rows(session, f):
        r, occ = d.reminder, d.occurrence
        out.append([f"TX{r.id}", r.text, _reminder_targets(r), xl_time(occ.due_at), xl_time(occ.fired_at),
                    "已发送" if occ.status == "sent" else "错过（未发送）", occ.recipients, yes_no(r.needs_receipt),
                    d.acked if r.needs_receipt else "", (d.receipts - d.acked) if r.needs_receipt else "",
                    d.missing if r.needs_receipt else "", STATE_ZH.get(r.state, r.state)])
    return Sheet("提醒发送台账", ["编号", "内容", "对象", "应提醒时间", "发送时间", "发送结果", "人数", "需回执", "已回执",
                              "未回执", "未回执人员", "提醒状态"], out, [8, 30, 16, 17, 17, 12, 6, 7, 7, 7, 24, 8])

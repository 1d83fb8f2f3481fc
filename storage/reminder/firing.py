"""Firing reminders: every due time of every reminder is sent exactly once, or recorded as missed.

Exactly once comes from the database, not from which process runs the timer. A Reminder keeps its next due
time (`next_due_at`, indexed; NULL once it is finished or cancelled). Firing it inserts a ReminderOccurrence —
UNIQUE (reminder_id, due_at) — together with one outbox row per recipient (each with a unique dedup_key) and
advances `next_due_at`, all in one transaction. A second process that looks at the same reminder either skips
it (PostgreSQL: FOR UPDATE SKIP LOCKED), sees it already advanced, or finds the occurrence already there and
writes nothing. Recipients of `@教师`-style targets are resolved when the reminder fires, so a recurring
reminder reaches the staff of the day, not those of the day it was set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage import outbox
from storage.people import Person, people_with_role
from storage.reminder.models import (
    ACTIVE,
    DONE,
    MISSED,
    SENT,
    SOURCE_DUTY,
    Reminder,
    ReminderOccurrence,
    ReminderReceipt,
)
from storage.reminder.service import Recipients, first_due, fmt_moment, short
from storage.schoolcal import shift_to_school_day

__all__ = ["MAX_MISSED_RECORDED", "MISSED_GRACE", "RECEIPT_MINUTES", "FireReport", "fire_due", "next_due",
           "push_text"]

MISSED_GRACE = timedelta(hours=1)  # later than this after its time (server down): recorded as missed, not sent
RECEIPT_MINUTES = 30  # unacknowledged this long after firing → the admins are told
MAX_MISSED_RECORDED = 50  # a recurring reminder down for weeks: record this many missed, then jump ahead

# INSERT … ON CONFLICT DO NOTHING is dialect-specific.
_INSERT = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def _advance(r: Reminder, due: datetime) -> datetime | None:
    """The due time after `due`, or None for a one-off (工作日 and school days from the school calendar)."""
    rec = r.recurrence
    if rec is None:
        return None
    nxt = rec.next_after(due)
    if r.school_days_only:
        nxt = shift_to_school_day(nxt)
        if nxt <= due:  # defensive: a shift never goes backwards, but never loop on the same time
            nxt = rec.next_after(nxt)
    return nxt


@dataclass
class FireReport:
    reminders: int = 0  # reminders looked at
    sent: int = 0  # occurrences sent
    missed: int = 0  # occurrences recorded as missed
    outbox: int = 0  # outbox rows queued
    lags: list[float] = field(default_factory=list)  # seconds from due time to `now`, per sent occurrence

    def __bool__(self) -> bool:
        return bool(self.reminders)


def push_text(r: Reminder, creator: str | None) -> str:
    if r.source == SOURCE_DUTY:
        return r.text  # already worded as a duty notice
    by = f"{creator} 设置" if creator else "后勤处"
    lines = [f"【提醒】{r.text}", f"（{r.ref} · {by}）"]
    if r.needs_receipt:
        lines.append(f"请回复「收到 {r.ref}」确认，完成后可回复「完成 {r.ref} 情况」。")
    return "\n".join(lines)


def _insert_occurrences(session: Session, rows: list[dict[str, object]]) -> dict[tuple[int, datetime], int]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: {(reminder_id, due_at): id} of the occurrences this
    transaction won; one that another process already inserted is simply absent."""
    if not rows:
        return {}
    table = ReminderOccurrence.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = _INSERT.get(dialect)
    if insert is None:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database: {dialect}")
    stmt = (insert(table).on_conflict_do_nothing(index_elements=["reminder_id", "due_at"])
            .returning(table.c.id, table.c.reminder_id, table.c.due_at))
    # executemany with RETURNING: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues").
    return {(reminder_id, due_at): occ_id for occ_id, reminder_id, due_at in session.execute(stmt, rows)}


@dataclass
class _Plan:
    reminder: Reminder
    missed: list[datetime] = field(default_factory=list)
    fired: list[datetime] = field(default_factory=list)
    next_due: datetime | None = None


def _plan(r: Reminder, now: datetime, grace: timedelta) -> _Plan:
    """Which due times of `r` up to `now` are sent, which were missed, and the next one (no database)."""
    plan = _Plan(r)
    due: datetime | None = r.next_due_at
    while due is not None and now - due > grace:
        if len(plan.missed) < MAX_MISSED_RECORDED:
            plan.missed.append(due)
            due = _advance(r, due)
        else:  # down for weeks: jump straight to the first time still within the grace
            rec = r.recurrence
            assert rec is not None
            due = first_due(rec, now - grace, r.school_days_only)
    while due is not None and due <= now:
        plan.fired.append(due)
        due = _advance(r, due)
    plan.next_due = due
    return plan


def fire_due(
    session: Session,
    now: datetime,
    *,
    grace: timedelta = MISSED_GRACE,
    receipt_minutes: int = RECEIPT_MINUTES,
    limit: int = 500,
) -> FireReport:
    """Fire every reminder due by `now` (at most `limit`), in the caller's transaction.

    Less than `grace` late: sent (one outbox row per bound recipient). Later (the server was down): recorded
    as missed and the admins are told, once per reminder. Recurring reminders are advanced past `now`.
    The whole batch costs a handful of statements (select, occurrences, people, outbox, updates), not a
    handful per reminder: 10,000 reminders due in one minute must all go out within a second of their time.
    """
    rows = session.exec(
        select(Reminder)
        .where(col(Reminder.next_due_at) <= now)
        .order_by(col(Reminder.next_due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL: another process's batch is skipped, not waited for
    ).all()
    report = FireReport(reminders=len(rows))
    if not rows:
        return report
    with session.no_autoflush:
        plans = [_plan(r, now, grace) for r in rows if r.state == ACTIVE and r.next_due_at is not None]
        occ_rows: list[dict[str, object]] = []
        for p in plans:
            r = p.reminder
            occ_rows += [{"reminder_id": r.id, "due_at": d, "fired_at": now, "status": MISSED, "recipients": 0,
                          "receipt_due_at": None} for d in p.missed]
            if p.fired:
                receipt_due = now + timedelta(minutes=r.receipt_minutes or receipt_minutes) if r.needs_receipt else None
                occ_rows += [{"reminder_id": r.id, "due_at": d, "fired_at": now, "status": SENT, "recipients": 0,
                              "receipt_due_at": receipt_due} for d in p.fired]
        won = _insert_occurrences(session, occ_rows)
        recipients = Recipients(session)
        recipients.prefetch(json.loads(p.reminder.targets) for p in plans if p.fired)
        creators = _names(session, {p.reminder.creator_id for p in plans if p.fired and p.reminder.creator_id})
        admins: list[int] | None = None
        counts: dict[int, int] = {}
        for p in plans:
            r = p.reminder
            assert r.id is not None
            missed_won = [d for d in p.missed if (r.id, d) in won]
            report.missed += len(missed_won)
            if missed_won:
                if admins is None:
                    admins = [a.id for a in people_with_role(session, "admin") if a.id is not None]
                report.outbox += _tell_missed(session, r, missed_won, admins, grace, now)
            people = recipients.resolve(json.loads(r.targets)) if p.fired else []
            text = push_text(r, creators.get(r.creator_id) if r.creator_id else None)
            kind = "duty" if r.source == SOURCE_DUTY else "reminder"
            for d in p.fired:
                occ_id = won.get((r.id, d))
                if occ_id is None:
                    continue  # another process fired this occurrence: it queued the pushes
                counts[occ_id] = len(people)
                data = {"reminder": r.id, "due": d.isoformat()}
                bound = [pid for pid, openid in people if openid]  # not bound yet: nothing to push, no receipt
                if r.needs_receipt:
                    session.add_all(ReminderReceipt(occurrence_id=occ_id, person_id=pid) for pid in bound)
                report.outbox += outbox.notify(session, bound, kind, text, now=now, data=data,
                                               dedup=f"tx{r.id}:{d:%Y%m%d%H%M%S}")
                report.sent += 1
                report.lags.append((now - d).total_seconds())
                r.last_fired_at = now
            r.next_due_at = p.next_due
            if p.next_due is None:
                r.state = DONE
            session.add(r)
        _set_counts(session, counts)
    session.flush()
    return report


def next_due(session: Session) -> datetime | None:
    """The earliest time anything is due (an index-only lookup): lets the scheduler sleep until exactly then."""
    return session.exec(select(func.min(Reminder.next_due_at))).one()  # type: ignore[no-any-return]


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.exec(select(Person.id, Person.name).where(col(Person.id).in_(wanted))).all()
    return {int(pid): name for pid, name in rows if pid is not None}


def _set_counts(session: Session, counts: dict[int, int]) -> None:
    """Record how many people each occurrence went to (with no recipients there is nothing to escalate)."""
    table = ReminderOccurrence.__table__  # type: ignore[attr-defined]
    by_count: dict[int, list[int]] = {}
    for occ_id, n in counts.items():
        by_count.setdefault(n, []).append(occ_id)
    for n, ids in by_count.items():
        values: dict[str, object] = {"recipients": n}
        if n == 0:
            values["receipt_due_at"] = None
        session.execute(update(table).where(table.c.id.in_(ids)).values(**values))


def _tell_missed(session: Session, r: Reminder, missed: list[datetime], admins: list[int], grace: timedelta,
                 now: datetime) -> int:
    more = f"等 {len(missed)} 次" if len(missed) > 1 else ""
    text = (f"【错过的提醒】{r.ref}「{short(r.text)}」原定 {fmt_moment(missed[0], now)}{more}，"
            f"因服务未运行超过 {int(grace.total_seconds() // 60)} 分钟未发送，已记为错过。")
    return outbox.notify(session, admins, "reminder", text, now=now, dedup=f"tx{r.id}:{missed[0]:%Y%m%d%H%M%S}:missed",
                         data={"reminder": r.id, "missed": True})

"""When the official holiday data arrives, re-resolve every future date that was worked out provisionally.

Beyond the years ``chinesecalendar`` covers, ``storage.schoolcal`` answers from the law (no make-up workdays,
no 补休).  Records planned on such dates — school-day reminders (``工作日``, built-ins moved off holidays) and a
rota made with ``duty generate --provisional`` — may be wrong once the State Council publishes the year.  A
newer package brings the data; the next ``houqin init`` or the scheduler's hourly check then calls
:func:`resolve`, which

* re-computes the next due time of every school-day reminder due in a newly covered year (and resumes the
  reminders an earlier release stopped for lack of data);
* lets the caller re-plan the built-in events from the term calendar (``rebuild``);
* checks the generated rota in those years: a day that became a make-up workday loses its duty (and its
  reminders); a new day off (补休) without duty is listed for the admin to fill;
* tells the admins of all changes in one message.

Once only: the years already checked are kept in ``CalendarCoverage`` and claimed with a conditional UPDATE,
so two processes (or init and the scheduler) never report the same upgrade twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from storage import duty, outbox
from storage import reminder as rem
from storage.kernel import fmt_day
from storage.people import Person, people_with_role
from storage.schoolcal import is_duty_day, official_years

__all__ = ["CalendarCoverage", "CalendarReport", "resolve"]


class CalendarCoverage(SQLModel, table=True):
    """The last year of official holiday data this school's records have been checked against (one row)."""

    id: int = Field(default=1, primary_key=True)
    official_through: int
    checked_at: datetime


@dataclass
class CalendarReport:
    official_through: int
    newly_official: list[int] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    told: int = 0  # admins told


def _calendar_reminders(session: Session, states: tuple[str, ...]) -> list[rem.Reminder]:
    """Reminders whose times depend on the school calendar (duty reminders follow their rota day instead)."""
    rows = session.exec(
        select(rem.Reminder).where(
            col(rem.Reminder.state).in_(states),
            (rem.Reminder.kind == "workday") | (rem.Reminder.school_days_only == True),  # noqa: E712
        )
    ).all()
    return [r for r in rows if not (r.builtin_key or "").startswith("duty:")]


def _snapshot(session: Session) -> dict[int, tuple[str, datetime | None]]:
    rows = session.exec(
        select(rem.Reminder).where(col(rem.Reminder.builtin_key).startswith("builtin:"))
    ).all()
    return {r.id: (r.state, r.next_due_at) for r in rows if r.id is not None}


def _line(r: rem.Reminder, old: datetime | None, new: datetime | None, now: datetime) -> str:
    what = rem.short(r.text, 24)
    if new is None:
        return f"{r.ref}「{what}」取消（原定 {rem.fmt_moment(old, now)}）" if old else f"{r.ref}「{what}」取消"
    if old is None:
        return f"{r.ref}「{what}」{'恢复' if r.recurrence else '新增'}，下次 {rem.fmt_moment(new, now)}"
    return f"{r.ref}「{what}」{rem.fmt_moment(old, now)} → {rem.fmt_moment(new, now)}"


def _reresolve_reminders(session: Session, years: set[int], now: datetime) -> list[str]:
    changes: list[str] = []
    for r in _calendar_reminders(session, (rem.ACTIVE, rem.STOPPED)):
        rec = r.recurrence
        if rec is None:  # a one-off built-in event: re-planned from the config by `rebuild`
            continue
        old = r.next_due_at
        if r.state == rem.ACTIVE and (old is None or old <= now or old.year not in years):
            continue
        base = max(r.last_fired_at or r.created_at, now) if r.state == rem.STOPPED else (r.last_fired_at or r.created_at)
        new = rem.first_due(rec, base, r.school_days_only)
        if new <= now:
            new = rem.first_due(rec, now, r.school_days_only)
        if r.state == rem.STOPPED:
            r.state, old = rem.ACTIVE, None
        elif new == old:
            continue
        r.next_due_at = new
        session.add(r)
        changes.append(_line(r, old, new, now))
    return changes


def _recheck_rota(session: Session, years: set[int], now: datetime) -> list[str]:
    today = now.date()
    rows = session.exec(
        select(duty.DutyRota).where(duty.DutyRota.day >= today, duty.DutyRota.source == duty.GENERATED)
        .order_by(col(duty.DutyRota.day))
    ).all()
    rows = [r for r in rows if r.day.year in years]
    if not rows:
        return []
    changes: list[str] = []
    for row in rows:
        if not is_duty_day(row.day):
            leader = session.get(Person, row.leader_id)
            duty.remove(session, row.day, now=now)
            changes.append(f"{fmt_day(row.day, year=True)} 调休上班，取消原定 {leader.name if leader else ''} 值班")
    have = {r.day for r in session.exec(select(duty.DutyRota).where(duty.DutyRota.day >= rows[0].day,
                                                                      duty.DutyRota.day <= rows[-1].day)).all()}
    day = rows[0].day
    missing: list[date] = []
    while day <= rows[-1].day:
        if is_duty_day(day) and day not in have:
            missing.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    for d in missing:
        changes.append(f"{fmt_day(d, year=True)} 放假（补休），尚未安排值班：发送「换班 {d.month}月{d.day}日 领导姓名」")
    return changes


def _claim(session: Session, last: int, now: datetime) -> int | None:
    """The year checked before (claimed atomically: None when there is nothing new, or another process has it)."""
    row = session.get(CalendarCoverage, 1)
    if row is None:
        try:
            with session.begin_nested():
                session.add(CalendarCoverage(id=1, official_through=last, checked_at=now))
        except IntegrityError:
            return None
        # First run on this database: nothing was planned provisionally against a newer coverage before us,
        # but an earlier release may have stopped school-day reminders for lack of data.
        return last
    before = row.official_through
    if before >= last:
        return None
    claimed = session.execute(
        update(CalendarCoverage).where(col(CalendarCoverage.id) == 1, col(CalendarCoverage.official_through) < last)
        .values(official_through=last, checked_at=now)
    )
    return before if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def resolve(session: Session, now: datetime, *, rebuild: Callable[[Session], object] | None = None) -> CalendarReport:
    """Re-resolve what was planned provisionally for years the official data now covers (see module doc)."""
    last = official_years()[1]
    report = CalendarReport(official_through=last)
    before = _claim(session, last, now)
    if before is None:
        return report
    years = set(range(before + 1, last + 1))
    report.newly_official = sorted(years)
    snap = _snapshot(session)
    report.changes += _reresolve_reminders(session, years, now)
    if rebuild is not None and years:
        rebuild(session)
        session.flush()
        after = session.exec(select(rem.Reminder).where(col(rem.Reminder.builtin_key).startswith("builtin:"))).all()
        for r in after:
            if r.recurrence is not None:  # recurring ones were re-computed above
                continue
            old_state, old_due = snap.get(r.id, ("", None))  # type: ignore[arg-type]
            new_due = r.next_due_at if r.state == rem.ACTIVE else None
            if (old_due if old_state == rem.ACTIVE else None) != new_due:
                report.changes.append(_line(r, old_due if old_state == rem.ACTIVE else None, new_due, now))
    report.changes += _recheck_rota(session, years, now)
    if report.changes:
        head = (f"【日历更新】已收到 {'、'.join(str(y) for y in report.newly_official)} 年的官方放假安排，"
                if report.newly_official else "【日历更新】")
        shown = report.changes[:15]
        more = f"\n……另有 {len(report.changes) - 15} 处，见后台提醒列表和值班表" if len(report.changes) > 15 else ""
        text = head + "按推算安排的日期已重新核对，以下有变化：\n" + "\n".join(shown) + more
        report.told += outbox.notify(session, [admin.id for admin in people_with_role(session, "admin")], "system",
                                     text, now=now, dedup=f"calendar:{last}")
    return report

"""The rules of holiday duty 节假日行政值日: which leader is on duty on each weekend and statutory holiday.

The rota is generated (round-robin of the leaders over the official duty days), imported from a CSV (日期,领导)
or changed by 换班. Each rota day owns three keyed reminders — the leader the evening before and the morning of,
and the guards that morning — kept in step with the rota, so they fire exactly once like any reminder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from storage import outbox
from storage import reminder as rem
from storage.duty.models import GENERATED, IMPORTED, SWAPPED, DutyRota
from storage.errors import UserError
from storage.kernel import fmt_day, parse_day
from storage.people import Actor, Person, find_one, find_people, people_with_role
from storage.schoolcal import PROVISIONAL_NOTE, duty_days, ensure_official, is_duty_day, is_provisional

__all__ = ["PROVISIONAL_NOTE", "DutyTimes", "Swap", "assign", "coming", "find_leader", "generate", "import_rows",
           "is_provisional_row", "leaders", "on_day", "parse_date", "remove", "swap"]


@dataclass(frozen=True)
class DutyTimes:
    """When the leader is reminded (the evening before, the morning of) and the guards are told."""

    evening: time = time(18, 0)
    morning: time = time(7, 30)


def leaders(session: Session) -> list[Person]:
    return people_with_role(session, "leader")


def find_leader(session: Session, name: str) -> Person:
    name = name.strip()
    if not find_people(session, name, role="leader") and find_people(session, name):
        raise UserError(f"「{name}」不是校领导，值班只能安排校领导")
    return find_one(session, name, role="leader", what="校领导")


# --------------------------------------------------------------------------------------------------------
# Rota changes (each keeps the day's reminders in step)


def _reminders(session: Session, row: DutyRota, leader: Person, *, now: datetime, times: DutyTimes) -> None:
    day = row.day
    key = f"duty:{day:%Y%m%d}"
    phone = f"（电话 {leader.phone}）" if leader.phone else ""
    eve = datetime.combine(day - timedelta(days=1), times.evening)
    morning = datetime.combine(day, times.morning)
    me = [f"person:{leader.id}"]
    plan = [
        (f"{key}:eve", eve, f"【值班提醒】明天 {fmt_day(day)} 由您担任节假日行政值日，请提前做好安排。", me),
        (f"{key}:morning", morning, f"【值班提醒】今天 {fmt_day(day)} 由您值班，请保持电话畅通。", me),
        (f"{key}:guard", morning, f"【今日值班】{fmt_day(day)} 值班领导：{leader.name}{phone}", ["role:guard"]),
    ]
    for k, when, text, specs in plan:
        # A swap keeps the times already scheduled (set from the config when the rota was generated or imported).
        existing = session.exec(select(rem.Reminder).where(rem.Reminder.builtin_key == k)).first()
        if existing is not None:
            when = existing.first_due_at
        if when > now:
            rem.upsert_keyed(session, k, when, text, specs, now=now, source=rem.SOURCE_DUTY,
                             target_label="@门卫" if specs == ["role:guard"] else f"@{leader.name}")


def assign(session: Session, day: date, leader: Person, *, now: datetime, source: str,
           times: DutyTimes = DutyTimes()) -> DutyRota:
    """Put `leader` on duty on `day` (replacing whoever was) and schedule the day's reminders."""
    assert leader.id is not None
    row = session.exec(select(DutyRota).where(DutyRota.day == day)).first()
    if row is None:
        row = DutyRota(day=day, leader_id=leader.id, source=source, updated_at=now)
    else:
        row.leader_id, row.source, row.updated_at = leader.id, source, now
    session.add(row)
    session.flush()
    _reminders(session, row, leader, now=now, times=times)
    return row


def generate(session: Session, start: date, end: date, *, now: datetime,
             times: DutyTimes = DutyTimes(), provisional: bool = False) -> list[DutyRota]:
    """Round-robin of the leaders over the duty days (weekends and statutory holidays, make-up workdays
    excluded) from `start` to `end`, carrying on from whoever was on duty last before `start`.

    Over a year without official holiday data it raises CalendarUnavailable, before changing anything, unless
    `provisional`: then the days come from the law, and the rota stays marked provisional (see
    :func:`is_provisional_row`) until the official data confirms or changes it (storage.calendar_sync).
    """
    if end < start:
        raise UserError("结束日期早于开始日期")
    if (end - start).days > 366 * 2:
        raise UserError("一次最多生成两年的值班表")
    if not provisional:
        ensure_official(start, end)  # refuse the whole range rather than guess
    days = duty_days(start, end)
    people = leaders(session)
    if not people:
        raise UserError("还没有校领导，请先添加（houqin invite 张校长 --role leader）")
    ids = [p.id for p in people]
    before = session.exec(select(DutyRota).where(DutyRota.day < start).order_by(col(DutyRota.day).desc())).first()
    i = (ids.index(before.leader_id) + 1) if before is not None and before.leader_id in ids else 0
    out = []
    for d in days:
        out.append(assign(session, d, people[i % len(people)], now=now, source=GENERATED, times=times))
        i += 1
    return out


parse_date = parse_day  # `houqin duty` and the CSV import read days the same way as every other ledger


def import_rows(session: Session, rows: list[list[str]], *, now: datetime,
                times: DutyTimes = DutyTimes()) -> tuple[list[DutyRota], list[str], list[str]]:
    """Rows of 日期,领导 (a header row is skipped). All or nothing: any bad row → nothing imported.

    Returns (rows imported, errors, warnings). Warnings: a date that is a school day in the official calendar —
    imported anyway, since a school may keep its own rota; the calendar is not needed (this is the way in when
    it has no data for the year).
    """
    errors: list[str] = []
    warnings: list[str] = []
    wanted: list[tuple[date, Person]] = []
    seen: set[date] = set()
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if lineno == 1 and cells[0] in ("日期", "date", "Date"):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            errors.append(f"第{lineno}行：需要 日期,领导 两列")
            continue
        try:
            d = parse_date(cells[0])
        except ValueError:
            errors.append(f"第{lineno}行：日期格式不对「{cells[0]}」（应为 2026-10-01）")
            continue
        if d in seen:
            errors.append(f"第{lineno}行：{d:%Y-%m-%d} 重复")
            continue
        seen.add(d)
        try:
            leader = find_leader(session, cells[1])
        except UserError as exc:
            errors.append(f"第{lineno}行：{exc.message}")
            continue
        if not is_duty_day(d) and not is_provisional(d):
            warnings.append(f"第{lineno}行：{d:%Y-%m-%d} 是工作日（上课日），仍按表导入")
        wanted.append((d, leader))
    if errors:
        return [], errors, warnings
    out = [assign(session, d, leader, now=now, source=IMPORTED, times=times) for d, leader in wanted]
    return out, errors, warnings


@dataclass(frozen=True)
class Swap:
    """What a 换班 changed: `day` now goes to `new` (it was `old`'s; None: nobody's); with `other_day`, the two
    days' leaders were exchanged (`old` now has `other_day`)."""

    day: date
    new: Person
    old: Person | None
    other_day: date | None = None


def swap(session: Session, actor: Actor, day: date, *, now: datetime, leader_name: str | None = None,
         other_day: date | None = None, times: DutyTimes = DutyTimes()) -> Swap:
    """`换班 <日期> <领导姓名>` reassigns a day; `换班 <日期> <日期>` swaps two days' leaders. Both told."""
    if not actor.has("admin"):
        raise UserError("无权限：「换班」仅限后勤管理员使用。")
    if day < now.date():
        raise UserError(f"{fmt_day(day)} 已经过去，无法换班")
    row = session.exec(select(DutyRota).where(DutyRota.day == day)).first()
    if other_day is not None:
        other = session.exec(select(DutyRota).where(DutyRota.day == other_day)).first()
        if row is None or other is None:
            missing = day if row is None else other_day
            raise UserError(f"{fmt_day(missing)} 没有值班安排，无法互换")
        if other_day < now.date():
            raise UserError(f"{fmt_day(other_day)} 已经过去，无法换班")
        a, b = session.get(Person, row.leader_id), session.get(Person, other.leader_id)
        assert a is not None and b is not None
        if a.id == b.id:
            raise UserError(f"两天都是 {a.name} 值班，无需互换")
        assign(session, day, b, now=now, source=SWAPPED, times=times)
        assign(session, other_day, a, now=now, source=SWAPPED, times=times)
        for p, before, after in ((a, day, other_day), (b, other_day, day)):
            outbox.notify(session, [p.id], "duty",
                          f"【换班通知】您的值班由 {fmt_day(before)} 调整为 {fmt_day(after)}（与 "
                          f"{b.name if p is a else a.name} 互换）。", now=now)
        return Swap(day, b, a, other_day)
    if not leader_name:
        raise UserError("请写明日期和领导姓名，例如：换班 10月2日 李校长")
    new = find_leader(session, leader_name)
    old = session.get(Person, row.leader_id) if row is not None else None
    if old is not None and old.id == new.id:
        raise UserError(f"{fmt_day(day)} 本来就是 {new.name} 值班")
    assign(session, day, new, now=now, source=SWAPPED, times=times)
    was = f"（原为 {old.name}）" if old else ""
    outbox.notify(session, [new.id], "duty", f"【换班通知】{fmt_day(day)} 改由您担任节假日行政值日{was}。", now=now)
    if old is not None:
        outbox.notify(session, [old.id], "duty", f"【换班通知】您 {fmt_day(day)} 的值班已改由 {new.name} 担任。",
                      now=now)
    return Swap(day, new, old)


def remove(session: Session, day: date, *, now: datetime) -> None:
    """Take `day` off the rota (it became a make-up workday) and cancel its reminders."""
    row = session.exec(select(DutyRota).where(DutyRota.day == day)).first()
    if row is not None:
        session.delete(row)
    rem.retire_keyed(session, f"duty:{day:%Y%m%d}:", set(), now=now)


# --------------------------------------------------------------------------------------------------------
# Reading the rota


def is_provisional_row(row: DutyRota) -> bool:
    """A generated day in a year the official calendar does not cover yet (an imported rota is the school's own)."""
    return row.source == GENERATED and is_provisional(row.day)


def on_day(session: Session, day: date) -> tuple[DutyRota, Person] | None:
    row = session.exec(
        select(DutyRota, Person).join(Person, col(Person.id) == col(DutyRota.leader_id)).where(DutyRota.day == day)
    ).first()
    return (row[0], row[1]) if row else None


def coming(session: Session, start: date, limit: int = 60) -> list[tuple[DutyRota, Person]]:
    rows = session.exec(
        select(DutyRota, Person)
        .join(Person, col(Person.id) == col(DutyRota.leader_id))
        .where(DutyRota.day >= start)
        .order_by(col(DutyRota.day))
        .limit(limit)
    ).all()
    return [(r, p) for r, p in rows]

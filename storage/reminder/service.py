"""The rules of reminders 提醒 (TX): who a reminder reaches (`@门卫`, `@王老师` …), setting, listing and cancelling
one, receipts (收到 / 完成) and their escalation, and the keyed reminders that built-in events and the duty rota keep
in step. Firing them, exactly once per due time, is `storage.reminder.firing`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage import outbox
from storage.errors import NotFound, UserError
from storage.kernel import fmt_time
from storage.people import ROLES, STAFF, Actor, Person, find_one, people_with_role
from storage.reminder.models import (
    ACTIVE,
    CANCELLED,
    DONE,
    ONCE,
    SOURCE_CHAT,
    SOURCE_DUTY,
    STATE_ZH,
    Reminder,
    ReminderOccurrence,
    ReminderReceipt,
)
from storage.schoolcal import Recurrence, is_provisional, shift_to_school_day

__all__ = ["PROVISIONAL_MARK", "SELF_WORDS", "TARGET_WORDS", "Ack", "Recipients", "acknowledge", "cancel", "check",
           "create", "describe_when", "escalate_receipts", "first_due", "fmt_moment", "get_visible", "on_calendar",
           "only_self", "parse_targets", "provisional", "reach", "retire_keyed", "role_label", "same_as", "short",
           "upcoming", "upsert_keyed"]

# `@对象` words → target specs; people by name otherwise.
TARGET_WORDS: dict[str, str] = {
    "全体": "all", "所有人": "all", "全部": "all", "大家": "all", "全体教职工": "all",
    "教师": "role:teacher", "老师": "role:teacher", "全体教师": "role:teacher",
    "班主任": "role:head_teacher", "门卫": "role:guard", "保安": "role:guard",
    "维修工": "role:worker", "维修": "role:worker", "师傅": "role:worker",
    "领导": "role:leader", "校领导": "role:leader",
    "管理员": "role:admin", "后勤管理员": "role:admin", "后勤": "role:admin",
}  # fmt: skip
SELF_WORDS = ("我", "自己", "本人")


# --------------------------------------------------------------------------------------------------------
# Formatting


def fmt_moment(dt: datetime, now: datetime | None = None) -> str:
    """A reminder's time: `12月2日 08:00（周三）`; seconds only when set (`30秒后`), the year only when not this year."""
    return fmt_time(dt, weekday=True, seconds=True, year=now is not None and dt.year != now.year)


def on_calendar(r: Reminder) -> bool:
    """True when the reminder's times come from the school calendar (school days, holidays, the duty rota)."""
    return r.kind == "workday" or r.school_days_only or (r.builtin_key or "").startswith(("builtin:", "duty:"))


def provisional(r: Reminder) -> bool:
    """True when its next time was worked out from the law, before the official holiday data for that year."""
    return r.next_due_at is not None and on_calendar(r) and is_provisional(r.next_due_at)


PROVISIONAL_MARK = "（日期按法定假日推算）"


def describe_when(r: Reminder, now: datetime | None = None) -> str:
    rec = r.recurrence
    if rec is None:
        text = fmt_moment(r.next_due_at or r.first_due_at, now)
    else:
        text = rec.describe()
        if r.school_days_only:
            text += "（遇节假日顺延）"
    return text + (PROVISIONAL_MARK if provisional(r) else "")


# --------------------------------------------------------------------------------------------------------
# Targets


def parse_targets(session: Session, actor: Actor | None, labels: Iterable[str]) -> list[str]:
    """`@门卫`, `@王老师` … → specs. Unknown or ambiguous names are a clear error; no labels → the sender."""
    specs: list[str] = []
    for raw in labels:
        label = raw.strip().lstrip("@").strip()
        if not label:
            continue
        if label in TARGET_WORDS:
            spec = TARGET_WORDS[label]
        elif label in SELF_WORDS:
            if actor is None:
                raise UserError(f"无法识别提醒对象：@{label}")
            spec = f"person:{actor.id}"
        else:
            person = find_one(session, label, missing="找不到提醒对象「{name}」。可以写 @全体 @教师 @班主任 @门卫 "
                                                      "@维修工 @领导，或 @姓名（已登记的人员）")
            spec = f"person:{person.id}"
        if spec not in specs:
            specs.append(spec)
    if not specs:
        if actor is None:
            raise UserError("请写明提醒对象，例如 @全体")
        specs.append(f"person:{actor.id}")
    return specs


def only_self(specs: list[str], actor: Actor) -> bool:
    return specs == [f"person:{actor.id}"]


class Recipients:
    """Resolves target specs to bound, active people; cached for one batch of firings."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[str, list[tuple[int, str | None]]] = {}

    def _people(self, spec: str) -> list[tuple[int, str | None]]:
        if spec not in self._cache:
            if spec == "all":
                found = people_with_role(self.session, *sorted(STAFF))
            elif spec.startswith("role:"):
                found = people_with_role(self.session, spec[5:])
            elif spec.startswith("person:"):
                p = self.session.get(Person, int(spec[7:]))
                found = [p] if p is not None and p.active else []
            else:
                found = []
            self._cache[spec] = [(p.id, p.openid) for p in found if p.id is not None]
        return self._cache[spec]

    def prefetch(self, spec_lists: Iterable[list[str]]) -> None:
        """Load every `person:N` of a batch in one query instead of one query each."""
        ids = {int(s[7:]) for specs in spec_lists for s in specs
               if s.startswith("person:") and s not in self._cache}
        for k in range(0, len(ids), 1000):
            chunk = sorted(ids)[k:k + 1000]
            found = {p.id: p for p in self.session.exec(select(Person).where(col(Person.id).in_(chunk))).all()}
            for pid in chunk:
                p = found.get(pid)
                self._cache[f"person:{pid}"] = [(pid, p.openid)] if p is not None and p.active else []

    def resolve(self, specs: Iterable[str]) -> list[tuple[int, str | None]]:
        out: dict[int, str | None] = {}
        for spec in specs:
            for pid, openid in self._people(spec):
                out.setdefault(pid, openid)
        return list(out.items())


def reach(session: Session, specs: list[str]) -> tuple[int, int]:
    """(people targeted, of whom bound to WeChat)."""
    people = Recipients(session).resolve(specs)
    return len(people), sum(1 for _, openid in people if openid)


# --------------------------------------------------------------------------------------------------------
# Creating, listing, cancelling


def first_due(when: datetime | Recurrence, now: datetime, school_days_only: bool = False) -> datetime:
    if isinstance(when, Recurrence):
        due = when.next_after(now)
    else:
        due = when
    if school_days_only:
        due = shift_to_school_day(due)
    return due


def check(actor: Actor | None, when: datetime | Recurrence, text: str, specs: list[str], *, now: datetime,
          school_days_only: bool = False) -> datetime:
    """Whether this reminder may be set, with the refusal as a UserError; its first due time."""
    text = text.strip()
    if not text:
        raise UserError("请写上提醒内容，例如：提醒 明天8:00 交教案")
    if len(text) > 500:
        raise UserError("提醒内容太长了（最多500字）")
    if actor is not None and not actor.has("admin", "leader") and not only_self(specs, actor):
        raise UserError("无权限：只有后勤管理员、校领导可以提醒他人；给自己设提醒不写@对象即可，例如：提醒 明天8:00 交教案")
    due = first_due(when, now, school_days_only)
    if due <= now:
        raise UserError(f"时间已过：{fmt_moment(due, now)}。请写将来的时间，例如：明天8:00、10分钟后")
    return due


def create(
    session: Session,
    actor: Actor | None,
    when: datetime | Recurrence,
    text: str,
    specs: list[str],
    *,
    now: datetime,
    needs_receipt: bool = False,
    target_label: str = "",
    source: str = SOURCE_CHAT,
    builtin_key: str | None = None,
    school_days_only: bool = False,
    receipt_minutes: int | None = None,
) -> Reminder:
    """A new reminder. Admins and leaders may remind anyone; everyone else only themselves."""
    text = text.strip()
    due = check(actor, when, text, specs, now=now, school_days_only=school_days_only)
    rec = when if isinstance(when, Recurrence) else None
    r = Reminder(
        creator_id=actor.id if actor else None,
        text=text,
        targets=json.dumps(specs),
        target_label=target_label,
        kind=rec.kind if rec else ONCE,
        at=rec.at.isoformat() if rec else None,
        weekday=rec.weekday if rec else None,
        day=rec.day if rec else None,
        school_days_only=school_days_only,
        first_due_at=due,
        next_due_at=due,
        needs_receipt=needs_receipt,
        receipt_minutes=receipt_minutes,
        source=source,
        builtin_key=builtin_key,
        created_at=now,
    )
    session.add(r)
    session.flush()
    return r


def same_as(session: Session, actor: Actor, when: datetime | Recurrence, text: str, specs: list[str], *,
            now: datetime) -> Reminder | None:
    """This person's active reminder with the same content, targets and time (or rule), if any: setting it
    again is usually a retyped message, and two of them would remind everyone twice."""
    rec = when if isinstance(when, Recurrence) else None
    stmt = select(Reminder).where(Reminder.creator_id == actor.id, Reminder.state == ACTIVE,
                                  Reminder.text == text.strip(), Reminder.targets == json.dumps(specs),
                                  Reminder.kind == (rec.kind if rec else ONCE))
    for r in session.exec(stmt.order_by(col(Reminder.id))).all():
        if rec is None and r.first_due_at == first_due(when, now, r.school_days_only):
            return r
        if rec is not None and (r.at, r.weekday, r.day) == (rec.at.isoformat(), rec.weekday, rec.day):
            return r
    return None


def get_visible(session: Session, actor: Actor, n: int) -> Reminder:
    """A reminder its creator or an admin may manage; anything else is 未找到 (no leak)."""
    r = session.get(Reminder, n)
    if r is None or not (actor.has("admin") or r.creator_id == actor.id):
        raise NotFound(f"TX{n}")
    return r


def upcoming(session: Session, actor: Actor, limit: int = 30) -> tuple[list[Reminder], int]:
    """Active reminders, soonest first: the admin sees all (holiday-duty ones are in 值班表), others their own."""
    stmt = select(Reminder).where(col(Reminder.next_due_at).is_not(None))
    if actor.has("admin"):
        stmt = stmt.where(Reminder.source != SOURCE_DUTY)
    else:
        stmt = stmt.where(Reminder.creator_id == actor.id)
    rows = list(session.exec(stmt.order_by(col(Reminder.next_due_at), col(Reminder.id))).all())
    return rows[:limit], len(rows)


def cancel(session: Session, actor: Actor, n: int, *, now: datetime) -> Reminder:
    r = get_visible(session, actor, n)
    if r.state != ACTIVE:
        raise UserError(f"{r.ref} {STATE_ZH.get(r.state, r.state)}，无需取消。")
    r.state, r.next_due_at, r.cancelled_at, r.cancelled_by = CANCELLED, None, now, actor.id
    session.add(r)
    # Stop escalating receipts of its past occurrences too: the admin does not want to hear about it any more.
    session.execute(
        update(ReminderOccurrence)
        .where(col(ReminderOccurrence.reminder_id) == r.id, col(ReminderOccurrence.receipt_due_at).is_not(None))
        .values(receipt_due_at=None)
    )
    return r


# --------------------------------------------------------------------------------------------------------
# Receipts


@dataclass
class Ack:
    reminder: Reminder
    occurrence: ReminderOccurrence
    receipt: ReminderReceipt
    already: bool = False


def acknowledge(session: Session, actor: Actor, n: int, *, done: bool, note: str, now: datetime) -> Ack:
    """`收到 TX3` / `完成 TX3 情况`: the recipient's receipt for the latest occurrence sent to them."""
    r = session.get(Reminder, n)
    if r is None:
        raise NotFound(f"TX{n}")
    row = session.exec(
        select(ReminderReceipt, ReminderOccurrence)
        .join(ReminderOccurrence, col(ReminderOccurrence.id) == col(ReminderReceipt.occurrence_id))
        .where(ReminderOccurrence.reminder_id == n, ReminderReceipt.person_id == actor.id)
        .order_by(col(ReminderOccurrence.due_at).desc())
    ).first()
    if row is None:
        # Only its creator and its recipients learn anything about a reminder here; anyone else (an admin
        # included: 提醒列表 is where they look) gets the 未找到 of a reminder that does not exist.
        if not r.needs_receipt:
            if r.creator_id == actor.id or _targets_me(session, r, actor):
                raise UserError(f"{r.ref} 不需要回执。")
            raise NotFound(r.ref)
        if r.creator_id == actor.id or _targets_me(session, r, actor):
            if r.last_fired_at is None:
                raise UserError(f"{r.ref} 还没到提醒时间（{describe_when(r, now)}），到时再回复即可。")
            raise UserError(f"{r.ref} 没有发给您，无需回执。")
        raise NotFound(r.ref)
    receipt, occ = row
    if receipt.acked_at is not None and (not done or (receipt.how == "完成" and not note)):
        return Ack(r, occ, receipt, already=True)
    receipt.acked_at = receipt.acked_at or now
    receipt.how = "完成" if done else "收到"
    if note:
        receipt.note = note[:500]
    session.add(receipt)
    session.flush()
    if occ.receipt_due_at is not None:
        left = session.exec(
            select(ReminderReceipt.person_id).where(
                ReminderReceipt.occurrence_id == occ.id, col(ReminderReceipt.acked_at).is_(None)
            )
        ).first()
        if left is None:
            occ.receipt_due_at = None  # everyone answered: nothing to escalate
            session.add(occ)
    if done and note:
        # A finding ("3楼灭火器压力不足") is worth passing on: to whoever set the reminder, else the admins.
        who = [r.creator_id] if r.creator_id else [p.id for p in people_with_role(session, "admin")]
        text = f"【回执】{actor.name} 完成 {r.ref}「{short(r.text)}」：{note[:300]}"
        outbox.notify(session, who, "reminder", text, now=now, skip=actor.id)
    return Ack(r, occ, receipt)


def _targets_me(session: Session, r: Reminder, actor: Actor) -> bool:
    return any(pid == actor.id for pid, _ in Recipients(session).resolve(json.loads(r.targets)))


def escalate_receipts(session: Session, now: datetime, limit: int = 200) -> int:
    """Occurrences whose receipts are overdue: tell the admins who has not answered — once (escalated_at)."""
    occs = session.exec(
        select(ReminderOccurrence)
        .where(col(ReminderOccurrence.receipt_due_at) <= now)
        .order_by(col(ReminderOccurrence.receipt_due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    told = 0
    admins = [p.id for p in people_with_role(session, "admin")] if occs else []
    for occ in occs:
        pending = session.exec(
            select(Person.name)
            .join(ReminderReceipt, col(ReminderReceipt.person_id) == col(Person.id))
            .where(ReminderReceipt.occurrence_id == occ.id, col(ReminderReceipt.acked_at).is_(None))
            .order_by(col(Person.id))
        ).all()
        occ.receipt_due_at, occ.escalated_at = None, now
        session.add(occ)
        if not pending:
            continue
        r = session.get(Reminder, occ.reminder_id)
        assert r is not None
        names = "、".join(pending[:20]) + (f" 等{len(pending)}人" if len(pending) > 20 else "")
        text = (f"【回执未确认】{r.ref}「{short(r.text)}」（{fmt_moment(occ.due_at, now)}）"
                f"已过 {_minutes(occ, r)} 分钟，尚有 {len(pending)} 人未回执：{names}")
        told_ids = admins
        if r.creator_id is not None and json.loads(r.targets) == [f"person:{r.creator_id}"]:
            # A personal reminder is nobody else's business: remind its author once more instead.
            told_ids = [r.creator_id]
            text = (f"【回执未确认】{r.ref}「{short(r.text)}」（{fmt_moment(occ.due_at, now)}）"
                    f"您还没有回执，办完请回复「收到 {r.ref}」")
        outbox.notify(session, told_ids, "reminder", text, now=now, dedup=f"tx{r.id}:{occ.due_at:%Y%m%d%H%M%S}:esc",
                      data={"reminder": r.id, "escalation": True})
        told += 1
    return told


def _minutes(occ: ReminderOccurrence, r: Reminder) -> int:
    return int((occ.escalated_at - occ.fired_at).total_seconds() // 60) if occ.escalated_at else 0


def short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------------------
# Built-in and duty reminders: kept in step with their source by a stable key


def upsert_keyed(
    session: Session,
    key: str,
    when: datetime | Recurrence,
    text: str,
    specs: list[str],
    *,
    now: datetime,
    source: str,
    target_label: str = "",
    needs_receipt: bool = False,
    school_days_only: bool = False,
) -> tuple[Reminder | None, str]:
    """Create or update the reminder with builtin_key `key`. Returns (reminder, "created"|"updated"|"kept"|"past").

    One the admin cancelled stays cancelled (editable by the admin); one whose time has passed is not created.
    """
    existing = session.exec(select(Reminder).where(Reminder.builtin_key == key)).first()
    due = first_due(when, now, school_days_only)
    rec = when if isinstance(when, Recurrence) else None
    if existing is None:
        if due <= now:
            return None, "past"
        r = create(session, None, when, text, specs, now=now, needs_receipt=needs_receipt, target_label=target_label,
                   source=source, builtin_key=key, school_days_only=school_days_only)
        return r, "created"
    if existing.state == CANCELLED:
        return existing, "kept"
    changed = (existing.text != text or existing.targets != json.dumps(specs)
               or existing.needs_receipt != needs_receipt or existing.kind != (rec.kind if rec else ONCE)
               or existing.at != (rec.at.isoformat() if rec else None)
               or existing.weekday != (rec.weekday if rec else None) or existing.day != (rec.day if rec else None)
               or existing.school_days_only != school_days_only
               or (rec is None and existing.first_due_at != due))
    if not changed:
        return existing, "kept"
    existing.text, existing.targets, existing.target_label = text, json.dumps(specs), target_label
    existing.needs_receipt, existing.school_days_only = needs_receipt, school_days_only
    existing.kind = rec.kind if rec else ONCE
    existing.at = rec.at.isoformat() if rec else None
    existing.weekday, existing.day = (rec.weekday, rec.day) if rec else (None, None)
    existing.first_due_at = due
    if due > now:
        existing.next_due_at, existing.state = due, ACTIVE
    elif existing.state == ACTIVE and rec is None:
        existing.next_due_at, existing.state = None, DONE
    session.add(existing)
    return existing, "updated"


def retire_keyed(session: Session, prefix: str, keep: set[str], *, now: datetime) -> int:
    """Cancel active keyed reminders under `prefix` that are no longer wanted (an event removed from the config)."""
    rows = session.exec(
        select(Reminder).where(col(Reminder.builtin_key).startswith(prefix), Reminder.state == ACTIVE)
    ).all()
    n = 0
    for r in rows:
        if r.builtin_key not in keep:
            r.state, r.next_due_at, r.cancelled_at = CANCELLED, None, now
            session.add(r)
            n += 1
    return n


def role_label(spec: str) -> str:
    if spec == "all":
        return "全体"
    if spec.startswith("role:"):
        return ROLES.get(spec[5:], spec[5:])
    return spec

"""The rules of student leave slips (请假, QJ): request, head-teacher approval, the gate (exit / return) and alerts.

All rules live here; handlers/leave.py parses chat text, jobs/leave.py runs the two timed alerts; students and
classes are found through `storage.roster`. A slip moves through a table of allowed transitions,
and every move is a conditional UPDATE (``WHERE state = <the state we saw>``), so two people acting on one
slip at the same moment — two guards sending ``出校 QJ5`` — change it once; the loser is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from storage.errors import NotFound, UserError
from storage.kernel import StateMachine, Transition, fmt_time, mark_once
from storage.leave.models import (
    APPROVED,
    BACK,
    MAX_REASON,
    OUT,
    PENDING,
    PREFIX,
    REJECTED,
    LeaveEvent,
    LeaveGateEvent,
    LeaveSlip,
)
from storage.outbox import notify
from storage.people import (
    Actor,
    ParentLink,
    Person,
    SchoolClass,
    Student,
    children_of,
    classes_headed_by,
    name_of,
    people_with_role,
)
from storage.roster import find_student

__all__ = ["DECIDERS", "EXIT_EARLY", "MACHINE", "NO_RETURN_WORD", "OVERDUE_AFTER", "REPUSH_BEFORE", "REPUSH_GRACE",
           "TRANSITIONS", "admin_ids", "alert_overdue", "approvers", "bound_parents", "check_request", "class_of",
           "decide", "fmt_span", "gate_check", "gate_events", "get_slip", "head_teacher_id", "history", "is_head_of",
           "list_line", "my_slips", "overlapping", "pending_for", "record_exit", "record_return", "ref",
           "repush_pending", "request_leave", "slip_span", "slip_to_check", "status_text", "student_for_request",
           "student_of", "today_for", "who"]

# Anything not listed is refused; "expired" is not a state but a matter of time (an approved slip whose window
# has ended), checked by the gate rules below. Each stamp is set once: no second exit on one slip, whatever the state.
TRANSITIONS: dict[str, Transition] = {
    "approve": Transition("批准", frozenset({PENDING}), APPROVED, "decided_at"),
    "reject": Transition("驳回", frozenset({PENDING}), REJECTED, "decided_at"),
    "exit": Transition("出校", frozenset({APPROVED}), OUT, "exited_at"),
    "return": Transition("登记返校", frozenset({OUT}), BACK, "returned_at"),
}

EXIT_EARLY = timedelta(minutes=30)  # the gate opens 30 min before the window starts
OVERDUE_AFTER = timedelta(minutes=30)  # not back 30 min after the window ends → the head teacher is told
REPUSH_BEFORE = timedelta(minutes=30)  # still pending when the gate would open → pushed again
REPUSH_GRACE = timedelta(minutes=10)  # …but not within minutes of the first push (a slip made at the last minute)
NO_RETURN_WORD = "不返校"
DECIDERS = ("admin", "leader")  # may decide as the head teacher's deputy


# --------------------------------------------------------------------------------------------------------
# Formatting shared by replies and pushes


def ref(slip: LeaveSlip) -> str:
    return slip.ref


def fmt_span(start: datetime, end: datetime) -> str:
    if start.date() == end.date():
        return f"{fmt_time(start)}-{end:%H:%M}"
    return f"{fmt_time(start)} 至 {fmt_time(end)}"


_DECIDED = "已经批准，无需再审批。"
MACHINE = StateMachine(TRANSITIONS, {
    ("approve", REJECTED): "已被驳回，无需再审批。",
    ("reject", REJECTED): "已被驳回，无需再审批。",
    **{(action, state): _DECIDED for action in ("approve", "reject") for state in (APPROVED, OUT, BACK)},
    ("return", BACK): lambda slip: f"已于 {fmt_time(slip.returned_at)} 登记返校，无需重复登记。",
    **{("return", state): "尚未出校。" for state in (PENDING, APPROVED, REJECTED)},
})


def slip_span(slip: LeaveSlip) -> str:
    return fmt_span(slip.starts_at, slip.ends_at)


def student_of(session: Session, slip: LeaveSlip) -> Student:
    student = session.get(Student, slip.student_id)
    assert student is not None
    return student


def class_of(session: Session, slip: LeaveSlip) -> SchoolClass:
    klass = session.get(SchoolClass, slip.class_id)
    assert klass is not None
    return klass


def who(session: Session, slip: LeaveSlip) -> str:
    """李明（七(3)班）"""
    return f"{student_of(session, slip).name}（{class_of(session, slip).name}）"


# --------------------------------------------------------------------------------------------------------
# People around a slip


def bound_parents(session: Session, student_id: int) -> list[int]:
    stmt = (
        select(Person.id)
        .join(ParentLink, col(ParentLink.parent_id) == col(Person.id))
        .where(ParentLink.student_id == student_id, col(Person.openid).is_not(None), Person.active == True)
        .order_by(col(Person.id))
    )
    return [pid for pid in session.exec(stmt).all() if pid is not None]


def head_teacher_id(session: Session, class_id: int) -> int | None:
    klass = session.get(SchoolClass, class_id)
    return klass.head_teacher_id if klass else None


def approvers(session: Session, slip: LeaveSlip) -> list[int]:
    """Who is asked to decide: the class's head teacher, or the admins when the class has none."""
    head = head_teacher_id(session, slip.class_id)
    if head is not None:
        return [head]
    return [p.id for p in people_with_role(session, "admin") if p.id is not None]


def admin_ids(session: Session) -> list[int]:
    return [p.id for p in people_with_role(session, "admin") if p.id is not None]


def is_head_of(session: Session, actor: Actor, class_id: int) -> bool:
    return head_teacher_id(session, class_id) == actor.id


def _history(session: Session, slip: LeaveSlip, action: str, actor_id: int | None, now: datetime,
             note: str | None = None) -> None:
    assert slip.id is not None
    session.add(LeaveEvent(slip_id=slip.id, at=now, actor_id=actor_id, action=action,
                           note=note[:MAX_REASON] if note else None))


def history(session: Session, slip_id: int) -> list[LeaveEvent]:
    stmt = select(LeaveEvent).where(LeaveEvent.slip_id == slip_id).order_by(col(LeaveEvent.id))
    return list(session.exec(stmt).all())


def gate_events(session: Session, slip_id: int) -> list[LeaveGateEvent]:
    stmt = select(LeaveGateEvent).where(LeaveGateEvent.slip_id == slip_id).order_by(col(LeaveGateEvent.id))
    return list(session.exec(stmt).all())


# --------------------------------------------------------------------------------------------------------
# Students and classes


def student_for_request(session: Session, actor: Actor, name: str | None, klass: str | None) -> Student:
    """Which student a 请假 is for. Staff may ask for any student; a parent only for their own children,
    and a parent with exactly one child may leave the name out."""
    staff = actor.has("teacher", "head_teacher")
    kids = children_of(session, actor.id) if actor.has("parent") else []
    if name is None:
        if not staff and len(kids) == 1:
            return kids[0]
        if not staff and len(kids) > 1:
            names = "、".join(k.name for k in kids)
            raise UserError(f"您绑定了多个孩子（{names}），请写明姓名，例如：请假 {kids[0].name} 明天全天 发烧")
        raise UserError("请写明学生姓名，例如：请假 李明 今天14:00-16:00 看病")
    if staff:
        return find_student(session, name, klass)
    if not any(k.name == name or k.student_no == name for k in kids):
        mine = "、".join(k.name for k in kids) or "无"
        raise UserError(f"家长只能为自己的孩子请假（您绑定的孩子：{mine}）。如有误，请联系后勤管理员。")
    return find_student(session, name, klass, within=kids, example=f"请假 七(3)班 {name} 明天全天 发烧")


# --------------------------------------------------------------------------------------------------------
# Requesting


def check_request(session: Session, actor: Actor, student: Student, starts_at: datetime, ends_at: datetime,
                  reason: str, *, now: datetime) -> str:
    """Whether this person may ask for this slip, with the refusal as a UserError; the reason, trimmed."""
    if not actor.has("teacher", "head_teacher", "parent"):
        raise UserError("无权限：请假仅限教师、班主任和家长使用。")
    parent_only = actor.has("parent") and not actor.has("teacher", "head_teacher")
    if parent_only and student.id not in {k.id for k in children_of(session, actor.id)}:
        raise UserError("家长只能为自己的孩子请假。")
    reason = reason.strip()
    if not reason:
        raise UserError(f"请写明事由，例如：请假 {student.name} 今天14:00-16:00 看病")
    if len(reason) > MAX_REASON:
        raise UserError(f"事由太长了（最多{MAX_REASON}字）。")
    if ends_at <= starts_at:
        raise UserError(f"结束时间早于开始时间：{fmt_span(starts_at, ends_at)}，请检查。")
    if ends_at <= now:
        raise UserError(f"请假时间 {fmt_span(starts_at, ends_at)} 已经过去，不能再请假。")
    return reason


def request_leave(
    session: Session,
    actor: Actor,
    student: Student,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    *,
    now: datetime,
    expects_return: bool | None = None,
) -> LeaveSlip:
    """A new slip. From the class's head teacher it is approved at once; otherwise it waits for them."""
    reason = check_request(session, actor, student, starts_at, ends_at, reason, now=now)
    if expects_return is None:
        expects_return = NO_RETURN_WORD not in reason
    assert student.id is not None
    slip = LeaveSlip(
        student_id=student.id, class_id=student.class_id, requester_id=actor.id, starts_at=starts_at,
        ends_at=ends_at, reason=reason, expects_return=expects_return, state=PENDING, created_at=now,
    )
    session.add(slip)
    session.flush()
    _history(session, slip, "申请", actor.id, now, reason)
    if is_head_of(session, actor, slip.class_id):
        slip.state, slip.decided_by_id, slip.decided_at = APPROVED, actor.id, now
        session.add(slip)
        _history(session, slip, "批准", actor.id, now, "班主任申请，自动批准")
        parents = [p for p in bound_parents(session, slip.student_id) if p != actor.id]
        notify(session, parents, "leave",
               f"您的孩子{who(session, slip)}的请假已批准（班主任 {actor.name}）：{ref(slip)}，"
               f"{slip_span(slip)}，事由：{reason}。出校、返校时会再通知您。",
               now=now, data=_data(slip))
    else:
        notify(session, approvers(session, slip), "leave", _approval_request(session, slip, actor.name),
               now=now, data=_data(slip))
    session.flush()
    return slip


def _data(slip: LeaveSlip) -> dict[str, Any]:
    return {"ref": ref(slip), "state": slip.state}


def _approval_request(session: Session, slip: LeaveSlip, requester: str) -> str:
    no_head = "（本班未设置班主任，请管理员代为审批）" if head_teacher_id(session, slip.class_id) is None else ""
    back = "" if slip.expects_return else "（不返校）"
    return (
        f"请假待审批 {ref(slip)}：{who(session, slip)}，{slip_span(slip)}{back}，事由：{slip.reason}，"
        f"申请人：{requester}。{no_head}\n"
        f"同意请回复：批准 {ref(slip)}\n不同意请回复：驳回 {ref(slip)} 理由"
    )


# --------------------------------------------------------------------------------------------------------
# Transitions


def _gate_refusal(session: Session, slip: LeaveSlip, now: datetime) -> str:
    """Why the student may not go out on this slip now: the gate's verdict, worded as 核验 words it."""
    return f"不可出校：{ref(slip)} {who(session, slip)}，{gate_check(slip, now)[1]}"


def get_slip(session: Session, n: int) -> LeaveSlip:
    slip = session.get(LeaveSlip, n)
    if slip is None:
        raise NotFound(f"{PREFIX}{n}")
    return slip


def decide(session: Session, actor: Actor, n: int, approve: bool, note: str | None = None, *,
           now: datetime) -> LeaveSlip:
    """批准 / 驳回 by the class's head teacher, or by an admin or leader as deputy (recorded as such)."""
    slip = get_slip(session, n)
    if is_head_of(session, actor, slip.class_id):
        deputy = False
    elif actor.has(*DECIDERS):
        deputy = True
    else:
        raise NotFound(ref(slip))  # a person who may not see the slip learns nothing about it
    note = (note or "").strip()
    if not approve and not note:
        raise UserError(f"请写明驳回理由，例如：驳回 {ref(slip)} 当天有考试")
    if len(note) > MAX_REASON:
        raise UserError(f"理由太长了（最多{MAX_REASON}字）。")
    if slip.state == PENDING and now >= slip.ends_at:
        raise UserError(f"{ref(slip)} 的请假时间（{slip_span(slip)}）已经结束，无需再审批。")
    action = "approve" if approve else "reject"
    MACHINE.advance_or_refuse(session, slip, action, now, decided_by_id=actor.id, deputy=deputy,
                              reject_reason=None if approve else note)
    verb = "批准" if approve else "驳回"
    _history(session, slip, ("代" if deputy else "") + verb, actor.id, now, note or None)
    decider = f"{actor.name} 代班主任审批" if deputy else f"班主任 {actor.name}"
    if approve:
        text = f"{ref(slip)} {who(session, slip)} {slip_span(slip)} 的请假已批准（{decider}）。"
    else:
        text = f"{ref(slip)} {who(session, slip)} {slip_span(slip)} 的请假被驳回（{decider}），理由：{note}"
    told = [slip.requester_id, *bound_parents(session, slip.student_id)]
    if deputy:
        told.append(head_teacher_id(session, slip.class_id))  # type: ignore[arg-type]
    notify(session, [p for p in told if p != actor.id], "leave", text, now=now, data=_data(slip))
    return slip


# --------------------------------------------------------------------------------------------------------
# The gate


def gate_check(slip: LeaveSlip, now: datetime) -> tuple[bool, str]:
    """(may the student go out on this slip now, why / why not) — the one place the gate rules live."""
    opens = slip.starts_at - EXIT_EARLY
    if slip.state == REJECTED:
        why = f"请假已被驳回（{slip.reject_reason}）" if slip.reject_reason else "请假已被驳回"
        return False, why
    if slip.state == PENDING:
        if now >= slip.ends_at:
            return False, "请假未获批准且已过期"
        return False, "请假待班主任审批，尚未批准"
    if slip.state == OUT or slip.exited_at is not None:
        if slip.state == BACK and slip.returned_at:
            return False, f"已于 {fmt_time(slip.exited_at or slip.returned_at)} 出校、{fmt_time(slip.returned_at)} 返校，本假条已用过"
        return False, f"已于 {fmt_time(slip.exited_at or now)} 出校，同一假条不能再次出校"
    if slip.state != APPROVED:  # pragma: no cover - every state is handled
        return False, f"状态为{slip.state}"
    if now >= slip.ends_at:
        return False, f"请假已过期（{fmt_time(slip.ends_at)} 结束）"
    if now < opens:
        return False, f"未到时间，{fmt_time(opens)} 起可出校（请假 {slip_span(slip)}）"
    return True, f"已批准，请假 {slip_span(slip)}"


def slip_to_check(session: Session, student: Student, now: datetime) -> LeaveSlip | None:
    """核验 <学生姓名>: the slip that matters now — one that lets them out, else one they are out on, else the
    nearest of today's; None when they have none."""
    day0 = datetime.combine(now.date(), datetime.min.time())
    stmt = (
        select(LeaveSlip)
        .where(LeaveSlip.student_id == student.id, col(LeaveSlip.ends_at) >= day0 - timedelta(days=1),
               col(LeaveSlip.starts_at) < day0 + timedelta(days=2))
        .order_by(col(LeaveSlip.starts_at), col(LeaveSlip.id))
    )
    slips = list(session.exec(stmt).all())
    for slip in slips:
        if gate_check(slip, now)[0]:
            return slip
    for slip in slips:
        if slip.state == OUT:
            return slip
    today = [s for s in slips if s.starts_at < day0 + timedelta(days=1) and s.ends_at >= day0]
    candidates = today or [s for s in slips if s.starts_at >= now]
    if candidates:
        return min(candidates, key=lambda s: abs((s.starts_at - now).total_seconds()))
    return None


def record_exit(session: Session, guard: Actor, n: int, *, now: datetime) -> LeaveSlip:
    """出校 QJ5: only an approved slip, from 30 min before its start until its end, and only once."""
    slip = get_slip(session, n)
    if not gate_check(slip, now)[0] or not MACHINE.advance(session, slip, "exit", now):
        raise UserError(_gate_refusal(session, slip, now))  # the other guard's exit, when two acted at once
    assert slip.id is not None
    session.add(LeaveGateEvent(slip_id=slip.id, kind="exit", guard_id=guard.id, at=now))
    _history(session, slip, "出校", guard.id, now)
    session.flush()  # the unique (slip, kind) constraint is checked here, inside the same transaction
    back = f"，请假至 {fmt_time(slip.ends_at)}" if slip.expects_return else "（不返校）"
    text = f"{who(session, slip)} 已于 {fmt_time(now)} 出校（{ref(slip)}，门卫 {guard.name}）{back}。"
    notify(session, [*bound_parents(session, slip.student_id), slip.requester_id], "leave", text,
           now=now, data=_data(slip))
    return slip


def record_return(session: Session, guard: Actor, n: int, *, now: datetime) -> LeaveSlip:
    """返校 QJ5: only after an exit on this slip, once."""
    slip = get_slip(session, n)
    MACHINE.advance_or_refuse(session, slip, "return", now)
    assert slip.id is not None
    session.add(LeaveGateEvent(slip_id=slip.id, kind="return", guard_id=guard.id, at=now))
    _history(session, slip, "返校", guard.id, now)
    session.flush()
    late = "，已超过请假结束时间" if now > slip.ends_at else ""
    text = f"{who(session, slip)} 已于 {fmt_time(now)} 返校（{ref(slip)}，门卫 {guard.name}）{late}。"
    told = [*bound_parents(session, slip.student_id), slip.requester_id]
    if slip.overdue_notified_at is not None:
        told.append(head_teacher_id(session, slip.class_id))  # type: ignore[arg-type]  # they were alerted
    notify(session, told, "leave", text, now=now, data=_data(slip))
    return slip


# --------------------------------------------------------------------------------------------------------
# Lists


def status_text(slip: LeaveSlip, now: datetime) -> str:
    """The slip's gate status for lists: 待审批, 已批准·未出校, 已出校 13:40·逾期未返 …"""
    if slip.state == PENDING:
        return "待审批（已过期）" if now >= slip.ends_at else "待审批"
    if slip.state == REJECTED:
        return "已驳回"
    if slip.state == APPROVED:
        return "已批准·已过期未出校" if now >= slip.ends_at else "已批准·未出校"
    out = f"已出校 {slip.exited_at:%H:%M}" if slip.exited_at else "已出校"
    if slip.state == BACK:
        return f"{out}·已返校 {slip.returned_at:%H:%M}" if slip.returned_at else f"{out}·已返校"
    if not slip.expects_return:
        return f"{out}（不返校）"
    if now >= slip.ends_at + OVERDUE_AFTER:
        return f"{out}·逾期未返校"
    return f"{out}·未返校"


def overlapping(session: Session, student_id: int, starts_at: datetime, ends_at: datetime) -> list[LeaveSlip]:
    """The student's live slips (not rejected, not over) whose window overlaps this one: a second slip for the
    same hours is usually the same request sent twice (by the parent and the teacher, or a retyped message)."""
    stmt = select(LeaveSlip).where(LeaveSlip.student_id == student_id, col(LeaveSlip.state) != REJECTED,
                                   col(LeaveSlip.state) != BACK, col(LeaveSlip.starts_at) < ends_at,
                                   col(LeaveSlip.ends_at) > starts_at)
    return list(session.exec(stmt.order_by(col(LeaveSlip.starts_at), col(LeaveSlip.id))).all())


def my_slips(session: Session, actor: Actor, limit: int = 10) -> list[LeaveSlip]:
    """我的请假: the slips of a parent's children and the slips this person asked for, newest first."""
    kids = [k.id for k in children_of(session, actor.id) if k.id is not None] if actor.has("parent") else []
    stmt = select(LeaveSlip).where(or_(col(LeaveSlip.requester_id) == actor.id,
                                       col(LeaveSlip.student_id).in_(kids or [-1])))
    return list(session.exec(stmt.order_by(col(LeaveSlip.starts_at).desc(), col(LeaveSlip.id).desc())
                             .limit(limit)).all())


def list_line(session: Session, slip: LeaveSlip, now: datetime) -> str:
    return f"{ref(slip)} {who(session, slip)} {slip_span(slip)} {status_text(slip, now)}"


def _class_scope(session: Session, actor: Actor, everyone: tuple[str, ...]) -> list[int] | None:
    """None: all classes (the roles in `everyone`); else the ids of the classes this person heads."""
    if actor.has(*everyone):
        return None
    return [c.id for c in classes_headed_by(session, actor.id) if c.id is not None]


def pending_for(session: Session, actor: Actor, now: datetime) -> list[LeaveSlip]:
    """待审批: my classes' pending slips (all of them for admins and leaders, the deputies)."""
    scope = _class_scope(session, actor, DECIDERS)
    stmt = select(LeaveSlip).where(LeaveSlip.state == PENDING, col(LeaveSlip.ends_at) > now)
    if scope is not None:
        stmt = stmt.where(col(LeaveSlip.class_id).in_(scope or [-1]))
    return list(session.exec(stmt.order_by(col(LeaveSlip.starts_at), col(LeaveSlip.id))).all())


def today_for(session: Session, actor: Actor, now: datetime) -> list[LeaveSlip]:
    """今日请假: slips whose window touches today (guards, admins, leaders: all; head teachers: their classes)."""
    day0 = datetime.combine(now.date(), datetime.min.time())
    scope = _class_scope(session, actor, ("guard", "admin", "leader"))
    stmt = select(LeaveSlip).where(col(LeaveSlip.starts_at) < day0 + timedelta(days=1),
                                   col(LeaveSlip.ends_at) >= day0)
    if scope is not None:
        stmt = stmt.where(col(LeaveSlip.class_id).in_(scope or [-1]))
    return list(session.exec(stmt.order_by(col(LeaveSlip.starts_at), col(LeaveSlip.id))).all())


# --------------------------------------------------------------------------------------------------------
# Timed alerts (called by jobs/leave.py; idempotent: each alert is claimed by a conditional UPDATE)


def repush_pending(session: Session, *, now: datetime) -> int:
    """A slip still pending when its gate would open (30 min before the start) is pushed again, once, to the
    head teacher and to the admins."""
    stmt = select(LeaveSlip).where(
        LeaveSlip.state == PENDING, col(LeaveSlip.repushed_at).is_(None),
        col(LeaveSlip.starts_at) <= now + REPUSH_BEFORE, col(LeaveSlip.ends_at) > now,
        col(LeaveSlip.created_at) <= now - REPUSH_GRACE,
    )
    sent = 0
    for slip in session.exec(stmt.order_by(col(LeaveSlip.id))).all():
        if not mark_once(session, slip, "repushed_at", now, state=PENDING):
            continue
        requester = name_of(session, slip.requester_id)
        text = (f"【催批】{ref(slip)} {who(session, slip)} 的请假将于 {fmt_time(slip.starts_at)} 开始，仍未审批。"
                f"申请人：{requester}，事由：{slip.reason}。\n"
                f"同意请回复：批准 {ref(slip)}\n不同意请回复：驳回 {ref(slip)} 理由\n（管理员、校领导可代为审批）")
        notify(session, [*approvers(session, slip), *admin_ids(session)], "leave", text, now=now,
               data=_data(slip))
        _history(session, slip, "催批", None, now)
        sent += 1
    return sent


def alert_overdue(session: Session, *, now: datetime) -> int:
    """A student out on a slip that expects a return, not back 30 min after the window ends: the head
    teacher (or the admins, when the class has none) is told, once."""
    stmt = select(LeaveSlip).where(
        LeaveSlip.state == OUT, LeaveSlip.expects_return == True,
        col(LeaveSlip.returned_at).is_(None), col(LeaveSlip.overdue_notified_at).is_(None),
        col(LeaveSlip.ends_at) <= now - OVERDUE_AFTER,
    )
    sent = 0
    for slip in session.exec(stmt.order_by(col(LeaveSlip.id))).all():
        if not mark_once(session, slip, "overdue_notified_at", now, state=OUT):
            continue
        text = (f"【未按时返校】{who(session, slip)}（{ref(slip)}）请假至 {fmt_time(slip.ends_at)}，"
                f"已超过30分钟仍未返校登记（{fmt_time(slip.exited_at or slip.starts_at)} 出校）。请联系家长核实。")
        notify(session, approvers(session, slip), "leave", text, now=now, data=_data(slip))
        _history(session, slip, "逾期提醒", None, now)
        sent += 1
    return sent

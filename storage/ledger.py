"""The console's views across domains: the dashboard, and the registry of ledgers (台账) the export page offers.

Each domain's own lists and exports are in its package (`storage/<domain>/queries.py`), on the shared pieces of
`storage.listing`; this module puts them together. It also holds the lists of the two shared modules that have
no package of their own: people (with their invites) and the outbox. It only reads: the console's few writes go
through the owning service (`people.unbind`, `people.revoke_invite`, `outbox.retry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from storage import duty, leave, repair, visitor
from storage import outbox as ob
from storage import reminder as rem
from storage.errors import NotFound, UserError
from storage.listing import EXPORT_LIMIT, Filters, Page, Sheet, has_table, in_range, paged, xl_time
from storage.people import Actor, Invite, ParentLink, Person, PersonRole, SchoolClass, Student, role_names


# --- the dashboard -----------------------------------------------------------------------------------------


@dataclass
class Dashboard:
    now: datetime
    repairs_by_state: dict[str, int] = field(default_factory=dict)
    repairs_by_age: dict[str, int] = field(default_factory=dict)
    oldest_repairs: list[repair.RepairRow] = field(default_factory=list)
    visitors_in: list[visitor.VisitorEntry] = field(default_factory=list)
    pending_leave: list[leave.LeaveRow] = field(default_factory=list)
    pending_leave_total: int = 0
    duty: tuple[Any, Person] | None = None
    next_reminders: list[rem.ReminderRow] = field(default_factory=list)
    outbox_failed: int = 0
    outbox_recent_failures: list[OutboxRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # domains whose tables are not there yet


def dashboard(session: Session, now: datetime) -> Dashboard:
    d = Dashboard(now=now)
    if has_table(session, "repairticket"):
        d.repairs_by_state = repair.open_by_state(session)
        d.repairs_by_age = repair.open_by_age(session, now)
        d.oldest_repairs = repair.oldest_open(session)
    else:
        d.missing.append("报修")
    if has_table(session, "visitorentry"):
        d.visitors_in = visitor.on_campus(session)
    else:
        d.missing.append("访客")
    if has_table(session, "leaveslip"):
        d.pending_leave, d.pending_leave_total = leave.pending_rows(session, now)
    else:
        d.missing.append("请假")
    if has_table(session, "dutyrota"):
        d.duty = duty.on_day(session, now.date())
    else:
        d.missing.append("值班")
    if has_table(session, "reminder"):
        d.next_reminders = rem.next_reminders(session, now)
    else:
        d.missing.append("提醒")
    d.outbox_failed = int(session.exec(select(func.count()).select_from(ob.OutboxMessage)
                                       .where(ob.OutboxMessage.state == ob.FAILED)).one())
    d.outbox_recent_failures = outbox_rows(session, Filters(state=ob.FAILED)).items[:5]
    return d


# --- people and invites ------------------------------------------------------------------------------------


@dataclass
class PersonRow:
    person: Person
    roles: frozenset[str]
    roles_text: str
    invite: Invite | None  # the newest one
    invite_state: str
    classes: list[str]
    children: list[str]
    code: str = ""  # the newest invite's code, only for a viewer who may hand it out (an admin)

    @property
    def bound_state(self) -> str:
        if not self.person.active:
            return "已停用"
        if not self.person.openid:
            return "未绑定"
        return "已绑定" if self.person.subscribed else "已取消关注"


def invite_state(inv: Invite | None, now: datetime) -> str:
    if inv is None:
        return ""
    if inv.revoked:
        return "已作废"
    if inv.used_at is not None:
        return "已使用"
    if inv.expires_at < now:
        return "已过期"
    return "有效"


def people_list(session: Session, f: Filters, now: datetime, viewer: Actor | None = None) -> list[PersonRow]:
    """The people ledger. Invite codes only for an admin `viewer`: whoever reads an unused code can bind it
    and become that person (a leader reading an admin's code would become admin)."""
    show_codes = viewer is not None and viewer.has("admin")
    stmt = select(Person)
    if f.like:
        stmt = stmt.where(or_(col(Person.name).ilike(f.like, escape="\\"), col(Person.phone).ilike(f.like, escape="\\")))
    if f.kind:
        stmt = stmt.join(PersonRole, col(PersonRole.person_id) == col(Person.id)).where(PersonRole.role == f.kind)
    if f.state == "bound":
        stmt = stmt.where(col(Person.openid).is_not(None))
    elif f.state == "unbound":
        stmt = stmt.where(col(Person.openid).is_(None))
    people_ = list(session.exec(stmt.order_by(col(Person.id))).all())
    ids = [p.id for p in people_]
    roles: dict[int, set[str]] = {}
    for pid, role in session.exec(select(PersonRole.person_id, PersonRole.role)
                                  .where(col(PersonRole.person_id).in_(ids or [-1]))).all():
        roles.setdefault(pid, set()).add(role)
    invites: dict[int, Invite] = {}
    for inv in session.exec(select(Invite).where(col(Invite.person_id).in_(ids or [-1])).order_by(col(Invite.id))).all():
        invites[inv.person_id] = inv  # the newest wins
    classes: dict[int, list[str]] = {}
    for k in session.exec(select(SchoolClass).where(col(SchoolClass.head_teacher_id).in_(ids or [-1]))).all():
        classes.setdefault(k.head_teacher_id, []).append(k.name)  # type: ignore[arg-type]
    children: dict[int, list[str]] = {}
    for pid, sname, sno in session.exec(
        select(ParentLink.parent_id, Student.name, Student.student_no)
        .join(Student, col(Student.id) == col(ParentLink.student_id))
        .where(col(ParentLink.parent_id).in_(ids or [-1]))
    ).all():
        children.setdefault(pid, []).append(f"{sname}（{sno}）")
    out = []
    for p in people_:
        assert p.id is not None
        rs = frozenset(roles.get(p.id, set()))
        newest = invites.get(p.id)
        out.append(PersonRow(p, rs, role_names(rs), newest, invite_state(newest, now), classes.get(p.id, []),
                             children.get(p.id, []), newest.code if newest and show_codes else ""))
    return out


def export_people(session: Session, f: Filters, now: datetime | None = None, **_: Any) -> Sheet:
    at = now or datetime.now()
    out = [[p.person.id, p.person.name, p.roles_text, "、".join(p.classes), "、".join(p.children),
            p.person.categories or "", p.bound_state, xl_time(p.person.bound_at), p.invite_state,
            xl_time(p.invite.expires_at) if p.invite else "", xl_time(p.person.created_at)]
           for p in people_list(session, Filters(q=f.q, kind=f.kind, state=f.state), at)]
    return Sheet("人员名册", ["编号", "姓名", "角色", "班主任班级", "子女", "维修类别", "绑定状态", "绑定时间", "邀请码状态",
                          "邀请码有效期至", "创建时间"], out, [6, 10, 18, 12, 16, 10, 10, 17, 10, 17, 17])


# --- outbox ------------------------------------------------------------------------------------------------


@dataclass
class OutboxRow:
    msg: ob.OutboxMessage
    person: str

    @property
    def state_zh(self) -> str:
        return ob.STATES_ZH.get(self.msg.state, self.msg.state)


def _outbox_stmt(f: Filters) -> Any:
    stmt = select(ob.OutboxMessage, Person.name).join(Person, col(Person.id) == col(ob.OutboxMessage.person_id),
                                                       isouter=True)
    if f.state:
        stmt = stmt.where(ob.OutboxMessage.state == f.state)
    if f.kind:
        stmt = stmt.where(ob.OutboxMessage.kind == f.kind)
    if f.like:
        stmt = stmt.where(or_(col(ob.OutboxMessage.text).ilike(f.like, escape="\\"),
                              col(Person.name).ilike(f.like, escape="\\"),
                              col(ob.OutboxMessage.last_error).ilike(f.like, escape="\\")))
    stmt = stmt.where(*in_range(col(ob.OutboxMessage.created_at), f))
    return stmt.order_by(col(ob.OutboxMessage.id).desc())


def outbox_rows(session: Session, f: Filters, page: int = 1) -> Page[OutboxRow]:
    rows, total = paged(session, _outbox_stmt(f), page)
    return Page([OutboxRow(m, n or "") for m, n in rows], total, max(1, page))


OUTBOX_KINDS = {"repair": "报修", "visitor": "访客", "leave": "请假", "reminder": "提醒", "duty": "值班",
                "reply": "回复", "system": "系统", "menu_tag": "菜单标签"}


def export_outbox(session: Session, f: Filters, **_: Any) -> Sheet:
    rows = session.exec(_outbox_stmt(f).order_by(None).order_by(col(ob.OutboxMessage.id)).limit(EXPORT_LIMIT)).all()
    out = [[m.id, xl_time(m.created_at), name or (m.openid or ""), OUTBOX_KINDS.get(m.kind, m.kind), m.text,
            ob.STATES_ZH.get(m.state, m.state), m.channel or "", m.attempts, m.errcode if m.errcode is not None else "",
            m.last_error or "", xl_time(m.sent_at), m.delivery_status or ""] for m, name in rows]
    return Sheet("消息发送记录", ["编号", "创建时间", "接收人", "类型", "内容", "状态", "渠道", "尝试次数", "错误码", "错误信息",
                              "发送时间", "送达状态"], out, [7, 17, 10, 7, 40, 8, 9, 8, 8, 24, 17, 10])


# --- the ledgers and their exports ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    key: str
    title: str
    table: str  # the table that must exist
    export: Callable[..., Sheet]
    dated: bool = True  # narrowed by a date range


LEDGERS: dict[str, Ledger] = {
    lg.key: lg
    for lg in (
        Ledger("repairs", "报修台账", "repairticket", repair.export_repairs),
        Ledger("visitors", "访客台账", "visitorentry", visitor.export_visitors),
        Ledger("leave", "请假台账", "leaveslip", leave.export_leave),
        Ledger("reminders", "提醒发送台账", "reminderoccurrence", rem.export_reminders),
        Ledger("duty", "节假日行政值日", "dutyrota", duty.export_duty),
        Ledger("outbox", "消息发送记录", "outboxmessage", export_outbox),
        Ledger("people", "人员名册", "person", export_people, dated=False),
        Ledger("blacklist", "访客黑名单", "visitorblacklist", visitor.export_blacklist, dated=False),
    )
}


def export(session: Session, key: str, f: Filters, now: datetime, secret_key: str | None = None) -> Sheet:
    ledger = LEDGERS.get(key)
    if ledger is None:
        raise NotFound(key)
    if not has_table(session, ledger.table):
        raise UserError(f"{ledger.title}尚未启用（数据库未迁移）")
    return ledger.export(session, f, now=now, secret_key=secret_key)


def export_defaults(session: Session, today: date) -> dict[str, tuple[date, date]]:
    """The date range each dated ledger's export starts with: what its page shows by default. The ledgers
    of what happened: this month so far; the duty rota (its page shows the coming days): today to the last
    day on the rota."""
    month = (date(today.year, today.month, 1), today)
    out = {key: month for key, lg in LEDGERS.items() if lg.dated}
    last = duty.last_rota_day(session, today) if has_table(session, "dutyrota") else None
    out["duty"] = (today, last if isinstance(last, date) and last >= today else today)
    return out

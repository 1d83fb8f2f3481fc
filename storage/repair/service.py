"""The rules of repairs 报修 (BX): the state machine and history, assignment, access, escalation and statistics.

All rules live here; the chat handlers, the console, the CLI and the jobs call these functions. Every state
change goes through `_apply`, which moves the ticket along the `TRANSITIONS` table (a `storage.kernel.StateMachine`)
and writes one history row, and every change queues its notifications in the same transaction (a refused command
writes and tells nothing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, insert
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from storage import outbox
from storage.errors import NotFound, UserError
from storage.fastsql import Hot
from storage.kernel import StateMachine, Transition, fmt_duration, mark_once
from storage.people import Actor, Person, PersonRole, find_one
from storage.repair.categories import guess_category
from storage.repair.models import (
    ASSIGNED,
    CANCELLED,
    DONE,
    IN_PROGRESS,
    MAX_DESCRIPTION,
    MAX_NOTE,
    MAX_PLACE,
    OPEN,
    PENDING,
    PREFIX,
    RATED,
    STATES,
    WORKING,
    RepairHistory,
    RepairPhoto,
    RepairTicket,
)
from storage.whois import remembered
from storage.schoolcal import PROVISIONAL_NOTE, add_school_days, is_provisional

__all__ = ["FINISH_WITHIN_SCHOOL_DAYS", "KIND", "MACHINE", "MAX_PHOTOS", "NUDGE_INTERVAL", "RECENT", "REFUSAL_HINTS",
           "TAKE_WITHIN", "TAKE_WITHIN_URGENT", "TRANSITIONS", "HistoryLine", "Photo", "RepairStats",
           "TicketDetails", "Worker", "assign", "can_see", "cancel", "create_ticket", "deadline_is_provisional",
           "details", "escalate", "finish", "finish_deadline", "get_visible", "give_back", "month_range", "nudge",
           "photos_of", "pick_worker", "rate", "reported_by", "split_categories", "stats", "summary", "take",
           "take_deadline", "tasks_of", "unassigned"]

log = logging.getLogger("houqin.repair")

KIND = "repair"  # outbox kind (a template id may be configured for it)

NUDGE_INTERVAL = timedelta(hours=1)
TAKE_WITHIN = timedelta(hours=2)
TAKE_WITHIN_URGENT = timedelta(minutes=30)
FINISH_WITHIN_SCHOOL_DAYS = 2
MAX_PHOTOS = 9
RECENT = 10  # 我的报修 shows this many


# --- the state machine ----------------------------------------------------------------------------------


TRANSITIONS: dict[str, Transition] = {
    "assign": Transition("派单", frozenset({PENDING, ASSIGNED}), ASSIGNED, "assigned_at"),
    "take": Transition("接单", frozenset({PENDING, ASSIGNED}), IN_PROGRESS, "taken_at"),
    "finish": Transition("完成", frozenset({IN_PROGRESS}), DONE, "finished_at"),
    "give_back": Transition("退单", frozenset({ASSIGNED, IN_PROGRESS}), PENDING, None),
    "cancel": Transition("取消", OPEN, CANCELLED, "cancelled_at"),
    "rate": Transition("评价", frozenset({DONE}), RATED, "rated_at"),
}

# What to add when an action does not fit the current state ({ref} is the ticket number).
REFUSAL_HINTS: dict[tuple[str, str], str] = {
    ("finish", PENDING): "请先发送「接单 {ref}」。",
    ("finish", ASSIGNED): "请先发送「接单 {ref}」开始维修，修好后再发「完成 {ref}」。",
    ("finish", DONE): "已经完成过了。",
    ("rate", PENDING): "维修完成后才能评价。",
    ("rate", ASSIGNED): "维修完成后才能评价。",
    ("rate", IN_PROGRESS): "维修完成后才能评价。",
    ("rate", RATED): "已经评价过了，谢谢！",
    ("cancel", DONE): "已完成的报修不能取消；如仍有问题，请重新报修。",
    ("cancel", RATED): "已完成的报修不能取消；如仍有问题，请重新报修。",
    ("take", IN_PROGRESS): "已在维修中。",
    ("give_back", PENDING): "尚未派单，无需退单。",
    ("assign", IN_PROGRESS): "维修工已接单；如需换人，请维修工先「退单 {ref} 原因」。",
}

MACHINE = StateMachine(TRANSITIONS, REFUSAL_HINTS)


def _apply(session: Session, ticket: RepairTicket, action: str, actor_id: int | None, now: datetime,
           note: str | None = None, verb: str | None = None) -> None:
    """Move the ticket along the table and record who, when and why."""
    before = MACHINE.move(ticket, action, now)
    session.add(ticket)
    _record(session, ticket, verb or TRANSITIONS[action].verb, actor_id, now, before, ticket.state, note)


def _entry(ticket: RepairTicket, action: str, actor_id: int | None, now: datetime, before: str | None,
           after: str, note: str | None = None) -> dict[str, object]:
    assert ticket.id is not None
    return {"ticket_id": ticket.id, "at": now, "actor_id": actor_id, "action": action, "from_state": before,
            "to_state": after, "note": note or None}


# Hot-path statements, built once so SQLAlchemy compiles each once per process. They run as Core statements on
# the session's connection (same transaction): ORM queries, objects and flushes cost several times as much CPU,
# and 报修 is the busiest command.
_TICKETS = RepairTicket.__table__  # type: ignore[attr-defined]
_PEOPLE = Person.__table__  # type: ignore[attr-defined]
_ROLES = PersonRole.__table__  # type: ignore[attr-defined]
_INSERT_TICKET = Hot(insert(_TICKETS).returning(_TICKETS.c.id))
_INSERT_HISTORY = Hot(insert(RepairHistory.__table__))  # type: ignore[attr-defined]
_INSERT_PHOTO = insert(RepairPhoto.__table__)  # type: ignore[attr-defined]
_ADMINS = (core_select(_PEOPLE.c.id).distinct()
           .select_from(_PEOPLE.join(_ROLES, _ROLES.c.person_id == _PEOPLE.c.id))
           .where(_ROLES.c.role == "admin", _PEOPLE.c.active.is_(True))
           .order_by(_PEOPLE.c.id))


def _write_history(session: Session, entries: list[dict[str, object]]) -> None:
    # History rows are write-only here: a Core INSERT (several rows: an executemany, compiled once and one
    # round trip in psycopg's pipeline; a multi-VALUES statement would be compiled anew every time).
    _INSERT_HISTORY.run(session, entries)


def _record(session: Session, ticket: RepairTicket, action: str, actor_id: int | None, now: datetime,
            before: str | None, after: str, note: str | None = None) -> None:
    _write_history(session, [_entry(ticket, action, actor_id, now, before, after, note)])


# --- categories -----------------------------------------------------------------------------------------


def split_categories(text: str | None) -> set[str]:
    """A worker's categories as typed on the CLI: `电,水`, `电，水`, `电 水`, `电、水`."""
    return {c for c in re.split(r"[,，、\s]+", text or "") if c}


# --- loading and access ---------------------------------------------------------------------------------


def can_see(ticket: RepairTicket, actor: Actor) -> bool:
    """Only the reporter, the assignee, admins and leaders see a ticket."""
    return actor.id in (ticket.reporter_id, ticket.assignee_id) or actor.has("admin", "leader")


def _load(session: Session, n: int, lock: bool = False) -> RepairTicket | None:
    stmt = select(RepairTicket).where(RepairTicket.id == n)
    if lock:  # serialise concurrent changes of one ticket (two workers taking it at once)
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


def get_visible(session: Session, actor: Actor, n: int, lock: bool = False) -> RepairTicket:
    ticket = _load(session, n, lock)
    if ticket is None or not can_see(ticket, actor):
        raise NotFound(f"{PREFIX}{n}")
    return ticket


def _get_for_work(session: Session, actor: Actor, n: int) -> RepairTicket:
    """Workers also reach open tickets that are not theirs (to take an unassigned one, or be told who has it)."""
    ticket = _load(session, n, lock=True)
    if ticket is None:
        raise NotFound(f"{PREFIX}{n}")
    if can_see(ticket, actor) or (actor.has("worker") and ticket.state in OPEN):
        return ticket
    raise NotFound(f"{PREFIX}{n}")


def _name(session: Session, person_id: int | None) -> str:
    if person_id is None:
        return ""
    p = session.get(Person, person_id)
    return p.name if p else "?"


def summary(ticket: RepairTicket, limit: int = 40) -> str:
    text = f"{ticket.place} {ticket.description}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tell(session: Session, ticket: RepairTicket, person_ids: Iterable[int | None], text: str, *, now: datetime,
          skip: int | None = None) -> None:
    """A push about a ticket to these people (not to `skip`, who acted and sees the reply)."""
    outbox.notify(session, person_ids, KIND, text, now=now, skip=skip, data={"ticket": ticket.id})


def _urgent_tag(ticket: RepairTicket) -> str:
    return "【紧急】" if ticket.urgent else ""


def _admin_ids(session: Session) -> list[int | None]:
    """The active admins' ids (as `people_with_role(session, "admin")`, without loading whole people)."""
    return list(remembered(session, "admins", lambda: tuple(session.connection().execute(_ADMINS).scalars())))


def _clip(text: str | None, limit: int, what: str) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if len(text) > limit:
        raise UserError(f"{what}太长了（最多{limit}字）")
    return text or None


def _worker_push(ticket: RepairTicket, reporter: str) -> str:
    urgent = _urgent_tag(ticket)
    return (f"新维修任务 {ticket.ref}{urgent}：{ticket.place}，{ticket.description}（类别：{ticket.category}，"
            f"报修人：{reporter}）。回复「接单 {ticket.ref}」开始维修。")


# --- creating and assigning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    media_id: str | None
    pic_url: str | None


def create_ticket(session: Session, actor: Actor, place: str, description: str, *, now: datetime,
                  urgent: bool = False, photos: list[Photo] | tuple[Photo, ...] = ()
                  ) -> tuple[RepairTicket, Worker | None]:
    """A new ticket, its category guessed from the text; given to a matching worker when there is one.

    Returns the ticket and the worker it was given to (None: it waits for an admin in 待派单).
    """
    place = (place or "").strip()
    description = (description or "").strip()
    if not place:
        raise UserError("请写上报修地点，例如：报修 教学楼301 灯不亮")
    if not description:
        raise UserError("请写上故障描述，例如：报修 教学楼301 灯不亮")
    if len(place) > MAX_PLACE:
        raise UserError(f"地点太长了（最多{MAX_PLACE}字）")
    if len(description) > MAX_DESCRIPTION:
        raise UserError(f"描述太长了（最多{MAX_DESCRIPTION}字）")
    if len(photos) > MAX_PHOTOS:
        raise UserError(f"照片最多{MAX_PHOTOS}张")
    ticket = RepairTicket(reporter_id=actor.id, place=place, description=description,
                          category=guess_category(f"{place} {description}"), urgent=urgent, state=PENDING,
                          created_at=now)
    # Decide the assignment before the INSERT, so the ticket is written once, already in its state (one INSERT
    # instead of INSERT + UPDATE). Its rows go in as Core INSERTs (this is the hot path of the busiest command),
    # so the ticket returned is the row as written, not one the session tracks.
    worker = pick_worker(session, ticket.category)
    if worker is not None:
        MACHINE.move(ticket, "assign", now)
        ticket.assignee_id = worker.id
    rows = _INSERT_TICKET.run(session, ticket.model_dump(exclude={"id"}))
    assert rows
    ticket.id = rows[0][0]  # the ticket number
    history = [_entry(ticket, "报修", actor.id, now, None, PENDING, "紧急" if urgent else None)]
    if worker is not None:
        history.append(_entry(ticket, "自动派单", None, now, PENDING, ticket.state,
                              f"按类别「{ticket.category}」派给{worker.name}"))
    _write_history(session, history)
    if photos:
        session.connection().execute(
            _INSERT_PHOTO, [{"ticket_id": ticket.id, "media_id": ph.media_id, "pic_url": ph.pic_url, "created_at": now}
                            for ph in photos])
    if worker is not None:
        _tell(session, ticket, [worker.id], _worker_push(ticket, actor.name), now=now)
    else:
        _tell(session, ticket, _admin_ids(session),
              f"新报修 {ticket.ref}{_urgent_tag(ticket)} 待派单：{ticket.place}，{ticket.description}（类别：{ticket.category}，"
              f"报修人：{actor.name}）。回复「派单 {ticket.ref} 维修工姓名」派单。", now=now, skip=actor.id)
    return ticket, worker


@dataclass(frozen=True)
class Worker:
    id: int
    name: str


def pick_worker(session: Session, category: str) -> Worker | None:
    """Round robin among bound workers of this category: least open load, then least recently assigned, then id.

    Runs on every report, so it reads three columns rather than whole people, through prepared Core statements
    (the busiest command's hot path); with one matching worker that is the only query.
    """
    conn = session.connection()
    # Who the workers of a category are changes only with people and roles: kept per people version.
    rows = remembered(session, ("repair-workers", category),
                      lambda: tuple(_WORKERS.run(session, {"pattern": f"%{_like_escape(category)}%"}) or ()))
    workers = [Worker(pid, name) for pid, name, cats in rows if category in split_categories(cats)]
    if len(workers) <= 1:
        return workers[0] if workers else None
    loads: dict[int, int] = {aid: int(n) for aid, n in conn.execute(_LOADS, {"ids": [w.id for w in workers]}).all()}
    least = min(loads.get(w.id, 0) for w in workers)
    tied = [w for w in workers if loads.get(w.id, 0) == least]
    if len(tied) == 1:
        return tied[0]
    # Only ties need the (longer) look at past assignments.
    last: dict[int, datetime | None] = {aid: at for aid, at in conn.execute(_LAST_ASSIGNED, {"ids": [w.id for w in tied]})}
    return min(tied, key=lambda w: (last.get(w.id) or datetime.min, w.id))


def _like_escape(text: str) -> str:
    """Literal text inside a LIKE pattern (escape character `/`, as SQLAlchemy's `contains(autoescape=True)`)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


_WORKERS = Hot(core_select(_PEOPLE.c.id, _PEOPLE.c.name, _PEOPLE.c.categories)
            .select_from(_PEOPLE.join(_ROLES, _ROLES.c.person_id == _PEOPLE.c.id))
            .where(_ROLES.c.role == "worker", _PEOPLE.c.active.is_(True), _PEOPLE.c.openid.is_not(None),
                   _PEOPLE.c.categories.like(bindparam("pattern"), escape="/"))
            .order_by(_PEOPLE.c.id))
_LOADS = (core_select(_TICKETS.c.assignee_id, func.count())
          .where(_TICKETS.c.assignee_id.in_(bindparam("ids", expanding=True)), _TICKETS.c.state.in_(sorted(WORKING)))
          .group_by(_TICKETS.c.assignee_id))
_LAST_ASSIGNED = (core_select(_TICKETS.c.assignee_id, func.max(_TICKETS.c.assigned_at))
                  .where(_TICKETS.c.assignee_id.in_(bindparam("ids", expanding=True)))
                  .group_by(_TICKETS.c.assignee_id))


def assign(session: Session, actor: Actor, n: int, worker_name: str, *, now: datetime) -> tuple[RepairTicket, Person]:
    """An admin gives the ticket to a worker by name (again: to another worker)."""
    worker_name = (worker_name or "").strip()
    if not worker_name:
        raise UserError(f"请写上维修工姓名，例如：派单 {PREFIX}{n} 李师傅")
    ticket = get_visible(session, actor, n, lock=True)
    worker = find_one(session, worker_name, role="worker", what="维修工", missing="没有名为「{name}」的{what}。")
    assert worker.id is not None
    if ticket.assignee_id == worker.id and ticket.state == ASSIGNED:
        raise UserError(f"{ticket.ref} 已派给{worker.name}，无需重复派单。")
    previous = ticket.assignee_id
    _apply(session, ticket, "assign", actor.id, now, note=f"派给{worker.name}")
    ticket.assignee_id = worker.id
    ticket.taken_at = None
    _tell(session, ticket, [worker.id], _worker_push(ticket, _name(session, ticket.reporter_id)), now=now, skip=actor.id)
    if previous is not None and previous != worker.id:
        _tell(session, ticket, [previous], f"{ticket.ref}（{summary(ticket)}）已改派给{worker.name}，您无需再处理。", now=now, skip=actor.id)
    _tell(session, ticket, [ticket.reporter_id], f"您的报修 {ticket.ref}（{summary(ticket)}）已派给{worker.name}维修。", now=now, skip=actor.id)
    return ticket, worker


def take(session: Session, actor: Actor, n: int, *, now: datetime) -> RepairTicket:
    """A worker starts the job: one assigned to them, or an unassigned one (self-assignment)."""
    ticket = _get_for_work(session, actor, n)
    if ticket.assignee_id not in (None, actor.id) and ticket.state in OPEN:
        raise NotFound(ticket.ref)  # someone else's job: its state and assignee are not this worker's business
    MACHINE.check(ticket, "take")
    if ticket.assignee_id is None:
        ticket.assignee_id = actor.id
        ticket.assigned_at = now
    _apply(session, ticket, "take", actor.id, now)
    _tell(session, ticket, [ticket.reporter_id], f"您的报修 {ticket.ref}（{summary(ticket)}）：{actor.name}已接单，正在维修。", now=now, skip=actor.id)
    return ticket


def _own_job(session: Session, ticket: RepairTicket, actor: Actor, action: str) -> None:
    """Finishing or giving back is for the assignee (anyone else: 未找到, as for a ticket that does not exist);
    a ticket nobody has gets the state-based refusal."""
    if ticket.assignee_id is not None and ticket.assignee_id != actor.id:
        raise NotFound(ticket.ref)


def finish(session: Session, actor: Actor, n: int, note: str | None = None, *, now: datetime) -> RepairTicket:
    ticket = _get_for_work(session, actor, n)
    _own_job(session, ticket, actor, "finish")
    note = _clip(note, MAX_NOTE, "说明")
    _apply(session, ticket, "finish", actor.id, now, note=note)
    ticket.finish_note = note
    said = f"（维修说明：{note}）" if note else ""
    _tell(session, ticket, [ticket.reporter_id],
          f"您的报修 {ticket.ref}（{summary(ticket)}）已由{actor.name}修好{said}。请为本次维修打分：回复"
          f"「评价 {ticket.ref} 5」（1-5分，可附评语，如：评价 {ticket.ref} 5 修得很及时）。", now=now, skip=actor.id)
    return ticket


def give_back(session: Session, actor: Actor, n: int, reason: str, *, now: datetime) -> RepairTicket:
    """The worker returns the job: back to 待派单, and the admins are asked to assign it again."""
    reason_text = _clip(reason, MAX_NOTE, "原因")
    if not reason_text:
        raise UserError(f"请写上退单原因，例如：退单 {PREFIX}{n} 缺少配件")
    ticket = _get_for_work(session, actor, n)
    _own_job(session, ticket, actor, "give_back")
    _apply(session, ticket, "give_back", actor.id, now, note=reason_text)
    ticket.assignee_id = None
    ticket.assigned_at = None
    ticket.taken_at = None
    _tell(session, ticket, _admin_ids(session),
          f"{ticket.ref}（{summary(ticket)}）被{actor.name}退单，原因：{reason_text}。"
          f"请重新派单：派单 {ticket.ref} 维修工姓名", now=now, skip=actor.id)
    _tell(session, ticket, [ticket.reporter_id],
          f"您的报修 {ticket.ref}（{summary(ticket)}）被维修工退回（原因：{reason_text}），正在重新安排维修。", now=now, skip=actor.id)
    return ticket


def cancel(session: Session, actor: Actor, n: int, reason: str | None = None, *, now: datetime) -> RepairTicket:
    ticket = get_visible(session, actor, n, lock=True)
    if actor.id != ticket.reporter_id and not actor.has("admin"):
        raise NotFound(ticket.ref)  # a refusal that names the rule would confirm the ticket exists
    reason_text = _clip(reason, MAX_NOTE, "原因")
    _apply(session, ticket, "cancel", actor.id, now, note=reason_text)
    said = f"，原因：{reason_text}" if reason_text else ""
    _tell(session, ticket, [ticket.reporter_id, ticket.assignee_id],
          f"报修 {ticket.ref}（{summary(ticket)}）已被{actor.name}取消{said}，无需维修。", now=now, skip=actor.id)
    return ticket


def rate(session: Session, actor: Actor, n: int, score: int, comment: str | None = None, *,
         now: datetime) -> RepairTicket:
    ticket = get_visible(session, actor, n, lock=True)
    if actor.id != ticket.reporter_id:
        raise NotFound(ticket.ref)
    if not 1 <= score <= 5:
        raise UserError(f"评分请用1-5的数字，例如：评价 {ticket.ref} 5 修得很及时")
    comment = _clip(comment, MAX_NOTE, "评语")
    _apply(session, ticket, "rate", actor.id, now, note=f"{score}分" + (f"：{comment}" if comment else ""))
    ticket.rating = score
    ticket.rating_comment = comment
    said = f"，评语：{comment}" if comment else ""
    _tell(session, ticket, [ticket.assignee_id],
          f"{ticket.ref}（{summary(ticket)}）报修人{actor.name}评价：{score}分{said}。", now=now, skip=actor.id)
    return ticket


def nudge(session: Session, actor: Actor, n: int, *, now: datetime) -> tuple[RepairTicket, list[str]]:
    """The reporter hurries the assignee (or the admins while nobody has it); once an hour per ticket."""
    ticket = get_visible(session, actor, n, lock=True)
    if actor.id != ticket.reporter_id:
        raise NotFound(ticket.ref)
    if ticket.state not in OPEN:
        raise UserError(f"{ticket.ref} 当前状态为「{ticket.state}」，无需催办。")
    if ticket.last_nudged_at is not None and now - ticket.last_nudged_at < NUDGE_INTERVAL:
        again = ticket.last_nudged_at + NUDGE_INTERVAL
        raise UserError(f"{ticket.ref} 已于 {ticket.last_nudged_at:%H:%M} 催办过，每张报修一小时内只能催办一次，"
                        f"请 {again:%H:%M} 后再试。")
    ticket.last_nudged_at = now
    session.add(ticket)
    waited = fmt_duration(now - ticket.created_at)
    base = (f"{actor.name}催办 {ticket.ref}{_urgent_tag(ticket)}：{ticket.place}，{ticket.description}"
            f"（已报修{waited}，当前状态：{ticket.state}）。")
    if ticket.assignee_id is not None:
        targets: list[int | None] = [ticket.assignee_id]
        names = [_name(session, ticket.assignee_id)]
        hint = f"请尽快处理：接单 {ticket.ref}" if ticket.state == ASSIGNED else f"修好后请回复：完成 {ticket.ref}"
    else:
        targets = _admin_ids(session)
        names = ["后勤管理员"] if targets else []
        hint = f"请尽快派单：派单 {ticket.ref} 维修工姓名"
    told = f"提醒{'、'.join(names)}" if names else None
    _record(session, ticket, "催办", actor.id, now, ticket.state, ticket.state, told)
    _tell(session, ticket, targets, base + hint, now=now, skip=actor.id)
    return ticket, names


# --- reading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    who: str
    action: str
    from_state: str | None
    to_state: str
    note: str | None


@dataclass(frozen=True)
class TicketDetails:
    ticket: RepairTicket
    reporter: str
    assignee: str
    photos: int
    history: list[HistoryLine] = field(default_factory=list)


def details(session: Session, actor: Actor, n: int) -> TicketDetails:
    ticket = get_visible(session, actor, n)
    photos = session.exec(select(func.count()).select_from(RepairPhoto).where(RepairPhoto.ticket_id == ticket.id)).one()
    rows = session.exec(
        select(RepairHistory, Person.name)
        .join(Person, col(Person.id) == col(RepairHistory.actor_id), isouter=True)
        .where(RepairHistory.ticket_id == ticket.id)
        .order_by(col(RepairHistory.id))
    ).all()
    history = [HistoryLine(h.at, name or "系统", h.action, h.from_state, h.to_state, h.note) for h, name in rows]
    return TicketDetails(ticket, _name(session, ticket.reporter_id), _name(session, ticket.assignee_id), int(photos),
                         history)


def photos_of(session: Session, ticket_id: int) -> list[RepairPhoto]:
    return list(session.exec(select(RepairPhoto).where(RepairPhoto.ticket_id == ticket_id)
                             .order_by(col(RepairPhoto.id))).all())


def _with_names(session: Session, tickets: list[RepairTicket]) -> list[tuple[RepairTicket, str]]:
    return [(t, _name(session, t.assignee_id)) for t in tickets]


def reported_by(session: Session, actor: Actor, limit: int = RECENT) -> list[tuple[RepairTicket, str]]:
    """My recent tickets (newest first) with their assignee's name."""
    rows = session.exec(select(RepairTicket).where(RepairTicket.reporter_id == actor.id)
                        .order_by(col(RepairTicket.id).desc()).limit(limit)).all()
    return _with_names(session, list(rows))


def tasks_of(session: Session, actor: Actor) -> list[tuple[RepairTicket, str]]:
    """A worker's open jobs: urgent first, then oldest first; with the reporter's name."""
    rows = session.exec(select(RepairTicket)
                        .where(RepairTicket.assignee_id == actor.id, col(RepairTicket.state).in_(WORKING))
                        .order_by(col(RepairTicket.urgent).desc(), col(RepairTicket.id))).all()
    return [(t, _name(session, t.reporter_id)) for t in rows]


def unassigned(session: Session) -> list[tuple[RepairTicket, str]]:
    """Tickets waiting for an admin (待派单): urgent first, then oldest first; with the reporter's name."""
    rows = session.exec(select(RepairTicket).where(RepairTicket.state == PENDING)
                        .order_by(col(RepairTicket.urgent).desc(), col(RepairTicket.id))).all()
    return [(t, _name(session, t.reporter_id)) for t in rows]


# --- statistics -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairStats:
    start: date
    end: date  # exclusive
    total: int
    by_state: dict[str, int]
    by_category: dict[str, int]
    finished: int
    avg_hours: float | None
    rated: int
    avg_rating: float | None


def month_range(now: datetime, months_back: int = 0) -> tuple[date, date]:
    year, month = now.year, now.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def stats(session: Session, start: date, end: date) -> RepairStats:
    """Tickets reported in [start, end): counts by state and category, average time to finish and rating."""
    lo, hi = datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time())
    in_range = (col(RepairTicket.created_at) >= lo, col(RepairTicket.created_at) < hi)
    by_state = dict(session.exec(select(RepairTicket.state, func.count()).where(*in_range)
                                 .group_by(RepairTicket.state)).all())
    by_category = dict(session.exec(select(RepairTicket.category, func.count()).where(*in_range)
                                    .group_by(RepairTicket.category)).all())
    spans = session.exec(select(RepairTicket.created_at, RepairTicket.finished_at)
                         .where(*in_range, col(RepairTicket.finished_at).is_not(None))).all()
    hours = [(f - c).total_seconds() / 3600 for c, f in spans if f is not None]
    rated, avg_rating = session.exec(select(func.count(col(RepairTicket.rating)), func.avg(col(RepairTicket.rating)))
                                     .where(*in_range, col(RepairTicket.rating).is_not(None))).one()
    return RepairStats(
        start=start, end=end, total=sum(by_state.values()),
        by_state={s: int(by_state.get(s, 0)) for s in STATES},
        by_category={c: int(n) for c, n in sorted(by_category.items(), key=lambda cn: (-cn[1], cn[0]))},
        finished=len(hours), avg_hours=sum(hours) / len(hours) if hours else None,
        rated=int(rated or 0), avg_rating=float(avg_rating) if avg_rating is not None else None,
    )


# --- escalation -----------------------------------------------------------------------------------------


def take_deadline(ticket: RepairTicket) -> datetime:
    return ticket.created_at + (TAKE_WITHIN_URGENT if ticket.urgent else TAKE_WITHIN)


def finish_deadline(ticket: RepairTicket) -> datetime:
    """Two school days after the report (weekends and statutory holidays off, make-up workdays on); beyond the
    official data the school days are worked out from the law (see :func:`deadline_is_provisional`)."""
    return add_school_days(ticket.created_at, FINISH_WITHIN_SCHOOL_DAYS)


def deadline_is_provisional(ticket: RepairTicket) -> bool:
    """The finish deadline counted school days the official calendar does not cover yet."""
    return is_provisional(ticket.created_at) or is_provisional(finish_deadline(ticket))


def escalate(session: Session, now: datetime) -> int:
    """Tell the admins about tickets not taken in time (2 h, urgent 30 min) or not finished in 2 school days.

    Each rule fires once per ticket (a mark on the ticket, written in the same transaction as the pushes), so
    running it again, or after a restart, tells nobody twice. Returns how many tickets were escalated.
    """
    admins = _admin_ids(session)
    count = 0
    untaken = session.exec(
        select(RepairTicket)
        .where(col(RepairTicket.state).in_([PENDING, ASSIGNED]), col(RepairTicket.escalated_untaken_at).is_(None),
               col(RepairTicket.created_at) <= now - TAKE_WITHIN_URGENT)
        .order_by(col(RepairTicket.id))
        .with_for_update(skip_locked=True)
    ).all()
    for t in untaken:
        if take_deadline(t) > now or not mark_once(session, t, "escalated_untaken_at", now):
            continue
        who = f"已派给{_name(session, t.assignee_id)}，尚未接单" if t.assignee_id else "尚未派单"
        limit = "30分钟" if t.urgent else "2小时"
        _record(session, t, "超时提醒", None, now, t.state, t.state, f"{limit}内未接单，已告知后勤管理员")
        _tell(session, t, admins,
              f"报修超时未接单：{t.ref}{_urgent_tag(t)}（{summary(t)}）报修已{fmt_duration(now - t.created_at)}，"
              f"{who}。" + (f"请派单：派单 {t.ref} 维修工姓名" if not t.assignee_id else f"可改派：派单 {t.ref} 维修工姓名"), now=now)
        count += 1
    unfinished = session.exec(
        select(RepairTicket)
        .where(col(RepairTicket.state).in_(OPEN), col(RepairTicket.escalated_unfinished_at).is_(None),
               col(RepairTicket.created_at) <= now - timedelta(days=FINISH_WITHIN_SCHOOL_DAYS))
        .order_by(col(RepairTicket.id))
        .with_for_update(skip_locked=True)
    ).all()
    for t in unfinished:
        if finish_deadline(t) > now or not mark_once(session, t, "escalated_unfinished_at", now):
            continue
        who = f"，维修工：{_name(session, t.assignee_id)}" if t.assignee_id else ""
        _record(session, t, "超时提醒", None, now, t.state, t.state, "2个工作日内未完成，已告知后勤管理员")
        _tell(session, t, admins,
              f"报修超时未完成：{t.ref}（{summary(t)}）报修于{t.created_at:%m-%d %H:%M}，2个工作日内仍未修好"
              f"（当前状态：{t.state}{who}）。" + (f"\n工作日{PROVISIONAL_NOTE}" if deadline_is_provisional(t) else ""), now=now)
        count += 1
    return count

"""What the understanding layer needs to know about the school: names (staff, students, classes), places
already used, and each person's open records (to resolve 「收到」「搞定了」「刘欣怡的假批了」 to one record).

Read-only queries; the layer caches the name lists per process and re-reads them when `version` changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select as core_select
from sqlalchemy import text
from sqlmodel import Session, col, select

from storage.inspection import OPEN_VISIT, InspectionVisit
from storage.leave import APPROVED, OUT, PENDING, LeaveSlip
from storage.people import Actor, ParentLink, Person, PersonRole, SchoolClass, Student
from storage.reminder import Reminder, ReminderOccurrence, ReminderReceipt
from storage.repair import RepairTicket
from storage.visitor import VisitorEntry

__all__ = ["Directory", "Staff", "Pupil", "version", "snapshot", "open_tickets", "worker_jobs",
           "slips_of_student", "pending_receipts", "my_children", "visitors_in", "my_reminders"]

OPEN_TICKET = ("待派单", "已派单", "维修中")
WORK_TICKET = ("已派单", "维修中")


@dataclass(frozen=True)
class Staff:
    id: int
    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Pupil:
    id: int
    name: str
    klass: str


@dataclass(frozen=True)
class Directory:
    staff: tuple[Staff, ...]
    students: tuple[Pupil, ...]
    classes: tuple[str, ...]
    places: tuple[str, ...]


_VERSION = text(
    "SELECT (SELECT count(*) FROM person), (SELECT coalesce(max(id), 0) FROM person),"
    " (SELECT coalesce(sum(length(name)), 0) FROM person), (SELECT count(*) FROM person WHERE active),"
    " (SELECT count(*) FROM personrole), (SELECT coalesce(max(id), 0) FROM student),"
    " (SELECT coalesce(sum(length(name)), 0) FROM student), (SELECT count(DISTINCT place) FROM repairticket)"
)


def version(session: Session) -> tuple[object, ...]:
    """A cheap fingerprint of the name lists: counts, highest ids and name lengths (one round trip, one
    statement prepared once)."""
    return tuple(session.execute(_VERSION).one())


def snapshot(session: Session) -> Directory:
    roles: dict[int, set[str]] = {}
    for pid, role in session.execute(core_select(PersonRole.person_id, PersonRole.role)).all():
        roles.setdefault(pid, set()).add(role)
    staff = tuple(Staff(p.id, p.name, frozenset(roles.get(p.id or 0, set())))  # type: ignore[arg-type]
                  for p in session.exec(select(Person).where(Person.active == True)).all())  # noqa: E712
    classes = {c.id: c.name for c in session.exec(select(SchoolClass)).all()}
    students = tuple(Pupil(s.id, s.name, classes.get(s.class_id, "")) for s in session.exec(select(Student)).all())  # type: ignore[arg-type]
    places = tuple(p for (p,) in session.execute(
        core_select(RepairTicket.place).distinct().limit(500)).all())  # type: ignore[call-overload]
    return Directory(staff, students, tuple(classes.values()), places)


def open_tickets(session: Session, actor: Actor) -> list[RepairTicket]:
    """Tickets this person reported that are not finished or cancelled, oldest first."""
    stmt = select(RepairTicket).where(RepairTicket.reporter_id == actor.id,
                                      col(RepairTicket.state).in_(OPEN_TICKET)).order_by(col(RepairTicket.id))
    return list(session.exec(stmt).all())


def rateable_tickets(session: Session, actor: Actor) -> list[RepairTicket]:
    stmt = select(RepairTicket).where(RepairTicket.reporter_id == actor.id, RepairTicket.state == "已完成")
    return list(session.exec(stmt.order_by(col(RepairTicket.id))).all())


def worker_jobs(session: Session, actor: Actor) -> list[RepairTicket]:
    stmt = select(RepairTicket).where(RepairTicket.assignee_id == actor.id,
                                      col(RepairTicket.state).in_(WORK_TICKET)).order_by(col(RepairTicket.id))
    return list(session.exec(stmt).all())


def all_open_tickets(session: Session) -> list[RepairTicket]:
    stmt = select(RepairTicket).where(col(RepairTicket.state).in_(OPEN_TICKET)).order_by(col(RepairTicket.id))
    return list(session.exec(stmt).all())


def slips_of_student(session: Session, student_id: int, now: datetime) -> list[LeaveSlip]:
    """The student's slips that still matter at the gate or for a decision (not ended a day ago)."""
    stmt = select(LeaveSlip).where(LeaveSlip.student_id == student_id,
                                   col(LeaveSlip.ends_at) > now - timedelta(hours=12),
                                   col(LeaveSlip.state).in_((PENDING, APPROVED, OUT)))
    return list(session.exec(stmt.order_by(col(LeaveSlip.starts_at))).all())


def my_children(session: Session, actor: Actor) -> list[Pupil]:
    rows = session.exec(select(Student, SchoolClass).join(ParentLink, col(ParentLink.student_id) == Student.id)
                        .join(SchoolClass, col(SchoolClass.id) == Student.class_id)
                        .where(ParentLink.parent_id == actor.id)).all()
    return [Pupil(s.id, s.name, c.name) for s, c in rows]  # type: ignore[arg-type]


def pending_receipts(session: Session, actor: Actor) -> list[Reminder]:
    """Reminders that asked this person for a 回执 not given yet (newest first)."""
    stmt = (select(Reminder).join(ReminderOccurrence, col(ReminderOccurrence.reminder_id) == Reminder.id)
            .join(ReminderReceipt, col(ReminderReceipt.occurrence_id) == ReminderOccurrence.id)
            .where(ReminderReceipt.person_id == actor.id, col(ReminderReceipt.acked_at).is_(None))
            .order_by(col(ReminderOccurrence.due_at).desc()))
    seen: dict[int, Reminder] = {}
    for r in session.exec(stmt).all():
        seen.setdefault(r.id or 0, r)
    return list(seen.values())


def my_reminders(session: Session, actor: Actor) -> list[Reminder]:
    stmt = select(Reminder).where(Reminder.creator_id == actor.id, Reminder.state == "active")
    return list(session.exec(stmt.order_by(col(Reminder.id))).all())


def visitors_in(session: Session) -> list[VisitorEntry]:
    stmt = select(VisitorEntry).where(col(VisitorEntry.checked_out_at).is_(None))
    return list(session.exec(stmt.order_by(col(VisitorEntry.id))).all())


def slips_requested_by(session: Session, actor: Actor, limit: int = 10) -> list[LeaveSlip]:
    """我的请假: the slips this person asked for (a parent's or a teacher's), newest first."""
    stmt = select(LeaveSlip).where(LeaveSlip.requester_id == actor.id).order_by(col(LeaveSlip.id).desc()).limit(limit)
    return list(session.exec(stmt).all())


def scan_waiting(session: Session, actor: Actor, now: datetime) -> bool:
    """Whether the person's last checkpoint scan waits for 正常/异常 (then a description is that answer)."""
    visit = session.exec(select(InspectionVisit).where(InspectionVisit.person_id == actor.id,
                                                       col(InspectionVisit.at) >= now - OPEN_VISIT)
                         .order_by(col(InspectionVisit.id).desc())).first()
    return visit is not None and visit.result is None

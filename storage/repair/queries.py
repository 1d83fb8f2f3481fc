"""The console's read-only views of repairs: the 报修台账 list and its export, and the dashboard's open tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.listing import EXPORT_LIMIT, Filters, Page, Sheet, in_range, paged, ref_or_text, xl_time, yes_no
from storage.people import Person, people_with_role
from storage.repair.models import OPEN, STATES, RepairPhoto, RepairTicket

__all__ = ["AGE_BUCKETS", "RepairRow", "export_repairs", "oldest_open", "open_by_age", "open_by_state", "repairs",
           "workers"]

AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("2小时内", timedelta(hours=2)),
    ("2–24小时", timedelta(hours=24)),
    ("1–3天", timedelta(days=3)),
    ("超过3天", None),
)


@dataclass
class RepairRow:
    ticket: RepairTicket
    reporter: str
    assignee: str


def _repair_stmt(f: Filters) -> Any:
    reporter, assignee = aliased(Person), aliased(Person)
    stmt = (
        select(RepairTicket, reporter.name, assignee.name)
        .join(reporter, col(reporter.id) == col(RepairTicket.reporter_id))
        .join(assignee, col(assignee.id) == col(RepairTicket.assignee_id), isouter=True)
    )
    if f.state == "未完成":
        stmt = stmt.where(col(RepairTicket.state).in_(OPEN))
    elif f.state:
        stmt = stmt.where(RepairTicket.state == f.state)
    if f.kind:
        stmt = stmt.where(RepairTicket.category == f.kind)
    if f.flag == "urgent":
        stmt = stmt.where(RepairTicket.urgent == True)
    if f.like:
        stmt = stmt.where(or_(*ref_or_text(f, "BX", RepairTicket.id, RepairTicket.place, RepairTicket.description,
                                           reporter.name, assignee.name)))
    stmt = stmt.where(*in_range(col(RepairTicket.created_at), f))
    return stmt.order_by(col(RepairTicket.id).desc())


def repairs(session: Session, f: Filters, page: int = 1) -> Page[RepairRow]:
    rows, total = paged(session, _repair_stmt(f), page)
    return Page([RepairRow(t, r or "", a or "") for t, r, a in rows], total, max(1, page))


def workers(session: Session) -> list[Person]:
    return people_with_role(session, "worker")


# --- the dashboard -----------------------------------------------------------------------------------------


def _open_states() -> list[str]:
    return [s for s in STATES if s in OPEN]


def open_by_state(session: Session) -> dict[str, int]:
    """Open tickets by state, in the order of the states."""
    open_states = _open_states()
    counts = dict(session.exec(select(RepairTicket.state, func.count())
                               .where(col(RepairTicket.state).in_(open_states))
                               .group_by(RepairTicket.state)).all())
    return {s: int(counts.get(s, 0)) for s in open_states}


def open_by_age(session: Session, now: datetime) -> dict[str, int]:
    """Open tickets by how long ago they were reported (AGE_BUCKETS)."""
    by_age = dict.fromkeys((label for label, _ in AGE_BUCKETS), 0)
    created = session.exec(select(RepairTicket.created_at).where(col(RepairTicket.state).in_(_open_states()))).all()
    for at in created:
        age = now - at
        for label, limit in AGE_BUCKETS:
            if limit is None or age < limit:
                by_age[label] += 1
                break
    return by_age


def oldest_open(session: Session, limit: int = 8) -> list[RepairRow]:
    """The open tickets to see to first: urgent ones, then the oldest."""
    oldest = _repair_stmt(Filters(state="未完成")).order_by(None).order_by(
        col(RepairTicket.urgent).desc(), col(RepairTicket.created_at), col(RepairTicket.id)).limit(limit)
    return [RepairRow(t, r or "", a or "") for t, r, a in session.exec(oldest).all()]


# --- the export --------------------------------------------------------------------------------------------


def export_repairs(session: Session, f: Filters, **_: Any) -> Sheet:
    rows = session.exec(_repair_stmt(f).order_by(None).order_by(col(RepairTicket.id)).limit(EXPORT_LIMIT)).all()
    ids = [t.id for t, _, _ in rows]
    photos = dict(session.exec(select(RepairPhoto.ticket_id, func.count()).where(col(RepairPhoto.ticket_id).in_(ids or [-1]))
                               .group_by(col(RepairPhoto.ticket_id))).all())
    out = [[t.ref, xl_time(t.created_at), rep or "", t.place, t.description, t.category, yes_no(t.urgent), t.state,
            asg or "", xl_time(t.assigned_at), xl_time(t.taken_at), xl_time(t.finished_at), t.finish_note or "",
            t.rating if t.rating is not None else "", t.rating_comment or "", xl_time(t.cancelled_at),
            int(photos.get(t.id, 0))] for t, rep, asg in rows]
    return Sheet("报修台账", ["编号", "报修时间", "报修人", "地点", "描述", "类别", "紧急", "状态", "维修工", "派单时间",
                          "接单时间", "完成时间", "维修说明", "评分", "评语", "取消时间", "照片数"], out,
                 [8, 17, 10, 16, 30, 8, 6, 8, 10, 17, 17, 17, 20, 6, 20, 17, 7])

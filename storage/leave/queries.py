"""The console's read-only views of leave slips: the 请假台账 list and its export, the dashboard's pending slips,
and the ledger rows by date range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.leave.models import PENDING, LeaveSlip
from storage.leave.service import class_of, ref, status_text, student_of
from storage.listing import EXPORT_LIMIT, Filters, Page, Sheet, in_range, paged, ref_or_text, xl_time, yes_no
from storage.people import Person, SchoolClass, Student, name_of

__all__ = ["LEDGER_COLUMNS", "LeaveRow", "class_names", "export_leave", "leave_slips", "ledger_rows", "pending_count",
           "pending_rows"]


@dataclass
class LeaveRow:
    slip: LeaveSlip
    student: str
    student_no: str
    klass: str
    requester: str
    decided_by: str


def _leave_stmt(f: Filters) -> Any:
    requester, decider = aliased(Person), aliased(Person)
    stmt = (
        select(LeaveSlip, Student.name, Student.student_no, SchoolClass.name, requester.name,  # type: ignore[call-overload]
               decider.name)
        .join(Student, col(Student.id) == col(LeaveSlip.student_id))
        .join(SchoolClass, col(SchoolClass.id) == col(LeaveSlip.class_id))
        .join(requester, col(requester.id) == col(LeaveSlip.requester_id), isouter=True)
        .join(decider, col(decider.id) == col(LeaveSlip.decided_by_id), isouter=True)
    )
    if f.state:
        stmt = stmt.where(LeaveSlip.state == f.state)
    if f.kind:
        stmt = stmt.where(SchoolClass.name == f.kind)
    if f.like:
        stmt = stmt.where(or_(*ref_or_text(f, "QJ", LeaveSlip.id, Student.name, Student.student_no, SchoolClass.name,
                                           LeaveSlip.reason, requester.name)))
    stmt = stmt.where(*in_range(col(LeaveSlip.starts_at), f))
    return stmt.order_by(col(LeaveSlip.id).desc())


def _row(s: LeaveSlip, n: str | None, no: str | None, k: str | None, r: str | None, d: str | None) -> LeaveRow:
    return LeaveRow(s, n or "", no or "", k or "", r or "", d or "")


def leave_slips(session: Session, f: Filters, page: int = 1) -> Page[LeaveRow]:
    rows, total = paged(session, _leave_stmt(f), page)
    return Page([_row(*row) for row in rows], total, max(1, page))


def class_names(session: Session) -> list[str]:
    return list(session.exec(select(SchoolClass.name).order_by(col(SchoolClass.name))).all())


def pending_rows(session: Session, now: datetime, limit: int = 8) -> tuple[list[LeaveRow], int]:
    """The dashboard: pending slips still worth deciding, soonest first (at most `limit`), and how many in all."""
    stmt = _leave_stmt(Filters(state=PENDING)).where(col(LeaveSlip.ends_at) > now)
    rows, total = paged(session, stmt.order_by(None).order_by(col(LeaveSlip.starts_at)), 1, limit)
    return [_row(*row) for row in rows], total


def pending_count(session: Session, now: datetime) -> int:
    """Pending slips still worth deciding (the console's dashboard)."""
    stmt = select(LeaveSlip.id).where(LeaveSlip.state == PENDING, col(LeaveSlip.ends_at) > now)
    return len(session.exec(stmt).all())


def export_leave(session: Session, f: Filters, now: datetime | None = None, **_: Any) -> Sheet:
    rows = session.exec(_leave_stmt(f).order_by(None).order_by(col(LeaveSlip.id)).limit(EXPORT_LIMIT)).all()
    at = now or datetime.now()
    out = [[f"QJ{s.id}", sname or "", sno or "", k or "", xl_time(s.starts_at), xl_time(s.ends_at), s.reason,
            req or "", xl_time(s.created_at), s.state, dec or "", xl_time(s.decided_at), yes_no(s.deputy),
            s.reject_reason or "", xl_time(s.exited_at), xl_time(s.returned_at), yes_no(s.expects_return),
            status_text(s, at)] for s, sname, sno, k, req, dec in rows]
    return Sheet("请假台账", ["编号", "学生", "学号", "班级", "开始时间", "结束时间", "事由", "申请人", "申请时间", "状态",
                          "审批人", "审批时间", "代批", "驳回理由", "出校时间", "返校时间", "需返校", "门岗状态"], out,
                 [8, 10, 12, 10, 17, 17, 24, 10, 17, 8, 10, 17, 6, 16, 17, 17, 7, 18])


LEDGER_COLUMNS = ("编号", "班级", "学生", "学号", "开始", "结束", "事由", "返校", "申请人", "状态",
                  "审批人", "代批", "驳回理由", "出校时间", "返校时间")


def ledger_rows(session: Session, date_from: datetime, date_to: datetime, now: datetime) -> list[dict[str, Any]]:
    """The leave ledger (台账) for slips whose window touches [date_from, date_to): one dict per slip, keyed by
    LEDGER_COLUMNS, for the console's lists and XLSX export."""
    stmt = (select(LeaveSlip)
            .where(col(LeaveSlip.starts_at) < date_to, col(LeaveSlip.ends_at) >= date_from)
            .order_by(col(LeaveSlip.starts_at), col(LeaveSlip.id)))
    rows = []
    for slip in session.exec(stmt).all():
        student = student_of(session, slip)
        rows.append(dict(zip(LEDGER_COLUMNS, (
            ref(slip), class_of(session, slip).name, student.name, student.student_no, slip.starts_at,
            slip.ends_at, slip.reason, "是" if slip.expects_return else "否",
            name_of(session, slip.requester_id), status_text(slip, now),
            name_of(session, slip.decided_by_id) if slip.decided_by_id else "",
            "是" if slip.deputy else "", slip.reject_reason or "", slip.exited_at, slip.returned_at,
        ), strict=True)))
    return rows

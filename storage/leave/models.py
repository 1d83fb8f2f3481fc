"""Leave slips (QJ), their history and the gate ledger: the tables, and the states a slip moves through."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.kernel import Ref

__all__ = ["APPROVED", "BACK", "MAX_REASON", "OUT", "PENDING", "PREFIX", "REJECTED", "LeaveEvent", "LeaveGateEvent",
           "LeaveSlip"]

PREFIX = "QJ"
PENDING, APPROVED, REJECTED, OUT, BACK = "待审批", "已批准", "已驳回", "已出校", "已返校"
MAX_REASON = 200


class LeaveSlip(SQLModel, table=True):
    __table_args__ = (Index("ix_leaveslip_state_starts", "state", "starts_at"),)
    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="student.id", index=True)
    class_id: int = Field(foreign_key="schoolclass.id", index=True)  # the student's class when requested
    requester_id: int = Field(foreign_key="person.id")
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(max_length=MAX_REASON)
    expects_return: bool = True
    state: str = Field(default=PENDING, max_length=12)
    created_at: datetime
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = None
    deputy: bool = False  # decided by an admin or leader in the head teacher's place
    reject_reason: str | None = Field(default=None, max_length=MAX_REASON)
    exited_at: datetime | None = None
    returned_at: datetime | None = None
    repushed_at: datetime | None = None  # the "still pending" reminder went out (once)
    overdue_notified_at: datetime | None = None  # the "not back" alert went out (once)

    @property
    def ref(self) -> str:
        return Ref.of(PREFIX, self.id)


class LeaveEvent(SQLModel, table=True):
    """The slip's history: who did what, when."""

    id: int | None = Field(default=None, primary_key=True)
    slip_id: int = Field(foreign_key="leaveslip.id", index=True)
    at: datetime
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    action: str = Field(max_length=20)  # 申请, 批准, 驳回, 代批准, 代驳回, 出校, 返校, 催批, 逾期提醒
    note: str | None = Field(default=None, max_length=MAX_REASON)


class LeaveGateEvent(SQLModel, table=True):
    """The gate ledger. One exit and one return per slip at most, enforced by the database as well."""

    __table_args__ = (UniqueConstraint("slip_id", "kind", name="uq_leavegate_slip_kind"),)
    id: int | None = Field(default=None, primary_key=True)
    slip_id: int = Field(foreign_key="leaveslip.id", index=True)
    kind: str = Field(max_length=10)  # exit | return
    guard_id: int = Field(foreign_key="person.id")
    at: datetime

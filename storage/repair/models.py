"""Repair tickets (BX), their history and photos: the tables, and the states a ticket moves through."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from storage.kernel import Ref

__all__ = ["ASSIGNED", "CANCELLED", "DONE", "IN_PROGRESS", "MAX_DESCRIPTION", "MAX_NOTE", "MAX_PLACE", "OPEN",
           "PENDING", "PREFIX", "RATED", "STATES", "WORKING", "RepairHistory", "RepairPhoto", "RepairTicket"]

PREFIX = "BX"

PENDING, ASSIGNED, IN_PROGRESS, DONE, RATED, CANCELLED = "待派单", "已派单", "维修中", "已完成", "已评价", "已取消"
STATES: tuple[str, ...] = (PENDING, ASSIGNED, IN_PROGRESS, DONE, RATED, CANCELLED)
OPEN: frozenset[str] = frozenset({PENDING, ASSIGNED, IN_PROGRESS})
WORKING: frozenset[str] = frozenset({ASSIGNED, IN_PROGRESS})  # counts towards a worker's open load

MAX_PLACE = 100
MAX_DESCRIPTION = 500
MAX_NOTE = 200


class RepairTicket(SQLModel, table=True):
    __table_args__ = (
        Index("ix_repairticket_state_created", "state", "created_at"),
        Index("ix_repairticket_assignee_state", "assignee_id", "state"),  # a worker's open load
    )
    id: int | None = Field(default=None, primary_key=True)
    reporter_id: int = Field(foreign_key="person.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="person.id")
    place: str = Field(max_length=MAX_PLACE)
    description: str = Field(max_length=MAX_DESCRIPTION)
    category: str = Field(max_length=20)
    urgent: bool = False
    state: str = Field(default=PENDING, max_length=12)
    created_at: datetime
    assigned_at: datetime | None = None
    taken_at: datetime | None = None
    finished_at: datetime | None = None
    rated_at: datetime | None = None
    cancelled_at: datetime | None = None
    finish_note: str | None = Field(default=None, max_length=MAX_NOTE)
    rating: int | None = None
    rating_comment: str | None = Field(default=None, max_length=MAX_NOTE)
    last_nudged_at: datetime | None = None
    # Escalation marks: each rule tells the admins once per ticket, however often the job runs.
    escalated_untaken_at: datetime | None = None
    escalated_unfinished_at: datetime | None = None

    @property
    def ref(self) -> str:
        return Ref.of(PREFIX, self.id)


class RepairHistory(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="repairticket.id", index=True)
    at: datetime
    actor_id: int | None = Field(default=None, foreign_key="person.id")  # None: the system
    action: str = Field(max_length=20)
    from_state: str | None = Field(default=None, max_length=12)
    to_state: str = Field(max_length=12)
    note: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class RepairPhoto(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="repairticket.id", index=True)
    media_id: str | None = Field(default=None, max_length=200)
    pic_url: str | None = Field(default=None, max_length=1000)
    created_at: datetime

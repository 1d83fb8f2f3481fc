"""Reminders (TX), their occurrences (one per due time: the exactly-once gate) and receipts: the tables, and the
states, sources and outcomes they record."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from storage.kernel import Ref
from storage.schoolcal import Recurrence

__all__ = ["ACTIVE", "CANCELLED", "DONE", "MISSED", "ONCE", "SENT", "SOURCE_BUILTIN", "SOURCE_CHAT", "SOURCE_DUTY",
           "STATE_ZH", "STOPPED", "Reminder", "ReminderOccurrence", "ReminderReceipt"]

ONCE = "once"
# STOPPED: an earlier release stopped school-day reminders beyond its calendar data; storage.calendar_sync
# resumes them. Nothing stops a reminder now.
ACTIVE, DONE, CANCELLED, STOPPED = "active", "done", "cancelled", "stopped"
STATE_ZH = {ACTIVE: "待提醒", DONE: "已结束", CANCELLED: "已取消", STOPPED: "已停止"}
SENT, MISSED = "sent", "missed"
SOURCE_CHAT, SOURCE_BUILTIN, SOURCE_DUTY = "chat", "builtin", "duty"


class Reminder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    creator_id: int | None = Field(default=None, foreign_key="person.id", index=True)  # None: built-in / duty
    text: str = Field(sa_column=Column(Text, nullable=False))
    targets: str = Field(default="[]", max_length=2000)  # JSON list of specs: "all", "role:guard", "person:7"
    target_label: str = Field(default="", max_length=500)  # as typed, for lists and replies: "@门卫 @王老师"
    kind: str = Field(default=ONCE, max_length=10)  # once | daily | weekly | monthly | workday
    at: str | None = Field(default=None, max_length=8)  # recurring: time of day "HH:MM:SS"
    weekday: int | None = None
    day: int | None = None
    school_days_only: bool = False  # built-in events: a holiday moves it to the next school day
    first_due_at: datetime
    # The one column the scheduler's tick reads: indexed, NULL when nothing more is due.
    next_due_at: datetime | None = Field(default=None, index=True)
    needs_receipt: bool = False
    receipt_minutes: int | None = None  # None: the configured default
    source: str = Field(default=SOURCE_CHAT, max_length=10)
    builtin_key: str | None = Field(default=None, unique=True, max_length=120)  # built-ins and duty: idempotent
    state: str = Field(default=ACTIVE, max_length=10)
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: int | None = None
    last_fired_at: datetime | None = None

    @property
    def ref(self) -> str:
        return Ref.of("TX", self.id)

    @property
    def recurrence(self) -> Recurrence | None:
        if self.kind == ONCE or self.at is None:
            return None
        return Recurrence(self.kind, time.fromisoformat(self.at), weekday=self.weekday, day=self.day)  # type: ignore[arg-type]


class ReminderOccurrence(SQLModel, table=True):
    """One due time of a reminder: sent once, or recorded as missed. The unique key is the exactly-once gate."""

    __table_args__ = (UniqueConstraint("reminder_id", "due_at", name="uq_reminder_occurrence"),)
    id: int | None = Field(default=None, primary_key=True)
    reminder_id: int = Field(foreign_key="reminder.id")
    due_at: datetime
    fired_at: datetime
    status: str = Field(default=SENT, max_length=10)  # sent | missed
    recipients: int = 0
    # When unacknowledged receipts escalate to the admins; NULL when none asked, all acknowledged, or escalated.
    receipt_due_at: datetime | None = Field(default=None, index=True)
    escalated_at: datetime | None = None


class ReminderReceipt(SQLModel, table=True):
    """A recipient's 回执 for one occurrence: the row exists from firing on; acked_at says it was given."""

    occurrence_id: int = Field(foreign_key="reminderoccurrence.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    acked_at: datetime | None = None
    how: str | None = Field(default=None, max_length=4)  # 收到 | 完成
    note: str | None = Field(default=None, max_length=500)

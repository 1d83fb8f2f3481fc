"""Reminder jobs: firing due occurrences (run by the scheduler's tick, not the periodic registry, because it
must be on time to the second) and escalating unanswered receipts.

Holiday-duty reminders (the leader the evening before and the morning of, the guards that morning) are keyed
reminders created with the rota (storage.duty), so they go through `fire` too: same exactly-once path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from jobs.registry import periodic
from storage import reminder as rem


@dataclass
class ReminderSettings:
    """From the `[reminders]` table of the config file (jobs.term_config.load_config); the scheduler passes it in."""

    missed_grace_minutes: int = 60
    receipt_minutes: int = rem.RECEIPT_MINUTES
    batch: int = 500



def fire(session: Session, now: datetime, settings: ReminderSettings | None = None) -> rem.FireReport:
    s = settings or ReminderSettings()
    return rem.fire_due(session, now, grace=timedelta(minutes=s.missed_grace_minutes),
                        receipt_minutes=s.receipt_minutes, limit=s.batch)


@periodic("reminder-receipts", seconds=30)
def escalate(session: Session, now: datetime) -> str | None:
    """Receipts still missing when their time is up (default 30 min after the push): the admins are told once."""
    n = rem.escalate_receipts(session, now)
    return f"{n} 条提醒的回执超时，已告知管理员" if n else None

"""Timed leave-slip alerts: a slip still pending when its gate opens is pushed again (head teacher and
admins, once); a student not back 30 min after the window ends is reported to the head teacher (once)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from jobs.registry import periodic
from storage import leave


@periodic("leave-pending-repush", seconds=60)
def repush_pending(session: Session, now: datetime) -> str | None:
    n = leave.repush_pending(session, now=now)
    return f"re-pushed {n} pending leave slip(s)" if n else None


@periodic("leave-overdue-return", seconds=60)
def overdue_returns(session: Session, now: datetime) -> str | None:
    n = leave.alert_overdue(session, now=now)
    return f"alerted {n} overdue return(s)" if n else None

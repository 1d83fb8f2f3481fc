"""Repair escalation: tickets not taken in time, or not finished within 2 school days → the admins."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from jobs.registry import periodic
from storage import repair


@periodic("repair-escalation", seconds=60)
def escalate(session: Session, now: datetime) -> str | None:
    n = repair.escalate(session, now)
    return f"报修超时提醒 {n} 张" if n else None

"""Inspection jobs: a round's window opens → its people are reminded; it ends → missed checkpoints are told to
them and the admins; certificates 30 and 7 days before expiry → holder and admins. Each once (storage marks)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from jobs.registry import periodic
from storage import certificates, inspection


@periodic("inspection-rounds", seconds=30)
def rounds(session: Session, now: datetime) -> str | None:
    reminded = inspection.remind_due_rounds(session, now)
    closed = inspection.close_ended_rounds(session, now)
    if reminded or closed:
        return f"巡查：提醒 {reminded} 轮，漏检告知 {closed} 轮"
    return None


@periodic("certificate-expiry", seconds=3600)
def certificate_expiry(session: Session, now: datetime) -> str | None:
    n = certificates.notify_expiring(session, now)
    return f"证照到期提醒 {n} 张" if n else None

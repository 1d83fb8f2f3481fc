"""Visitor jobs: the end-of-day list of visitors still in, the long-stay alert, and the retention purge.

The scheduler calls jobs as `fn(session, now)` without settings, so the three visitor settings are read from
the same environment variables `bot.config.Settings` reads (VISITOR_DAY_END, VISITOR_LONG_STAY_HOURS,
VISITOR_RETENTION_DAYS); tests and callers that hold the settings pass them as keywords.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlmodel import Session

from jobs.registry import periodic
from storage import visitor


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or os.environ.get(name.lower()) or default


def _hours() -> float:
    try:
        return float(_env("VISITOR_LONG_STAY_HOURS", str(visitor.LONG_STAY_HOURS)))
    except ValueError:
        return visitor.LONG_STAY_HOURS


@periodic("visitor-day-end", seconds=60)
def day_end(session: Session, now: datetime, *, day_end: str | None = None,
            hours: float | None = None) -> str | None:
    """From the configured end of day (default 18:00), once a day: tell the guards who is still in."""
    n = visitor.day_end_list(session, now, day_end=day_end or _env("VISITOR_DAY_END", visitor.DAY_END),
                             hours=hours if hours is not None else _hours())
    return f"listed visitors still in to {n} guard(s)" if n else None


@periodic("visitor-long-stay", seconds=60)
def long_stay(session: Session, now: datetime, *, hours: float | None = None) -> str | None:
    """A visitor in for longer than the limit (default 4 h): the guards are told once."""
    n = visitor.flag_long_stays(session, now, hours=hours if hours is not None else _hours())
    return f"flagged {n} long stay(s)" if n else None


@periodic("visitor-purge", seconds=3600)
def purge(session: Session, now: datetime, *, retention_days: int | None = None) -> str:
    """Delete visits and bookings older than the retention period (default 180 days); says how many."""
    if retention_days is None:
        try:
            retention_days = int(_env("VISITOR_RETENTION_DAYS", str(visitor.RETENTION_DAYS)))
        except ValueError:
            retention_days = visitor.RETENTION_DAYS
    visits, bookings = visitor.purge(session, now, retention_days=retention_days)
    return f"已删除超过{retention_days}天的访客记录 {visits} 条、预约 {bookings} 条"

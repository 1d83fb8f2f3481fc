"""Visitor jobs: the end-of-day list of visitors still in, the long-stay alert, and the retention purge.

The visitor settings (VISITOR_DAY_END, VISITOR_LONG_STAY_HOURS, VISITOR_RETENTION_DAYS) are declared here as
`VisitorSettings`, which `bot.config.Settings` extends; the scheduler passes them in as keywords (declared on
`@periodic`). Called without them (a test, a shell), a job reads them from the environment or .env.
"""

from __future__ import annotations

from datetime import datetime

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlmodel import Session

from jobs.registry import periodic
from storage import visitor


class VisitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    visitor_day_end: str = "18:00"
    visitor_long_stay_hours: float = 4.0
    visitor_retention_days: int = 180


def _settings() -> VisitorSettings:
    return VisitorSettings()


@periodic("visitor-day-end", seconds=60,
          settings={"day_end": "visitor_day_end", "hours": "visitor_long_stay_hours"})
def day_end(session: Session, now: datetime, *, day_end: str | None = None,
            hours: float | None = None) -> str | None:
    """From the configured end of day (default 18:00), once a day: tell the guards who is still in."""
    if day_end is None or hours is None:
        s = _settings()
        day_end = day_end or s.visitor_day_end
        hours = hours if hours is not None else s.visitor_long_stay_hours
    n = visitor.day_end_list(session, now, day_end=day_end, hours=hours)
    return f"listed visitors still in to {n} guard(s)" if n else None


@periodic("visitor-long-stay", seconds=60, settings={"hours": "visitor_long_stay_hours"})
def long_stay(session: Session, now: datetime, *, hours: float | None = None) -> str | None:
    """A visitor in for longer than the limit (default 4 h): the guards are told once."""
    n = visitor.flag_long_stays(session, now, hours=hours if hours is not None else _settings().visitor_long_stay_hours)
    return f"flagged {n} long stay(s)" if n else None


@periodic("visitor-purge", seconds=3600, settings={"retention_days": "visitor_retention_days"})
def purge(session: Session, now: datetime, *, retention_days: int | None = None) -> str:
    """Delete visits and bookings older than the retention period (default 180 days); says how many."""
    days = retention_days if retention_days is not None else _settings().visitor_retention_days
    visits, bookings = visitor.purge(session, now, retention_days=days)
    return f"已删除超过{days}天的访客记录 {visits} 条、预约 {bookings} 条"

"""The school calendar: school days, holiday-duty days and recurring schedules.

Pure module (no DB, no network).  It imports nothing from the project, only the standard library and
``chinese_calendar`` (PyPI ``chinesecalendar``), which carries the official State Council holiday
arrangements: statutory holidays are days off, and the make-up workdays (调休上班, often a Saturday or a
Sunday) are working days.  A school follows the same calendar, so:

* a *school day* (``工作日`` in the spec) is ``chinese_calendar.is_workday``;
* a *duty day* (节假日行政值日) is every other day: weekends and statutory holidays, make-up workdays excluded.

``chinese_calendar`` only knows the years it was released with (1.11: 2004–2026) and raises
``NotImplementedError`` outside them.  We turn that into :class:`CalendarUnavailable`, with a Chinese message
that can be shown to an admin as it is, so that callers (``houqin init``, ``duty generate``, escalation
timers) refuse clearly instead of guessing that a future 国庆 is a normal week.

All datetimes are naive and in the school's local time (the caller converts).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

import chinese_calendar

__all__ = [
    "WEEKDAY_NAMES",
    "CalendarUnavailable",
    "Recurrence",
    "RecurrenceKind",
    "add_school_days",
    "duty_days",
    "ensure_calendar",
    "is_duty_day",
    "is_school_day",
    "next_school_day",
    "shift_to_school_day",
    "supported_years",
]

RecurrenceKind = Literal["daily", "weekly", "monthly", "workday"]

#: Chinese names of the weekdays, index 0 = Monday (``date.weekday()``).
WEEKDAY_NAMES: tuple[str, ...] = ("一", "二", "三", "四", "五", "六", "日")

# The longest run of consecutive non-school days in any official calendar is about 10 days (Spring Festival
# plus a weekend); a generous bound turns a bug or a corrupt calendar into an error rather than a hang.
_MAX_GAP_DAYS = 60


class CalendarUnavailable(Exception):
    """The official calendar has no data for ``year``; the message is Chinese and user-facing."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(f"日历数据不包含 {year} 年，请升级 chinesecalendar 或手动导入值班表")


def supported_years() -> tuple[int, int]:
    """First and last year (inclusive) the installed ``chinese_calendar`` has data for."""
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


def ensure_calendar(start: date, end: date | None = None) -> None:
    """Raise :class:`CalendarUnavailable` unless every year from ``start`` to ``end`` is covered.

    For callers that must refuse up front (``houqin init``, ``duty generate``) rather than half-way through.
    """
    first, last = supported_years()
    end = start if end is None else end
    for year in range(min(start.year, end.year), max(start.year, end.year) + 1):
        if not first <= year <= last:
            raise CalendarUnavailable(year)


def _as_date(d: date) -> date:
    # ``datetime`` is a subclass of ``date``; normalise so callers may pass either.
    return d.date() if isinstance(d, datetime) else d


def is_school_day(d: date) -> bool:
    """True on a school day: Monday–Friday that is not a statutory holiday, or a make-up workday."""
    d = _as_date(d)
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        raise CalendarUnavailable(d.year) from None


def is_duty_day(d: date) -> bool:
    """True on a holiday-duty day: a weekend or statutory holiday, make-up workdays excluded."""
    return not is_school_day(d)


def next_school_day(d: date, include_today: bool = True) -> date:
    """The first school day on or after ``d`` (strictly after it when ``include_today`` is False)."""
    day = _as_date(d)
    if not include_today:
        day += timedelta(days=1)
    for _ in range(_MAX_GAP_DAYS):
        if is_school_day(day):
            return day
        day += timedelta(days=1)
    raise CalendarUnavailable(day.year)  # pragma: no cover - no real calendar has such a gap


def add_school_days(start: datetime, n: int) -> datetime:
    """The same time of day ``n`` school days after ``start`` (before it when ``n`` is negative).

    Only school days are counted, so "not finished within 2 school days" of a ticket opened on Friday 10:00
    ends on Tuesday 10:00, and one opened on the Saturday before 国庆 ends two school days after the holiday.
    ``start`` itself does not count, whatever kind of day it is; ``n == 0`` returns ``start`` unchanged.
    """
    step = timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    day = start.date()
    gap = 0
    while remaining:
        day += step
        if is_school_day(day):
            remaining -= 1
            gap = 0
        else:
            gap += 1
            if gap > _MAX_GAP_DAYS:  # pragma: no cover - see _MAX_GAP_DAYS
                raise CalendarUnavailable(day.year)
    return start.replace(year=day.year, month=day.month, day=day.day)


def duty_days(start: date, end: date) -> list[date]:
    """Every duty day from ``start`` to ``end``, both inclusive (empty if ``end`` is before ``start``)."""
    start, end = _as_date(start), _as_date(end)
    if end < start:
        return []
    ensure_calendar(start, end)  # refuse the whole range rather than return a partial rota
    out: list[date] = []
    day = start
    while day <= end:
        if is_duty_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def shift_to_school_day(dt: datetime) -> datetime:
    """A built-in event falling on a non-school day moves to the next school day, same time of day."""
    day = next_school_day(dt.date())
    if day == dt.date():
        return dt
    return dt.replace(year=day.year, month=day.month, day=day.day)


@dataclass(frozen=True)
class Recurrence:
    """A repeating time of day: every day, every week on ``weekday``, every month on ``day``, or every school day.

    ``weekday`` is 0 for Monday (as ``date.weekday()``), required for ``weekly``; ``day`` is 1–31, required for
    ``monthly`` (a month without that day is skipped, as a school would not hold "the 31st" on the 30th).
    """

    kind: RecurrenceKind
    at: time
    weekday: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("daily", "weekly", "monthly", "workday"):
            raise ValueError(f"未知的重复方式：{self.kind}")
        if self.kind == "weekly":
            if self.weekday is None or not 0 <= self.weekday <= 6:
                raise ValueError("每周重复需要星期几（0=周一 … 6=周日）")
        elif self.weekday is not None:
            raise ValueError("只有每周重复才需要星期几")
        if self.kind == "monthly":
            if self.day is None or not 1 <= self.day <= 31:
                raise ValueError("每月重复需要日期（1–31日）")
        elif self.day is not None:
            raise ValueError("只有每月重复才需要日期")

    def describe(self) -> str:
        """Chinese description, e.g. ``每天 17:30``, ``每周一 08:00``, ``每月1日 09:00``, ``工作日 07:30``."""
        clock = self.at.strftime("%H:%M:%S" if self.at.second else "%H:%M")
        if self.kind == "daily":
            return f"每天 {clock}"
        if self.kind == "weekly":
            assert self.weekday is not None
            return f"每周{WEEKDAY_NAMES[self.weekday]} {clock}"
        if self.kind == "monthly":
            return f"每月{self.day}日 {clock}"
        return f"工作日 {clock}"

    def _on(self, day: date, like: datetime) -> datetime:
        # Keep the caller's tzinfo (None for the naive local times we normally get) so comparisons work.
        return datetime.combine(day, self.at.replace(tzinfo=None)).replace(tzinfo=like.tzinfo)

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after ``after``.

        ``workday`` consults the official calendar and may raise :class:`CalendarUnavailable`.
        """
        today = after.date()
        if self.kind == "daily":
            candidate = self._on(today, after)
            return candidate if candidate > after else candidate + timedelta(days=1)
        if self.kind == "weekly":
            assert self.weekday is not None
            candidate = self._on(today + timedelta(days=(self.weekday - today.weekday()) % 7), after)
            return candidate if candidate > after else candidate + timedelta(days=7)
        if self.kind == "monthly":
            assert self.day is not None
            year, month = today.year, today.month
            # Day 31 exists in 7 months a year, so a few months always suffice.
            for _ in range(14):
                if self.day <= calendar.monthrange(year, month)[1]:
                    candidate = self._on(date(year, month, self.day), after)
                    if candidate > after:
                        return candidate
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            raise AssertionError("unreachable: every day 1–31 occurs within 14 months")  # pragma: no cover
        # workday
        candidate = self._on(today, after)
        if candidate > after and is_school_day(today):
            return candidate
        return self._on(next_school_day(today, include_today=False), after)

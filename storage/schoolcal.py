"""The school calendar: school days, holiday-duty days and recurring schedules — for any date.

Pure module (no DB, no network).  Two sources, and every answer can say which one it came from:

* **official** — ``chinese_calendar`` (PyPI ``chinesecalendar``) carries the State Council's arrangements:
  statutory holidays off, make-up workdays (调休上班, often a Saturday) on.  It only knows the years it was
  released with (1.11: 2004–2026).
* **provisional** — for any other year, a calendar built from the law (全国年节及纪念日放假办法, as amended for
  2025): 元旦 1/1; 春节 除夕 and 正月初一–初三; 清明 on the solar term; 劳动节 5/1–5/2; 端午 农历五月初五;
  中秋 农历八月十五; 国庆 10/1–10/3; weekends off; no make-up workdays (they are only known when announced).
  Lunar dates and the 清明 solar term come from ``lunar_python`` (pure Python, lunar ↔ solar and the 24 solar
  terms in one well-kept library, no data files).

So the bot never stops for lack of data: a caller that must not guess (``duty generate``) asks
:func:`ensure_official` and refuses unless told to go on provisionally; everyone else gets an answer and, where
it matters, says it is provisional (:data:`PROVISIONAL_NOTE`).  When a newer ``chinesecalendar`` arrives, the
same date flips to official and the records planned on it are re-resolved (``storage.calendar_sync``).

* a *school day* (``工作日`` in the spec) is a working day of that calendar;
* a *duty day* (节假日行政值日) is every other day: weekends and statutory holidays, make-up workdays excluded.

All datetimes are naive and in the school's local time (the caller converts).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal

import chinese_calendar
from chinese_calendar import constants as _official
from lunar_python import Lunar

__all__ = [
    "PROVISIONAL_NOTE",
    "WEEKDAY_NAMES",
    "CalendarUnavailable",
    "DayInfo",
    "Recurrence",
    "RecurrenceKind",
    "add_school_days",
    "day_info",
    "duty_days",
    "ensure_official",
    "is_duty_day",
    "is_provisional",
    "is_school_day",
    "next_school_day",
    "official_years",
    "provisional_days",
    "provisional_holidays",
    "shift_to_school_day",
]

RecurrenceKind = Literal["daily", "weekly", "monthly", "workday"]

#: Chinese names of the weekdays, index 0 = Monday (``date.weekday()``).
WEEKDAY_NAMES: tuple[str, ...] = ("一", "二", "三", "四", "五", "六", "日")

#: Shown wherever a date was worked out from the law rather than the published arrangement.
PROVISIONAL_NOTE = "（暂按法定假日推算，待国务院公布后自动更新）"

# The longest run of consecutive non-school days in any official calendar is about 10 days (Spring Festival
# plus a weekend); a generous bound turns a bug or a corrupt calendar into an error rather than a hang.
_MAX_GAP_DAYS = 60


class CalendarUnavailable(Exception):
    """The official arrangement for ``year`` is not published (not in the installed data); user-facing message."""

    def __init__(self, year: int) -> None:
        self.year = year
        first, last = official_years()
        super().__init__(
            f"{year} 年的放假安排还没有官方数据（已安装的 chinesecalendar 覆盖 {first}–{last} 年）"
        )


@dataclass(frozen=True)
class DayInfo:
    """What kind of day ``day`` is, and whether that is official or provisional."""

    day: date
    school_day: bool
    holiday: str | None  # 春节, 国庆节 … on a statutory holiday, else None
    provisional: bool

    @property
    def duty_day(self) -> bool:
        return not self.school_day


# --------------------------------------------------------------------------------------------------------
# Official data


@lru_cache(maxsize=4)
def _official_span(size: int) -> tuple[int, int]:
    years = [d.year for d in _official.holidays]
    return min(years), max(years)


def official_years() -> tuple[int, int]:
    """First and last year (inclusive) the installed ``chinese_calendar`` has data for.

    Keyed on the size of its table, so data added at run time (an upgrade, or a test) is seen at once.
    """
    return _official_span(len(_official.holidays))


def is_provisional(d: date) -> bool:
    """True when ``d`` lies outside the official data, so its kind of day is worked out from the law."""
    first, last = official_years()
    return not first <= _as_date(d).year <= last


def ensure_official(start: date, end: date | None = None) -> None:
    """Raise :class:`CalendarUnavailable` for the first year from ``start`` to ``end`` without official data.

    For callers that must not guess unless told to (``duty generate`` without ``--provisional``).
    """
    first, last = official_years()
    end = start if end is None else end
    for year in range(min(start.year, end.year), max(start.year, end.year) + 1):
        if not first <= year <= last:
            raise CalendarUnavailable(year)


# --------------------------------------------------------------------------------------------------------
# Provisional calendar from the law


def _lunar(year: int, month: int, day: int) -> date:
    s = Lunar.fromYmd(year, month, day).getSolar()
    return date(s.getYear(), s.getMonth(), s.getDay())


@lru_cache(maxsize=64)
def provisional_holidays(year: int) -> dict[date, str]:
    """The statutory holidays of ``year`` under the law (全国年节及纪念日放假办法, 2025), by date.

    Only the days the law names: no 补休 for a holiday falling on a weekend and no make-up workdays, which the
    State Council sets each year.  The 除夕 of next year's Spring Festival can fall on 12-31 of no year, but the
    除夕 of *this* year's festival can fall in January, so both festivals are looked at.
    """
    named: list[tuple[date, str]] = [(date(year, 1, 1), "元旦")]
    for y in (year, year + 1):
        new_year = _lunar(y, 1, 1)
        named += [(new_year + timedelta(days=offset), "春节") for offset in (-1, 0, 1, 2)]  # 除夕, 初一–初三
    qingming = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    named.append((date(qingming.getYear(), qingming.getMonth(), qingming.getDay()), "清明节"))
    named += [(date(year, 5, 1), "劳动节"), (date(year, 5, 2), "劳动节")]
    named += [(_lunar(year, 5, 5), "端午节"), (_lunar(year, 8, 15), "中秋节")]
    named += [(date(year, 10, day), "国庆节") for day in (1, 2, 3)]
    out: dict[date, str] = {}
    for d, name in named:
        if d.year == year:  # 中秋 can fall in 国庆 (2028-10-03): one day off, both names
            out[d] = f"{out[d]}、{name}" if d in out and name not in out[d] else name
    return dict(sorted(out.items()))


def _as_date(d: date) -> date:
    # ``datetime`` is a subclass of ``date``; normalise so callers may pass either.
    return d.date() if isinstance(d, datetime) else d


def day_info(d: date) -> DayInfo:
    """The kind of day ``d`` is: school day or not, which holiday, official or provisional."""
    d = _as_date(d)
    if is_provisional(d):
        name = provisional_holidays(d.year).get(d)
        return DayInfo(d, school_day=name is None and d.weekday() < 5, holiday=name, provisional=True)
    workday = bool(chinese_calendar.is_workday(d))
    detail = chinese_calendar.get_holiday_detail(d)[1]
    holiday = _CN_NAMES.get(detail) if detail and not workday else None
    return DayInfo(d, school_day=workday, holiday=holiday, provisional=False)


_CN_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节", "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节", "Mid-autumn Festival": "中秋节", "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}  # fmt: skip


def is_school_day(d: date) -> bool:
    """True on a school day: a working day of the official calendar, or of the provisional one beyond it."""
    d = _as_date(d)
    if is_provisional(d):
        return d.weekday() < 5 and d not in provisional_holidays(d.year)
    return bool(chinese_calendar.is_workday(d))


def provisional_days(days: Iterable[date]) -> list[date]:
    """Those of ``days`` whose kind of day is provisional (sorted, without repeats)."""
    return sorted({_as_date(d) for d in days if is_provisional(d)})


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
    raise AssertionError(f"no school day within {_MAX_GAP_DAYS} days of {d}")  # pragma: no cover


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
                raise AssertionError(f"no school day within {_MAX_GAP_DAYS} days of {day}")
    return start.replace(year=day.year, month=day.month, day=day.day)


def duty_days(start: date, end: date) -> list[date]:
    """Every duty day from ``start`` to ``end``, both inclusive (empty if ``end`` is before ``start``)."""
    start, end = _as_date(start), _as_date(end)
    if end < start:
        return []
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

        ``workday`` consults the school calendar (official, or provisional beyond its data).
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

"""storage.schoolcal: school days from the official calendar, duty days, recurrences."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.schoolcal import (
    CalendarUnavailable,
    Recurrence,
    add_school_days,
    duty_days,
    ensure_calendar,
    is_duty_day,
    is_school_day,
    next_school_day,
    shift_to_school_day,
    supported_years,
)

D = date
DT = datetime

# 2026 official arrangements: 元旦 1.1–1.3 (1.4 Sunday make-up); 春节 2.15–2.23 (2.14 and 2.28 Saturday
# make-ups); 中秋 9.25–9.27; 国庆 10.1–10.7 (9.20 Sunday and 10.10 Saturday make-ups).


@pytest.mark.parametrize(
    ("day", "school"),
    [
        (D(2026, 11, 25), True),  # an ordinary Wednesday
        (D(2026, 11, 28), False),  # an ordinary Saturday
        (D(2026, 11, 29), False),  # an ordinary Sunday
        (D(2026, 10, 1), False),  # 国庆
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 9, 20), True),  # Sunday make-up workday
        (D(2026, 10, 10), True),  # Saturday make-up workday
        (D(2026, 9, 25), False),  # 中秋, a Friday
        (D(2026, 2, 14), True),  # Saturday make-up before 春节
        (D(2026, 2, 28), True),  # Saturday make-up after 春节
        (D(2026, 2, 24), True),
        (D(2026, 1, 1), False),  # 元旦
        (D(2026, 1, 4), True),  # Sunday make-up
        (D(2004, 1, 1), False),  # first supported year
    ],
)
def test_is_school_day(day: date, school: bool) -> None:
    assert is_school_day(day) is school
    assert is_duty_day(day) is (not school)


@pytest.mark.parametrize("day", [D(2026, 2, 15) + timedelta(days=i) for i in range(9)])
def test_spring_festival_2026_is_duty(day: date) -> None:
    assert is_duty_day(day)
    assert not is_school_day(day)


def test_is_school_day_accepts_datetime() -> None:
    assert is_school_day(DT(2026, 10, 10, 23, 59)) is True
    assert is_school_day(DT(2026, 10, 1, 8, 0)) is False


def test_duty_days_spring_festival() -> None:
    expected = [
        D(2026, 2, 15) + timedelta(days=i) for i in range(9)
    ]  # 2.15–2.23; the make-up Saturdays are out
    assert duty_days(D(2026, 2, 14), D(2026, 2, 28)) == expected


def test_duty_days_national_day_week() -> None:
    got = duty_days(D(2026, 9, 19), D(2026, 10, 11))
    assert D(2026, 9, 20) not in got and D(2026, 10, 10) not in got
    assert got == [
        D(2026, 9, 19), D(2026, 9, 25), D(2026, 9, 26), D(2026, 9, 27),
        *[D(2026, 10, d) for d in range(1, 8)], D(2026, 10, 11),
    ]  # fmt: skip


def test_duty_days_empty_and_single() -> None:
    assert duty_days(D(2026, 3, 2), D(2026, 3, 1)) == []
    assert duty_days(D(2026, 3, 1), D(2026, 3, 1)) == [D(2026, 3, 1)]
    assert duty_days(D(2026, 3, 2), D(2026, 3, 2)) == []


@pytest.mark.parametrize(
    ("day", "include_today", "expected"),
    [
        (D(2026, 11, 25), True, D(2026, 11, 25)),
        (D(2026, 11, 25), False, D(2026, 11, 26)),
        (D(2026, 11, 27), False, D(2026, 11, 30)),  # Friday → Monday
        (D(2026, 11, 28), True, D(2026, 11, 30)),
        (D(2026, 10, 1), True, D(2026, 10, 8)),
        (D(2026, 9, 30), False, D(2026, 10, 8)),
        (D(2026, 10, 9), False, D(2026, 10, 10)),  # make-up Saturday
        (D(2026, 2, 14), False, D(2026, 2, 24)),  # over 春节
        (D(2026, 9, 19), True, D(2026, 9, 20)),  # make-up Sunday
    ],
)
def test_next_school_day(day: date, include_today: bool, expected: date) -> None:
    assert next_school_day(day, include_today=include_today) == expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (DT(2026, 11, 25, 10, 0), 2, DT(2026, 11, 27, 10, 0)),
        (DT(2026, 11, 27, 10, 0), 2, DT(2026, 12, 1, 10, 0)),  # Friday → Tuesday
        (DT(2026, 11, 28, 9, 30), 2, DT(2026, 12, 1, 9, 30)),  # from a Saturday
        (DT(2026, 9, 30, 15, 0), 2, DT(2026, 10, 9, 15, 0)),  # over 国庆
        (DT(2026, 9, 30, 15, 0), 3, DT(2026, 10, 10, 15, 0)),  # make-up Saturday counts
        (DT(2026, 2, 13, 8, 0), 2, DT(2026, 2, 24, 8, 0)),  # 2.14 make-up, then 春节
        (DT(2026, 11, 25, 10, 0), 0, DT(2026, 11, 25, 10, 0)),
        (DT(2026, 11, 30, 9, 0), -1, DT(2026, 11, 27, 9, 0)),
        (DT(2026, 10, 8, 9, 0), -1, DT(2026, 9, 30, 9, 0)),
    ],
)
def test_add_school_days(start: datetime, n: int, expected: datetime) -> None:
    assert add_school_days(start, n) == expected


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (DT(2026, 11, 25, 16, 0), DT(2026, 11, 25, 16, 0)),
        (DT(2026, 11, 28, 16, 0), DT(2026, 11, 30, 16, 0)),
        (DT(2026, 10, 3, 9, 0), DT(2026, 10, 8, 9, 0)),
        (DT(2026, 2, 15, 10, 0), DT(2026, 2, 24, 10, 0)),
        (DT(2026, 2, 14, 10, 0), DT(2026, 2, 14, 10, 0)),  # make-up Saturday stays
        (DT(2026, 9, 20, 7, 0), DT(2026, 9, 20, 7, 0)),
    ],
)
def test_shift_to_school_day(dt: datetime, expected: datetime) -> None:
    assert shift_to_school_day(dt) == expected


# --- years without data ----------------------------------------------------------------------------------


def test_supported_years() -> None:
    first, last = supported_years()
    assert first <= 2004 and last >= 2026


@pytest.mark.parametrize(
    "call",
    [
        lambda: is_school_day(D(2027, 1, 4)),
        lambda: is_duty_day(D(2027, 10, 1)),
        lambda: next_school_day(D(2026, 12, 31), include_today=False),
        lambda: add_school_days(DT(2026, 12, 30, 9, 0), 3),
        lambda: duty_days(D(2026, 12, 20), D(2027, 1, 10)),
        lambda: shift_to_school_day(DT(2027, 1, 1, 9, 0)),
        lambda: ensure_calendar(D(2026, 9, 1), D(2027, 7, 1)),
        lambda: Recurrence("workday", time(7, 30)).next_after(DT(2026, 12, 31, 8, 0)),
    ],
)
def test_beyond_2026_raises_calendar_unavailable(call: object) -> None:
    with pytest.raises(CalendarUnavailable) as info:
        call()  # type: ignore[operator]
    assert info.value.year == 2027
    assert str(info.value) == "日历数据不包含 2027 年，请升级 chinesecalendar 或手动导入值班表"


def test_before_2004_raises_calendar_unavailable() -> None:
    with pytest.raises(CalendarUnavailable, match="2003 年"):
        is_school_day(D(2003, 6, 2))


def test_duty_days_refuses_partial_range_up_front() -> None:
    # No half rota for 2026 when 2027 is missing: refuse before computing anything.
    with pytest.raises(CalendarUnavailable):
        duty_days(D(2026, 1, 1), D(2027, 12, 31))


def test_ensure_calendar_ok() -> None:
    ensure_calendar(D(2026, 2, 1))
    ensure_calendar(D(2025, 9, 1), D(2026, 7, 1))


# --- Recurrence ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rec", "text"),
    [
        (Recurrence("daily", time(17, 30)), "每天 17:30"),
        (Recurrence("weekly", time(8, 0), weekday=0), "每周一 08:00"),
        (Recurrence("weekly", time(15, 0), weekday=4), "每周五 15:00"),
        (Recurrence("weekly", time(20, 0), weekday=6), "每周日 20:00"),
        (Recurrence("monthly", time(9, 0), day=1), "每月1日 09:00"),
        (Recurrence("monthly", time(9, 0), day=31), "每月31日 09:00"),
        (Recurrence("workday", time(7, 30)), "工作日 07:30"),
    ],
)
def test_describe(rec: Recurrence, text: str) -> None:
    assert rec.describe() == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "weekly", "at": time(8)},
        {"kind": "weekly", "at": time(8), "weekday": 7},
        {"kind": "monthly", "at": time(8)},
        {"kind": "monthly", "at": time(8), "day": 0},
        {"kind": "monthly", "at": time(8), "day": 32},
        {"kind": "daily", "at": time(8), "weekday": 1},
        {"kind": "workday", "at": time(8), "day": 1},
        {"kind": "hourly", "at": time(8)},
    ],
)
def test_recurrence_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Recurrence(**kwargs)  # type: ignore[arg-type]


def test_recurrence_is_frozen_and_hashable() -> None:
    rec = Recurrence("daily", time(8))
    assert rec == Recurrence("daily", time(8)) and hash(rec) == hash(Recurrence("daily", time(8)))
    with pytest.raises(AttributeError):
        rec.at = time(9)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rec", "after", "expected"),
    [
        # daily
        (Recurrence("daily", time(17, 30)), DT(2026, 11, 25, 10, 0), DT(2026, 11, 25, 17, 30)),
        (
            Recurrence("daily", time(17, 30)),
            DT(2026, 11, 25, 17, 30),
            DT(2026, 11, 26, 17, 30),
        ),  # strictly after
        (
            Recurrence("daily", time(17, 30)),
            DT(2026, 12, 31, 18, 0),
            DT(2027, 1, 1, 17, 30),
        ),  # no calendar needed
        (Recurrence("daily", time(0, 0)), DT(2026, 11, 25, 0, 0), DT(2026, 11, 26, 0, 0)),
        # weekly
        (Recurrence("weekly", time(8, 0), weekday=0), DT(2026, 11, 25, 10, 0), DT(2026, 11, 30, 8, 0)),
        (Recurrence("weekly", time(8, 0), weekday=0), DT(2026, 11, 30, 7, 59), DT(2026, 11, 30, 8, 0)),
        (Recurrence("weekly", time(8, 0), weekday=0), DT(2026, 11, 30, 8, 0), DT(2026, 12, 7, 8, 0)),
        (Recurrence("weekly", time(15, 0), weekday=2), DT(2026, 11, 25, 10, 0), DT(2026, 11, 25, 15, 0)),
        (Recurrence("weekly", time(9, 0), weekday=2), DT(2026, 11, 25, 10, 0), DT(2026, 12, 2, 9, 0)),
        (
            Recurrence("weekly", time(8, 0), weekday=3),
            DT(2026, 9, 30, 9, 0),
            DT(2026, 10, 1, 8, 0),
        ),  # holidays too
        # monthly
        (Recurrence("monthly", time(9, 0), day=1), DT(2026, 11, 25, 10, 0), DT(2026, 12, 1, 9, 0)),
        (Recurrence("monthly", time(9, 0), day=1), DT(2026, 12, 1, 9, 0), DT(2027, 1, 1, 9, 0)),
        (Recurrence("monthly", time(9, 0), day=25), DT(2026, 11, 25, 8, 0), DT(2026, 11, 25, 9, 0)),
        (Recurrence("monthly", time(9, 0), day=31), DT(2026, 11, 25, 10, 0), DT(2026, 12, 31, 9, 0)),
        (
            Recurrence("monthly", time(9, 0), day=31),
            DT(2026, 1, 31, 10, 0),
            DT(2026, 3, 31, 9, 0),
        ),  # no 2月31日
        (
            Recurrence("monthly", time(9, 0), day=31),
            DT(2026, 3, 31, 9, 0),
            DT(2026, 5, 31, 9, 0),
        ),  # no 4月31日
        (Recurrence("monthly", time(9, 0), day=30), DT(2026, 1, 30, 12, 0), DT(2026, 3, 30, 9, 0)),
        (Recurrence("monthly", time(9, 0), day=29), DT(2027, 1, 29, 12, 0), DT(2027, 3, 29, 9, 0)),
        (
            Recurrence("monthly", time(9, 0), day=29),
            DT(2028, 1, 29, 12, 0),
            DT(2028, 2, 29, 9, 0),
        ),  # leap year
        # workday
        (Recurrence("workday", time(7, 30)), DT(2026, 11, 25, 7, 0), DT(2026, 11, 25, 7, 30)),
        (Recurrence("workday", time(7, 30)), DT(2026, 11, 25, 7, 30), DT(2026, 11, 26, 7, 30)),
        (Recurrence("workday", time(7, 30)), DT(2026, 11, 27, 8, 0), DT(2026, 11, 30, 7, 30)),
        (Recurrence("workday", time(7, 30)), DT(2026, 9, 30, 8, 0), DT(2026, 10, 8, 7, 30)),  # over 国庆
        (Recurrence("workday", time(7, 30)), DT(2026, 10, 3, 6, 0), DT(2026, 10, 8, 7, 30)),
        (
            Recurrence("workday", time(7, 30)),
            DT(2026, 10, 9, 8, 0),
            DT(2026, 10, 10, 7, 30),
        ),  # make-up Saturday
        (Recurrence("workday", time(7, 30)), DT(2026, 9, 19, 8, 0), DT(2026, 9, 20, 7, 30)),  # make-up Sunday
        (Recurrence("workday", time(7, 30)), DT(2026, 2, 13, 8, 0), DT(2026, 2, 14, 7, 30)),
        (Recurrence("workday", time(7, 30)), DT(2026, 2, 14, 8, 0), DT(2026, 2, 24, 7, 30)),  # over 春节
    ],
)
def test_next_after(rec: Recurrence, after: datetime, expected: datetime) -> None:
    assert rec.next_after(after) == expected


def _occurs_on(rec: Recurrence, day: date) -> bool:
    if rec.kind == "daily":
        return True
    if rec.kind == "weekly":
        return day.weekday() == rec.weekday
    if rec.kind == "monthly":
        return day.day == rec.day
    return is_school_day(day)


_recurrences = st.one_of(
    st.builds(Recurrence, kind=st.just("daily"), at=st.times()),
    st.builds(Recurrence, kind=st.just("workday"), at=st.times()),
    st.builds(Recurrence, kind=st.just("weekly"), at=st.times(), weekday=st.integers(0, 6)),
    st.builds(Recurrence, kind=st.just("monthly"), at=st.times(), day=st.integers(1, 31)),
)


@settings(max_examples=150, deadline=None)
@given(rec=_recurrences, after=st.datetimes(min_value=DT(2025, 1, 1), max_value=DT(2026, 12, 20)))
def test_next_after_is_the_first_occurrence(rec: Recurrence, after: datetime) -> None:
    got = rec.next_after(after)
    assert got > after
    assert got.time() == rec.at
    assert _occurs_on(rec, got.date())
    # nothing earlier qualifies
    day = after.date()
    while day < got.date():
        if _occurs_on(rec, day):
            assert datetime.combine(day, rec.at) <= after
        day += timedelta(days=1)

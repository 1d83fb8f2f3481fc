"""storage.schoolcal: school days from the official calendar, duty days, recurrences."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.schoolcal import (
    CalendarUnavailable,
    DayInfo,
    Recurrence,
    add_school_days,
    day_info,
    duty_days,
    ensure_official,
    is_duty_day,
    is_provisional,
    is_school_day,
    next_school_day,
    official_years,
    provisional_days,
    provisional_holidays,
    shift_to_school_day,
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


# --- years without data: provisional, from the law ------------------------------------------------------

# The provisional calendar for 2027 (全国年节及纪念日放假办法 as amended for 2025): 元旦 1.1 (Friday); 春节 除夕
# 2.5 + 初一–初三 2.6–2.8; 清明 4.5; 劳动节 5.1–5.2 (a weekend); 端午 6.9; 中秋 9.15; 国庆 10.1–10.3.
HOLIDAYS_2027 = {
    D(2027, 1, 1): "元旦", D(2027, 2, 5): "春节", D(2027, 2, 6): "春节", D(2027, 2, 7): "春节",
    D(2027, 2, 8): "春节", D(2027, 4, 5): "清明节", D(2027, 5, 1): "劳动节", D(2027, 5, 2): "劳动节",
    D(2027, 6, 9): "端午节", D(2027, 9, 15): "中秋节", D(2027, 10, 1): "国庆节", D(2027, 10, 2): "国庆节",
    D(2027, 10, 3): "国庆节",
}  # fmt: skip


def test_official_years() -> None:
    first, last = official_years()
    assert first <= 2004 and last >= 2026


def test_provisional_holidays_2027_follow_the_law() -> None:
    assert provisional_holidays(2027) == HOLIDAYS_2027


@pytest.mark.parametrize(
    ("year", "new_year_eve", "qingming", "dragon_boat", "mid_autumn"),
    [
        (2028, D(2028, 1, 25), D(2028, 4, 4), D(2028, 5, 28), D(2028, 10, 3)),
        (2029, D(2029, 2, 12), D(2029, 4, 4), D(2029, 6, 16), D(2029, 9, 22)),
        (2030, D(2030, 2, 2), D(2030, 4, 5), D(2030, 6, 5), D(2030, 9, 12)),
    ],
)
def test_lunar_and_solar_term_holidays(year: int, new_year_eve: date, qingming: date, dragon_boat: date,
                                       mid_autumn: date) -> None:
    h = provisional_holidays(year)
    assert [d for d, name in h.items() if name == "春节"] == [new_year_eve + timedelta(days=i) for i in range(4)]
    assert h[qingming] == "清明节" and h[dragon_boat] == "端午节" and "中秋节" in h[mid_autumn]
    # 1 + 4 + 1 + 2 + 1 + 1 + 3 days, less the overlap of 中秋 with 国庆 in 2028 (10.3: one day, both names)
    assert len(h) == (12 if year == 2028 else 13)
    if year == 2028:
        assert h[D(2028, 10, 3)] == "中秋节、国庆节"


def test_a_spring_festival_eve_in_the_previous_year_belongs_to_that_year() -> None:
    # 2050: 春节 is 1.23, its 除夕 1.22 — both in 2050; a festival starting on 1.1 would put 除夕 on 12.31.
    for year in range(2027, 2100):
        for d, name in provisional_holidays(year).items():
            assert d.year == year, (year, d, name)


@pytest.mark.parametrize(
    ("day", "school", "holiday"),
    [
        (D(2027, 1, 1), False, "元旦"),  # a Friday
        (D(2027, 1, 4), True, None),  # the Monday after
        (D(2027, 2, 5), False, "春节"),  # 除夕, a Friday
        (D(2027, 2, 8), False, "春节"),  # 初三, a Monday
        (D(2027, 2, 9), True, None),
        (D(2027, 5, 1), False, "劳动节"),  # a Saturday: no 补休 is guessed
        (D(2027, 5, 3), True, None),
        (D(2027, 10, 4), True, None),  # 国庆 is 10.1–10.3 by law; the rest comes only with the official data
        (D(2027, 10, 9), False, None),  # a Saturday: no make-up workday is guessed
        (D(2030, 12, 31), True, None),
    ],
)
def test_provisional_day_info(day: date, school: bool, holiday: str | None) -> None:
    info = day_info(day)
    assert info == DayInfo(day, school_day=school, holiday=holiday, provisional=True)
    assert is_school_day(day) is school and is_duty_day(day) is (not school)
    assert is_provisional(day)


def test_official_day_info() -> None:
    assert day_info(D(2026, 10, 1)) == DayInfo(D(2026, 10, 1), school_day=False, holiday="国庆节", provisional=False)
    assert day_info(D(2026, 10, 10)) == DayInfo(D(2026, 10, 10), school_day=True, holiday=None, provisional=False)
    assert day_info(D(2026, 11, 28)) == DayInfo(D(2026, 11, 28), school_day=False, holiday=None, provisional=False)
    assert not is_provisional(DT(2026, 12, 31, 23, 59))


@pytest.mark.parametrize(
    ("call", "expected"),
    [  # across the year end, from the official data into the provisional calendar: never an error
        (lambda: next_school_day(D(2026, 12, 31), include_today=False), D(2027, 1, 4)),
        (lambda: add_school_days(DT(2026, 12, 30, 9, 0), 3), DT(2027, 1, 5, 9, 0)),
        (lambda: add_school_days(DT(2027, 2, 4, 10, 0), 2), DT(2027, 2, 10, 10, 0)),  # over 春节
        (lambda: duty_days(D(2026, 12, 31), D(2027, 1, 3)), [D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3)]),
        (lambda: shift_to_school_day(DT(2027, 1, 1, 9, 0)), DT(2027, 1, 4, 9, 0)),
        (lambda: shift_to_school_day(DT(2030, 10, 1, 9, 0)), DT(2030, 10, 4, 9, 0)),
        (lambda: Recurrence("workday", time(7, 30)).next_after(DT(2026, 12, 31, 8, 0)), DT(2027, 1, 4, 7, 30)),
        (lambda: Recurrence("workday", time(7, 30)).next_after(DT(2099, 12, 31, 8, 0)), DT(2100, 1, 4, 7, 30)),
    ],
)
def test_beyond_the_data_the_calendar_keeps_answering(call: object, expected: object) -> None:
    assert call() == expected  # type: ignore[operator]


def test_every_day_up_to_2030_has_an_answer() -> None:
    day, school = D(2026, 1, 1), 0
    while day <= D(2030, 12, 31):
        school += is_school_day(day)
        day += timedelta(days=1)
    assert 1200 < school < 1300  # about 250 school days a year, five years


def test_ensure_official_refuses_a_year_without_data() -> None:
    ensure_official(D(2026, 2, 1))
    ensure_official(D(2025, 9, 1), D(2026, 7, 1))
    with pytest.raises(CalendarUnavailable) as info:
        ensure_official(D(2026, 9, 1), D(2027, 7, 1))
    assert info.value.year == 2027
    assert "2027 年的放假安排还没有官方数据" in str(info.value) and "2026" in str(info.value)


def test_provisional_days() -> None:
    assert provisional_days([D(2027, 1, 1), DT(2027, 1, 1, 9, 0), D(2026, 12, 31), D(2028, 5, 1)]) == [
        D(2027, 1, 1), D(2028, 5, 1)]


def test_provisional_against_official_2020_2026() -> None:
    """How wrong the law-only calendar would have been in the years the official data covers.

    Its errors are of two kinds the law cannot know: make-up workdays (调休上班, mostly Saturdays) and the extra
    days off bridging a holiday to a weekend. The holidays the law names are never wrong since 2025, when the
    law took its current form (除夕 and 5.2 were workdays before).
    """
    wrong = {}
    for year in range(2020, 2027):
        law = provisional_holidays(year)
        days = [D(year, 1, 1) + timedelta(days=i) for i in range(366 if calendar.isleap(year) else 365)]
        guessed = {d: d.weekday() < 5 and d not in law for d in days}
        wrong[year] = [d for d in days if guessed[d] != chinese_calendar.is_workday(d)]
        if year >= 2025:
            assert all(not chinese_calendar.is_workday(d) for d in law), year
    print({y: len(w) for y, w in wrong.items()})
    assert {y: len(w) for y, w in wrong.items()} == {2020: 18, 2021: 19, 2022: 17, 2023: 16, 2024: 18, 2025: 11,
                                                     2026: 15}


def test_an_upgrade_is_seen_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Official data appearing at run time (a newer chinesecalendar) turns provisional dates official."""
    assert is_provisional(D(2027, 10, 9)) and is_school_day(D(2027, 10, 9)) is False
    add_official_2027(monkeypatch)
    assert official_years()[1] == 2027
    assert not is_provisional(D(2027, 10, 9))
    assert is_school_day(D(2027, 10, 9)) is True  # now a make-up workday
    assert is_school_day(D(2027, 10, 6)) is False


def add_official_2027(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for the State Council's 2027 arrangement: 国庆 10.1–10.7 with a make-up Saturday 10.9."""
    from chinese_calendar import constants

    holidays = dict(constants.holidays)
    workdays = dict(constants.workdays)
    for d, name in HOLIDAYS_2027.items():
        holidays[d] = name
    for day in range(1, 8):
        holidays[D(2027, 10, day)] = "National Day"
    workdays[D(2027, 10, 9)] = "National Day"
    for name, table in (("holidays", holidays), ("workdays", workdays)):
        monkeypatch.setattr(constants, name, table)
        monkeypatch.setattr(chinese_calendar.utils, name, table)


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

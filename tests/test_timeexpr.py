"""handlers.timeexpr: Chinese time expressions (moments, spans, recurrences, and splitting them off a message)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.timeexpr import (
    Span,
    TimeParseError,
    parse_moment,
    parse_recurrence,
    parse_span,
    split_time_prefix,
)
from storage.schoolcal import Recurrence

NOW = datetime(2026, 11, 25, 10, 0)  # a Wednesday morning
DT = datetime
CJK = re.compile(r"[\u4e00-\u9fff]")


def _refused_in_chinese(parse: Callable[[str, datetime], object], text: str) -> None:
    """The parser refuses the text with a TimeParseError (a ValueError) whose message is Chinese."""
    with pytest.raises(TimeParseError) as info:
        parse(text, NOW)
    _chinese_error(info.value)


def _chinese_error(exc: BaseException) -> None:
    assert isinstance(exc, TimeParseError) and isinstance(exc, ValueError)
    assert CJK.search(str(exc)), str(exc)


# --- parse_moment ----------------------------------------------------------------------------------------

MOMENTS: list[tuple[str, datetime]] = [
    # absolute dates
    ("2026-12-01 09:00", DT(2026, 12, 1, 9, 0)),
    ("2026/12/1 9:00", DT(2026, 12, 1, 9, 0)),
    ("2026.12.1 9:00", DT(2026, 12, 1, 9, 0)),
    ("2027-01-05 07:45:30", DT(2027, 1, 5, 7, 45, 30)),
    ("2026年12月1日 9:00", DT(2026, 12, 1, 9, 0)),
    ("12-01 09:00", DT(2026, 12, 1, 9, 0)),
    ("12/1 9:00", DT(2026, 12, 1, 9, 0)),
    ("12月1日 9:00", DT(2026, 12, 1, 9, 0)),
    ("12月1日9:00", DT(2026, 12, 1, 9, 0)),
    ("12月1日9点", DT(2026, 12, 1, 9, 0)),
    ("12月1日9点半", DT(2026, 12, 1, 9, 30)),
    ("12月1日 9点30分", DT(2026, 12, 1, 9, 30)),
    ("12月1日9时30分", DT(2026, 12, 1, 9, 30)),
    ("12月1日9点一刻", DT(2026, 12, 1, 9, 15)),
    ("12月1日 下午3点", DT(2026, 12, 1, 15, 0)),
    ("12月1号", DT(2026, 12, 1, 8, 0)),  # a date alone: 08:00
    ("12月1日", DT(2026, 12, 1, 8, 0)),
    ("12月1", DT(2026, 12, 1, 8, 0)),
    ("十二月一日 九点", DT(2026, 12, 1, 9, 0)),  # as speech recognition writes it
    # year inference: this year, or next year if more than a day ago
    ("11月25日 9:00", DT(2026, 11, 25, 9, 0)),
    ("11月24日", DT(2026, 11, 24, 8, 0)),  # yesterday: still this year
    ("11月23日", DT(2027, 11, 23, 8, 0)),
    ("1月5日 8:00", DT(2027, 1, 5, 8, 0)),
    ("2月29日", DT(2028, 2, 29, 8, 0)),  # next leap year
    # relative days
    ("明天8:00", DT(2026, 11, 26, 8, 0)),
    ("明天 8:00", DT(2026, 11, 26, 8, 0)),
    ("明天 8：00", DT(2026, 11, 26, 8, 0)),
    ("明天８：００", DT(2026, 11, 26, 8, 0)),  # full-width digits tolerated
    ("明日8点", DT(2026, 11, 26, 8, 0)),
    ("今天下午3点", DT(2026, 11, 25, 15, 0)),
    ("今天 下午 3点", DT(2026, 11, 25, 15, 0)),
    ("今天8:00", DT(2026, 11, 25, 8, 0)),  # an explicit date is not moved, even if past
    ("今晚8点", DT(2026, 11, 25, 20, 0)),
    ("今晚", DT(2026, 11, 25, 19, 0)),
    ("明早7点", DT(2026, 11, 26, 7, 0)),
    ("明晚9点半", DT(2026, 11, 26, 21, 30)),
    ("后天上午", DT(2026, 11, 27, 8, 0)),
    ("后天下午", DT(2026, 11, 27, 14, 0)),
    ("后天晚上", DT(2026, 11, 27, 19, 0)),
    ("后天中午", DT(2026, 11, 27, 12, 0)),
    ("大后天", DT(2026, 11, 28, 8, 0)),
    ("明天", DT(2026, 11, 26, 8, 0)),
    ("明天早上", DT(2026, 11, 26, 8, 0)),
    ("明天凌晨3点", DT(2026, 11, 26, 3, 0)),
    ("明天凌晨12点", DT(2026, 11, 26, 0, 0)),
    ("明天中午12点", DT(2026, 11, 26, 12, 0)),
    ("明天中午1点", DT(2026, 11, 26, 13, 0)),
    ("明天上午11点", DT(2026, 11, 26, 11, 0)),
    ("明天上午12点", DT(2026, 11, 26, 12, 0)),
    ("明天下午12点", DT(2026, 11, 26, 12, 0)),
    ("明天下午15:00", DT(2026, 11, 26, 15, 0)),  # already 24-hour
    ("明天晚上8点", DT(2026, 11, 26, 20, 0)),
    ("明天晚上12点", DT(2026, 11, 27, 0, 0)),  # midnight after 明天
    ("明天晚上1点", DT(2026, 11, 27, 1, 0)),
    ("明天傍晚6点", DT(2026, 11, 26, 18, 0)),
    ("明天三点一刻", DT(2026, 11, 26, 15, 15)),
    ("明天十点十五分", DT(2026, 11, 26, 10, 15)),
    ("明天九点零五", DT(2026, 11, 26, 9, 5)),
    ("明天9点整", DT(2026, 11, 26, 9, 0)),
    ("明天9点钟", DT(2026, 11, 26, 9, 0)),
    ("明天24:00", DT(2026, 11, 27, 0, 0)),
    # weekdays
    ("周五 14:00", DT(2026, 11, 27, 14, 0)),
    ("周五14:00", DT(2026, 11, 27, 14, 0)),
    ("星期五 14:00", DT(2026, 11, 27, 14, 0)),
    ("礼拜五 14:00", DT(2026, 11, 27, 14, 0)),
    ("周三 14:00", DT(2026, 11, 25, 14, 0)),  # today, still ahead
    ("周三 9:00", DT(2026, 12, 2, 9, 0)),  # today but past: next week
    ("周一 9:00", DT(2026, 11, 30, 9, 0)),
    ("周日", DT(2026, 11, 29, 8, 0)),
    ("星期天下午", DT(2026, 11, 29, 14, 0)),
    ("下周一 9:00", DT(2026, 11, 30, 9, 0)),
    ("下周五 9:00", DT(2026, 12, 4, 9, 0)),  # next calendar week, not this Friday
    ("下个星期三", DT(2026, 12, 2, 8, 0)),
    ("下下周一 9:00", DT(2026, 12, 7, 9, 0)),
    ("这周五 9:00", DT(2026, 11, 27, 9, 0)),
    ("本周一 9:00", DT(2026, 11, 23, 9, 0)),  # this week's, even if past
    # relative offsets
    ("10分钟后", DT(2026, 11, 25, 10, 10)),
    ("10分钟之后", DT(2026, 11, 25, 10, 10)),
    ("30秒后", DT(2026, 11, 25, 10, 0, 30)),
    ("2小时后", DT(2026, 11, 25, 12, 0)),
    ("两个小时以后", DT(2026, 11, 25, 12, 0)),
    ("半小时后", DT(2026, 11, 25, 10, 30)),
    ("1个半小时后", DT(2026, 11, 25, 11, 30)),
    ("3天后", DT(2026, 11, 28, 10, 0)),
    ("2周后", DT(2026, 12, 9, 10, 0)),
    # a time alone: today, or tomorrow if already past
    ("9:00", DT(2026, 11, 26, 9, 0)),
    ("9：00", DT(2026, 11, 26, 9, 0)),
    ("10:00", DT(2026, 11, 26, 10, 0)),  # exactly now counts as past
    ("10:01", DT(2026, 11, 25, 10, 1)),
    ("21:30", DT(2026, 11, 25, 21, 30)),
    ("下午3点", DT(2026, 11, 25, 15, 0)),
    ("3点半", DT(2026, 11, 25, 15, 30)),  # 1–5点 without 上午 is the afternoon
    ("3:30", DT(2026, 11, 26, 3, 30)),  # but a colon time is 24-hour
    ("上午11点", DT(2026, 11, 25, 11, 0)),
    ("上午9点", DT(2026, 11, 26, 9, 0)),
    ("8点", DT(2026, 11, 26, 8, 0)),
    ("中午12点", DT(2026, 11, 25, 12, 0)),
    ("晚上8点", DT(2026, 11, 25, 20, 0)),
    ("下午", DT(2026, 11, 25, 14, 0)),
    ("上午", DT(2026, 11, 26, 8, 0)),
    ("  明天  8:00  ", DT(2026, 11, 26, 8, 0)),
]


@pytest.mark.parametrize(("text", "expected"), MOMENTS)
def test_parse_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_parse_moment_keeps_tzinfo_of_now() -> None:
    from datetime import timezone

    now = NOW.replace(tzinfo=timezone(timedelta(hours=8)))
    assert parse_moment("明天8:00", now) == DT(2026, 11, 26, 8, 0, tzinfo=now.tzinfo)
    assert parse_moment("10分钟后", now) == now + timedelta(minutes=10)


def test_year_rolls_over_at_new_year() -> None:
    new_years_eve = DT(2026, 12, 31, 20, 0)
    assert parse_moment("1月2日 9:00", new_years_eve) == DT(2027, 1, 2, 9, 0)
    assert parse_moment("12月30日 9:00", new_years_eve) == DT(2026, 12, 30, 9, 0)  # a day ago: kept
    assert parse_moment("明天8:00", new_years_eve) == DT(2027, 1, 1, 8, 0)
    assert parse_moment("周五 9:00", new_years_eve) == DT(2027, 1, 1, 9, 0)


BAD_MOMENTS = [
    "",
    "   ",
    "开会",
    "明天开会",
    "每天17:30",  # a recurrence is not a moment
    "明天全天",  # a span is not a moment
    "2026-02-30 09:00",
    "2026-13-01",
    "2月30日",
    "13月1日",
    "12月32日",
    "25:00",
    "明天 9:60",
    "24:30",
    "明天30点",
    "0分钟后",
    "周八",
    "2026-12-0109:00",
    "12月19点",  # 12月1日9点 or 12月19日? ask
    "明天8:00 开会",  # trailing text
    "9",
]


@pytest.mark.parametrize("text", BAD_MOMENTS)
def test_parse_moment_rejects(text: str) -> None:
    _refused_in_chinese(parse_moment, text)


def test_error_message_shows_examples() -> None:
    with pytest.raises(TimeParseError) as info:
        parse_moment("开会", NOW)
    assert "「开会」" in str(info.value) and "明天8:00" in str(info.value)
    with pytest.raises(TimeParseError, match="日期不存在：2月30日"):
        parse_moment("2月30日", NOW)
    with pytest.raises(TimeParseError, match="时间不存在"):
        parse_moment("25:00", NOW)


# --- parse_span ------------------------------------------------------------------------------------------

SPANS: list[tuple[str, datetime, datetime]] = [
    ("今天14:00-16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天 14:00 - 16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天14:00~16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天14:00～16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天14:00—16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天14:00到16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("今天14:00至16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("明天8:00-12:00", DT(2026, 11, 26, 8), DT(2026, 11, 26, 12)),
    ("明天8:00-明天17:00", DT(2026, 11, 26, 8), DT(2026, 11, 26, 17)),
    ("明天8:00-后天17:00", DT(2026, 11, 26, 8), DT(2026, 11, 27, 17)),
    ("12月1日 8:00-12月2日 17:00", DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
    ("12月1日 8:00 - 12月2日 17:00", DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
    ("2026-12-01 08:00-2026-12-02 17:00", DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
    ("12-01 08:00-12-02 17:00", DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
    ("今天下午", DT(2026, 11, 25, 12), DT(2026, 11, 25, 18)),
    ("今天上午", DT(2026, 11, 25, 8), DT(2026, 11, 25, 12)),
    ("今晚", DT(2026, 11, 25, 18), DT(2026, 11, 25, 22)),
    ("明天中午", DT(2026, 11, 26, 12), DT(2026, 11, 26, 14)),
    ("明天全天", DT(2026, 11, 26, 7), DT(2026, 11, 26, 18)),
    ("明天整天", DT(2026, 11, 26, 7), DT(2026, 11, 26, 18)),
    ("明天", DT(2026, 11, 26, 7), DT(2026, 11, 26, 18)),
    ("周五", DT(2026, 11, 27, 7), DT(2026, 11, 27, 18)),
    ("周三", DT(2026, 11, 25, 7), DT(2026, 11, 25, 18)),  # today: not over yet
    ("周三上午", DT(2026, 11, 25, 8), DT(2026, 11, 25, 12)),
    ("12月1日", DT(2026, 12, 1, 7), DT(2026, 12, 1, 18)),
    ("12月1日至12月3日", DT(2026, 12, 1, 7), DT(2026, 12, 3, 18)),
    ("12月1日-12月3日", DT(2026, 12, 1, 7), DT(2026, 12, 3, 18)),
    ("12-01-12-03", DT(2026, 12, 1, 7), DT(2026, 12, 3, 18)),
    ("12月30日至1月2日", DT(2026, 12, 30, 7), DT(2027, 1, 2, 18)),
    ("周五到下周一", DT(2026, 11, 27, 7), DT(2026, 11, 30, 18)),
    ("明天上午-后天下午", DT(2026, 11, 26, 8), DT(2026, 11, 27, 18)),
    ("明天8:00-后天", DT(2026, 11, 26, 8), DT(2026, 11, 27, 18)),
    ("下午2点到4点", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),  # the end inherits 下午
    ("晚上7点到9点", DT(2026, 11, 25, 19), DT(2026, 11, 25, 21)),
    ("今晚8点到12点", DT(2026, 11, 25, 20), DT(2026, 11, 26, 0)),
    ("14:00-16:00", DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)),
    ("8:00-9:00", DT(2026, 11, 26, 8), DT(2026, 11, 26, 9)),  # no date and already over: tomorrow
    ("8:00-12:00", DT(2026, 11, 25, 8), DT(2026, 11, 25, 12)),  # not over yet: today
]


@pytest.mark.parametrize(("text", "start", "end"), SPANS)
def test_parse_span(text: str, start: datetime, end: datetime) -> None:
    assert parse_span(text, NOW) == Span(start, end)


BAD_SPANS = [
    "",
    "看病",
    "明天8:00",  # a moment, not a span
    "10分钟后",
    "今天16:00-14:00",
    "今天14:00-14:00",
    "明天17:00-明天8:00",
    "12月3日至12月1日",
    "12月1日-11月30日",  # a typo, not a 364-day span
    "今天14:00-",
    "-16:00",
    "今天14:00-16:60",
    "2月30日-3月2日",
    "每天17:30",
]


@pytest.mark.parametrize("text", BAD_SPANS)
def test_parse_span_rejects(text: str) -> None:
    _refused_in_chinese(parse_span, text)


@pytest.mark.parametrize(
    "text", ["今天16:00-14:00", "今天14:00-14:00", "明天17:00-明天8:00", "12月3日至12月1日"]
)
def test_end_before_start_message(text: str) -> None:
    with pytest.raises(TimeParseError, match="结束时间早于开始时间"):
        parse_span(text, NOW)


def test_span_requires_end_after_start() -> None:
    with pytest.raises(TimeParseError, match="结束时间早于开始时间"):
        Span(DT(2026, 1, 1, 10), DT(2026, 1, 1, 9))


def test_moment_as_span_asks_for_the_end() -> None:
    with pytest.raises(TimeParseError, match="结束时间"):
        parse_span("明天8:00", NOW)


# --- parse_recurrence ------------------------------------------------------------------------------------

RECURRENCES: list[tuple[str, Recurrence]] = [
    ("每天17:30", Recurrence("daily", time(17, 30))),
    ("每天 17:30", Recurrence("daily", time(17, 30))),
    ("每日 7:00", Recurrence("daily", time(7, 0))),
    ("每天晚上9点", Recurrence("daily", time(21, 0))),
    ("每天下午", Recurrence("daily", time(14, 0))),
    ("每周一 8:00", Recurrence("weekly", time(8, 0), weekday=0)),
    ("每周一8:00", Recurrence("weekly", time(8, 0), weekday=0)),
    ("每周五下午3点", Recurrence("weekly", time(15, 0), weekday=4)),
    ("每星期三 16:00", Recurrence("weekly", time(16, 0), weekday=2)),
    ("每个星期日 20:00", Recurrence("weekly", time(20, 0), weekday=6)),
    ("每周日 晚上8点", Recurrence("weekly", time(20, 0), weekday=6)),
    ("每周天 9:00", Recurrence("weekly", time(9, 0), weekday=6)),
    ("每月1日 9:00", Recurrence("monthly", time(9, 0), day=1)),
    ("每月15号9点", Recurrence("monthly", time(9, 0), day=15)),
    ("每个月31日 10:00", Recurrence("monthly", time(10, 0), day=31)),
    ("每月1 9:00", Recurrence("monthly", time(9, 0), day=1)),
    ("工作日 7:30", Recurrence("workday", time(7, 30))),
    ("工作日7:30", Recurrence("workday", time(7, 30))),
    ("每个工作日7:30", Recurrence("workday", time(7, 30))),
    ("每工作日 7:30", Recurrence("workday", time(7, 30))),
    ("每天 17：30", Recurrence("daily", time(17, 30))),
]


@pytest.mark.parametrize(("text", "expected"), RECURRENCES)
def test_parse_recurrence(text: str, expected: Recurrence) -> None:
    assert parse_recurrence(text, NOW) == expected


@pytest.mark.parametrize(
    "text", ["明天8:00", "2026-12-01 09:00", "每人交表", "开会", "", "周一 8:00", "10分钟后"]
)
def test_parse_recurrence_none(text: str) -> None:
    assert parse_recurrence(text, NOW) is None


@pytest.mark.parametrize(
    "text",
    [
        "每天",
        "每周一",
        "工作日",
        "每月32日 9:00",
        "每月0日 9:00",
        "每天25:00",
        "每天晚上1点",
        "每天 检查",
        "每周一 明天8:00",
    ],
)
def test_parse_recurrence_rejects(text: str) -> None:
    _refused_in_chinese(parse_recurrence, text)


def test_recurrence_roundtrip_through_describe() -> None:
    for _, rec in RECURRENCES:
        assert parse_recurrence(rec.describe(), NOW) == rec


# --- split_time_prefix -----------------------------------------------------------------------------------

SPLITS: list[tuple[str, str, object, str]] = [
    # one token
    ("明天8:00 开会", "moment", DT(2026, 11, 26, 8), "开会"),
    ("10分钟后 喝水", "when", DT(2026, 11, 25, 10, 10), "喝水"),
    ("每天17:30 交日志 @门卫", "when", Recurrence("daily", time(17, 30)), "交日志 @门卫"),
    ("今天14:00-16:00 看病", "span", Span(DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)), "看病"),
    ("明天全天 发烧", "span", Span(DT(2026, 11, 26, 7), DT(2026, 11, 26, 18)), "发烧"),
    ("今天下午 牙科复查", "span", Span(DT(2026, 11, 25, 12), DT(2026, 11, 25, 18)), "牙科复查"),
    ("12月1日至12月3日 回老家", "span", Span(DT(2026, 12, 1, 7), DT(2026, 12, 3, 18)), "回老家"),
    ("明天 检查消防栓", "when", DT(2026, 11, 26, 8), "检查消防栓"),
    ("周五 检查3楼", "moment", DT(2026, 11, 27, 8), "检查3楼"),
    ("后天 后勤例会", "moment", DT(2026, 11, 27, 8), "后勤例会"),
    # two tokens
    ("2026-12-01 09:00 消防演练", "when", DT(2026, 12, 1, 9), "消防演练"),
    ("12月1日 9:00 消防演练 @全体", "moment", DT(2026, 12, 1, 9), "消防演练 @全体"),
    ("每周一 8:00 升旗仪式 @全体", "when", Recurrence("weekly", time(8), weekday=0), "升旗仪式 @全体"),
    ("每月1日 9:00 财产检查", "when", Recurrence("monthly", time(9), day=1), "财产检查"),
    ("工作日 7:30 晨检", "when", Recurrence("workday", time(7, 30)), "晨检"),
    ("周五 14:00 食堂管理委员会会议", "moment", DT(2026, 11, 27, 14), "食堂管理委员会会议"),
    ("明天 8:00-12:00 家中有事", "span", Span(DT(2026, 11, 26, 8), DT(2026, 11, 26, 12)), "家中有事"),
    ("今天 下午 看病", "span", Span(DT(2026, 11, 25, 12), DT(2026, 11, 25, 18)), "看病"),
    ("2026-12-01 09:00", "moment", DT(2026, 12, 1, 9), ""),
    # three tokens
    ("明天 下午 3点 开会", "moment", DT(2026, 11, 26, 15), "开会"),
    ("每周五 下午 3点 大扫除", "when", Recurrence("weekly", time(15), weekday=4), "大扫除"),
    ("12月1日 8:00-12月2日 17:00 看病", "span", Span(DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)), "看病"),
    (
        "12月1日 8:00 - 12月2日 17:00 看病 住院",
        "span",
        Span(DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
        "看病 住院",
    ),
    (
        "2026-12-01 08:00 到 2026-12-02 17:00 研学",
        "span",
        Span(DT(2026, 12, 1, 8), DT(2026, 12, 2, 17)),
        "研学",
    ),
    # glued to the text
    ("明天8:00开会", "moment", DT(2026, 11, 26, 8), "开会"),
    ("每天17:30交日志", "when", Recurrence("daily", time(17, 30)), "交日志"),
    ("今天14:00-16:00看病", "span", Span(DT(2026, 11, 25, 14), DT(2026, 11, 25, 16)), "看病"),
    ("后天后勤会", "moment", DT(2026, 11, 27, 8), "后勤会"),
    ("明天三点开会", "moment", DT(2026, 11, 26, 15), "开会"),
    ("明天下雨停课", "moment", DT(2026, 11, 26, 8), "下雨停课"),  # 下雨 is not 下午
    # spacing
    ("  明天   8:00   开会  ", "moment", DT(2026, 11, 26, 8), "开会"),
    ("明天\u30008:00\u3000开会", "moment", DT(2026, 11, 26, 8), "开会"),
]


@pytest.mark.parametrize(("text", "kind", "value", "rest"), SPLITS)
def test_split_time_prefix(text: str, kind: str, value: object, rest: str) -> None:
    assert split_time_prefix(text, NOW, kind) == (value, rest)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("开会 明天8:00", "moment", "无法识别时间「开会」"),
        ("看病", "span", "无法识别时间段"),
        ("", "when", "无法识别时间"),
        ("每天 检查", "when", "请写明几点"),  # looks like a recurrence, lacks the time
        ("每周八 开会", "when", "无法识别重复时间"),
        ("明天 8:00 看病", "span", "结束时间"),  # a moment where a span is wanted
        ("明天8:00看病", "span", "结束时间"),
        ("今天 16:00-14:00 看病", "span", "结束时间早于开始时间"),  # not silently "今天全天"
        ("2月30日 9:00 开会", "moment", "日期不存在"),
        ("明天 25:00 开会", "when", "时间不存在"),
    ],
)
def test_split_time_prefix_errors(text: str, kind: str, message: str) -> None:
    with pytest.raises(TimeParseError, match=message) as info:
        split_time_prefix(text, NOW, kind)  # type: ignore[arg-type]
    _chinese_error(info.value)


def test_split_time_prefix_at_most_three_tokens() -> None:
    # "明天 下午 3点 半" would be a fourth piece: it is not taken, and 3点 stands.
    value, rest = split_time_prefix("明天 下午 3点 半 开会", NOW, "moment")
    assert (value, rest) == (DT(2026, 11, 26, 15), "半 开会")


def test_split_long_message_is_fast_and_correct() -> None:
    text = "明天8:00 " + "很长的内容" * 200
    value, rest = split_time_prefix(text, NOW, "moment")
    assert value == DT(2026, 11, 26, 8) and rest == "很长的内容" * 200


# --- robustness ------------------------------------------------------------------------------------------

_time_alphabet = st.sampled_from(
    list(
        "0123456789:：-/~～.年月日号点时分秒半刻整钟后前个天周星期礼拜一二三四五六七八九十两零今明昨大上中下午晚早凌晨傍夜全每工作日至到 "
    )
    + ["每周", "工作日", "下午", "12月", "明天", "2026-", "10分钟后", "\u3000", "晚上", "全天"]
)
_time_like = st.lists(_time_alphabet, max_size=14).map("".join)
_any_text = st.one_of(st.text(max_size=40), _time_like)


@settings(max_examples=250, deadline=None)
@given(text=_any_text)
def test_parsers_only_raise_time_parse_error(text: str) -> None:
    for parse in (parse_moment, parse_span, parse_recurrence):
        try:
            parse(text, NOW)
        except TimeParseError as exc:
            assert CJK.search(str(exc))


@settings(max_examples=250, deadline=None)
@given(text=_any_text, kind=st.sampled_from(["moment", "span", "when"]))
def test_split_only_raises_time_parse_error(text: str, kind: str) -> None:
    try:
        value, rest = split_time_prefix(text, NOW, kind)  # type: ignore[arg-type]
    except TimeParseError as exc:
        assert CJK.search(str(exc))
        return
    assert isinstance(value, (datetime, Span, Recurrence))
    assert rest == rest.strip() and len(rest) < len(text.strip())
    if kind == "span":
        assert isinstance(value, Span) and value.end > value.start

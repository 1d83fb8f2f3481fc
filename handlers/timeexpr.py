"""Chinese time expressions, as typed (or dictated) into the bot: moments, spans and recurrences.

Hand-written rather than built on a general NLP time parser, because the bot needs three things such libraries
do not give: (1) school-specific defaults (上午 = 08:00, 下午 = 12:00–18:00, a whole day = 07:00–18:00);
(2) recurrences as a :class:`~storage.schoolcal.Recurrence`; (3) finding where the time *ends* in
``提醒 每周一 8:00 升旗仪式 @全体`` — :func:`split_time_prefix` is the function the handlers really use.

How it works (each step is a small table of regexes, tried in order):

* :func:`_normalise` makes full-width digits / colons / dashes half-width and collapses whitespace.
* :func:`_parse_parts` reads ``[date] [period] [clock]`` left to right, e.g. ``明天`` ``下午`` ``3点`` — each part
  optional, but at least one present — into a :class:`_Parts`; nothing is resolved against ``now`` yet.
* :func:`_moment`, :func:`_span` turn parts into datetimes: defaults, 12-hour clocks, "today or tomorrow",
  year inference.  A span is ``<parts> <sep> <parts>`` for a separator (``-`` ``~`` ``到`` ``至``) that is tried at
  every position, since ``-`` also appears inside ``2026-12-01``.
* Relative moments (``10分钟后``) and recurrences (``每周一 8:00``) have their own small grammars.

Errors: the internal :class:`_NoMatch` means "this is not a time expression" (so :func:`split_time_prefix`
tries a shorter prefix); :class:`TimeParseError` raised inside means "this *is* a time, but wrong"
(``2月30日``, ``25:00``, end before start) and is reported as it is.  Every public function raises only
:class:`TimeParseError`, always with a Chinese message that shows accepted forms.

Conventions (documented here because users will ask):

* All datetimes are naive, in the school's local time; ``now`` is always passed in.
* No clock time: 凌晨 06:00, 早上/上午 08:00, 中午 12:00, 下午 14:00, 傍晚 17:00, 晚上 19:00; a date alone 08:00.
* ``3点`` without 上午/下午: 1–5点 mean the afternoon (no school schedules anything at 3 a.m.); 6–12点 are
  taken as written.  Clock times with a colon (``3:00``) are always 24-hour.
* Periods with a clock: 下午3点 = 15:00, 晚上8点 = 20:00, 晚上12点 = next day 00:00, 中午1点 = 13:00,
  凌晨12点 = 00:00; an hour already ≥ 13 is kept (下午15:00).
* No date: today, or tomorrow if that time has already passed (a span: if it has already ended).
* ``周五``: the next Friday — today if today is Friday and the time is still ahead.  ``下周一``: Monday of next
  calendar week (weeks start on Monday); ``这周五``/``本周五``: this calendar week's Friday, even if past.
* ``12月1日`` without a year: this year, or next year if that date passed more than a day ago.
* Spans: 上午 08:00–12:00, 下午 12:00–18:00, 晚上 18:00–22:00, 中午 12:00–14:00, 早上 07:00–12:00,
  凌晨 00:00–07:00, 傍晚 17:00–19:00; a whole day (``明天``, ``明天全天``) is 07:00–18:00 — a school's
  working day; 00:00–23:59 would make a one-day leave slip cover the night.  ``12月1日至12月3日`` runs from the
  first day 07:00 to the last day 18:00.  The end may omit the date (``今天14:00-16:00``) and inherits the
  start's period (``下午2点到4点`` = 14:00–16:00).  The end must be after the start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Literal, TypeVar

from storage.errors import UserError
from storage.schoolcal import Recurrence

__all__ = [
    "Span",
    "TimeParseError",
    "parse_moment",
    "parse_recurrence",
    "parse_span",
    "split_time_prefix",
]

# --------------------------------------------------------------------------------------------------------
# Errors and results


MOMENT_EXAMPLES = "2026-12-01 09:00、12月1日 9:00、明天8:00、今天下午3点、周五 14:00、10分钟后"
SPAN_EXAMPLES = "今天14:00-16:00、明天8:00-12:00、今天下午、明天全天、12月1日至12月3日"
RECURRENCE_EXAMPLES = "每天17:30、每周一 8:00、每月1日 9:00、工作日 7:30"


class TimeParseError(UserError, ValueError):
    """A time expression that cannot be understood; ``str()`` is a Chinese message with examples.

    A UserError, so a handler may let it propagate: the router turns it into the reply.
    """

    def __init__(self, message: str) -> None:
        UserError.__init__(self, message)


class _NoMatch(Exception):
    """Internal: the text is not (entirely) a time expression of the wanted kind."""


@dataclass(frozen=True)
class Span:
    """A time range ``[start, end)``; ``end`` is always after ``start``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise TimeParseError(
                f"结束时间早于开始时间：{self.start:%m-%d %H:%M} 至 {self.end:%m-%d %H:%M}，请检查。"
                "例如：今天14:00-16:00"
            )


def _quote(text: str) -> str:
    text = text.strip()
    return f"「{text[:20]}…」" if len(text) > 20 else f"「{text}」"


def _moment_error(text: str) -> TimeParseError:
    return TimeParseError(f"无法识别时间{_quote(text)}。可以这样写：{MOMENT_EXAMPLES}")


def _span_error(text: str) -> TimeParseError:
    return TimeParseError(f"无法识别时间段{_quote(text)}。可以这样写：{SPAN_EXAMPLES}")


def _recurrence_error(text: str) -> TimeParseError:
    return TimeParseError(f"无法识别重复时间{_quote(text)}。可以这样写：{RECURRENCE_EXAMPLES}")


# --------------------------------------------------------------------------------------------------------
# Normalisation and numbers

_FULLWIDTH = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "：": ":", "－": "-", "／": "/", "．": ".", "～": "~"}
)
_SEPARATORS = r"[-~—–]|到|至"  # range separators; "～" is normalised to "~"


def _normalise(text: str) -> str:
    return " ".join(text.translate(_FULLWIDTH).split())


_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
# A number as typed or as speech recognition writes it: 9, 09, 九, 十二, 二十三, 三十一, 零五.
_N = r"(?:[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3})"


def _num(s: str) -> int:
    if s.isascii() and s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        if len(tens) > 1 or len(ones) > 1 or "十" in ones:
            raise _NoMatch(s)
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    value = 0
    for ch in s:  # 零五 → 5; 一二 (not a way anyone says 12) is rejected by the range checks of the callers
        value = value * 10 + _CN_DIGITS[ch]
    return value


# --------------------------------------------------------------------------------------------------------
# Periods of the day: default time for a moment, and the span they cover (minutes since midnight).


@dataclass(frozen=True)
class _Period:
    default: int | None  # minutes; None = not a moment (全天)
    start: int
    end: int


_WHOLE_DAY = _Period(None, 7 * 60, 18 * 60)
_PERIODS: dict[str, _Period] = {
    "凌晨": _Period(6 * 60, 0, 7 * 60),
    "早上": _Period(8 * 60, 7 * 60, 12 * 60),
    "上午": _Period(8 * 60, 8 * 60, 12 * 60),
    "中午": _Period(12 * 60, 12 * 60, 14 * 60),
    "下午": _Period(14 * 60, 12 * 60, 18 * 60),
    "傍晚": _Period(17 * 60, 17 * 60, 19 * 60),
    "晚上": _Period(19 * 60, 18 * 60, 22 * 60),
    "全天": _WHOLE_DAY,
}
_PERIOD_ALIASES = {
    "早晨": "早上", "清晨": "早上", "上午": "上午", "中午": "中午", "午间": "中午",
    "下午": "下午", "傍晚": "傍晚", "晚上": "晚上", "晚间": "晚上", "夜里": "晚上", "夜间": "晚上",
    "凌晨": "凌晨", "早上": "早上", "全天": "全天", "整天": "全天", "白天": "全天", "全日": "全天",
}  # fmt: skip
# Longest first, so that an alias that is a prefix of another cannot shadow it.
_PERIOD_RX = re.compile("|".join(sorted((a for a in _PERIOD_ALIASES if len(a) > 1), key=len, reverse=True)))


def _hour_with_period(hour: int, period: str | None, dian: bool) -> int:
    """24-hour value (may be ≥ 24 = the next day) of ``hour`` said with ``period``; see the module doc."""
    if period is None:
        return hour + 12 if dian and 1 <= hour <= 5 else hour
    if period in ("下午", "傍晚"):
        return hour + 12 if 1 <= hour <= 11 else hour
    if period == "晚上":
        if 6 <= hour <= 11:
            return hour + 12
        if hour == 12 or hour == 0:
            return 24
        return hour + 24 if 1 <= hour <= 5 else hour  # 晚上1点 = 01:00 the next day
    if period == "中午":
        return hour + 12 if 1 <= hour <= 3 else hour
    if period == "凌晨":
        return 0 if hour == 12 else hour
    return hour  # 上午, 早上


# --------------------------------------------------------------------------------------------------------
# Parts: [date] [period] [clock], still unresolved against `now`.

DateKind = Literal["fixed", "month_day", "weekday"]


@dataclass(frozen=True)
class _DateSpec:
    kind: DateKind
    day: date | None = None  # fixed
    month: int = 0  # month_day
    dom: int = 0
    weekday: int = 0  # weekday (the next such day)


@dataclass(frozen=True)
class _Parts:
    date: _DateSpec | None
    period: str | None
    hour: int | None  # as written, 0–24
    minute: int = 0
    second: int = 0
    dian: bool = False  # written as 3点 (12-hour habit) rather than 3:00

    @property
    def has_clock(self) -> bool:
        return self.hour is not None


def _checked_date(year: int, month: int, dom: int) -> date:
    try:
        return date(year, month, dom)
    except ValueError:
        raise TimeParseError(f"日期不存在：{year}年{month}月{dom}日") from None


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # 2月29日 exists in leap years


def _check_month_day(month: int, dom: int) -> None:
    if not (1 <= month <= 12 and 1 <= dom <= _MONTH_DAYS[month - 1]):
        raise TimeParseError(f"日期不存在：{month}月{dom}日")


_WEEKDAY_CHARS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "7": 6,
                  "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5}  # fmt: skip
_WEEK_OFFSETS = {"下下": 2, "下": 1, "这": 0, "本": 0, "上": -1}
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1}
_DAY_PERIOD_WORDS = {  # one word that is a day and a period
    "今晚": (0, "晚上"), "今夜": (0, "晚上"), "明晚": (1, "晚上"), "今早": (0, "早上"), "明早": (1, "早上"),
}  # fmt: skip

# (regex, rule): the rule turns the match into the date and, for 今晚 and the like, a period.
_DateRule = tuple[re.Pattern[str], Callable[[re.Match[str], datetime], tuple[_DateSpec, str | None]]]


def _rule_ymd(m: re.Match[str], now: datetime) -> tuple[_DateSpec, str | None]:
    return _DateSpec("fixed", day=_checked_date(int(m["y"]), int(m["m"]), int(m["d"]))), None


def _rule_md(m: re.Match[str], now: datetime) -> tuple[_DateSpec, str | None]:
    month, dom = _num(m["m"]), _num(m["d"])
    if m["y"]:
        return _DateSpec("fixed", day=_checked_date(int(m["y"]), month, dom)), None
    _check_month_day(month, dom)
    return _DateSpec("month_day", month=month, dom=dom), None


def _rule_relative_day(m: re.Match[str], now: datetime) -> tuple[_DateSpec, str | None]:
    word = m[0]
    if word in _DAY_PERIOD_WORDS:
        offset, period = _DAY_PERIOD_WORDS[word]
        return _DateSpec("fixed", day=now.date() + timedelta(days=offset)), period
    return _DateSpec("fixed", day=now.date() + timedelta(days=_RELATIVE_DAYS[word])), None


def _rule_weekday(m: re.Match[str], now: datetime) -> tuple[_DateSpec, str | None]:
    weekday = _WEEKDAY_CHARS[m["wd"]]
    if m["which"] is None:
        return _DateSpec("weekday", weekday=weekday), None
    monday = now.date() - timedelta(days=now.weekday())
    offset = _WEEK_OFFSETS[m["which"].rstrip("个")]
    return _DateSpec("fixed", day=monday + timedelta(days=7 * offset + weekday)), None


# Tried in order at the start of the text; the first that matches is the date part.
_DATE_RULES: list[_DateRule] = [
    # 2026-12-01, 2026/12/1, 2026.12.1 (not followed by more digits or a colon: "2026-12-0109:00" is nonsense)
    (
        re.compile(r"(?P<y>[0-9]{4})([-/.])(?P<m>[0-9]{1,2})\2(?P<d>[0-9]{1,2})(?:日|号)?(?![0-9:])"),
        _rule_ymd,
    ),
    # 2026年12月1日, 12月1日, 12月1号, 十二月一日; "12月1" only when a space or the end follows (12月19点?)
    (
        re.compile(rf"(?:(?P<y>[0-9]{{4}})年)?(?P<m>{_N})月(?P<d>{_N})(?:日|号|(?=\s|$))"),
        _rule_md,
    ),
    # 12-01, 12/1
    (re.compile(r"(?P<y>)(?P<m>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})(?![0-9:])"), _rule_md),
    (
        re.compile("|".join(sorted([*_RELATIVE_DAYS, *_DAY_PERIOD_WORDS], key=len, reverse=True))),
        _rule_relative_day,
    ),
    # 周五, 星期五, 礼拜天, 下周一, 下个星期三, 这周五, 本周五
    (
        re.compile(r"(?P<which>下下|下个?|这个?|本|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"),
        _rule_weekday,
    ),
]

_CLOCK_COLON = re.compile(r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?(?![0-9])")
_CLOCK_DIAN = re.compile(
    rf"(?P<h>{_N})(?:点钟?|时)(?:(?P<half>半)|(?P<q1>一刻)|(?P<q3>三刻)|整|(?P<m>{_N})分?)?"
)


def _skip_space(s: str, pos: int) -> int:
    return pos + 1 if pos < len(s) and s[pos] == " " else pos


def _parse_clock(s: str, pos: int) -> tuple[int, int, int, bool, int] | None:
    """(hour, minute, second, dian, end) of a clock time at ``pos``, or None."""
    m = _CLOCK_COLON.match(s, pos)
    if m:
        hour, minute, second, dian = int(m["h"]), int(m["m"]), int(m["s"] or 0), False
    else:
        m = _CLOCK_DIAN.match(s, pos)
        if not m:
            return None
        hour, second, dian = _num(m["h"]), 0, True
        minute = 30 if m["half"] else 15 if m["q1"] else 45 if m["q3"] else _num(m["m"]) if m["m"] else 0
    if hour > 24 or minute > 59 or second > 59 or (hour == 24 and (minute or second)):
        raise TimeParseError(f"时间不存在：{m[0]}（小时 0–23，分钟 0–59）")
    return hour, minute, second, dian, m.end()


def _parse_parts(s: str, now: datetime) -> _Parts:
    """``[date] [period] [clock]`` filling the whole of ``s`` (already normalised), else _NoMatch."""
    pos = 0
    spec: _DateSpec | None = None
    period: str | None = None
    for rx, rule in _DATE_RULES:
        m = rx.match(s, pos)
        if m:
            spec, period = rule(m, now)
            pos = _skip_space(s, m.end())
            break
    if period is None:
        m = _PERIOD_RX.match(s, pos)
        if m:
            period = _PERIOD_ALIASES[m[0]]
            pos = _skip_space(s, m.end())
    clock = _parse_clock(s, pos)
    if clock:
        pos = clock[4]
    if pos != len(s) or (spec is None and period is None and clock is None):
        raise _NoMatch(s)
    if clock is None:
        return _Parts(spec, period, None)
    if period == "全天":
        raise _NoMatch(s)  # "明天全天8:00" means nothing
    hour, minute, second, dian, _ = clock
    return _Parts(spec, period, hour, minute, second, dian)


# --------------------------------------------------------------------------------------------------------
# Resolution against `now`


_YEAR_WRAP = timedelta(days=62)  # longest span whose end may wrap into the next year


def _resolve_day(spec: _DateSpec | None, now: datetime, on_or_after: date | None = None) -> date:
    """The calendar day of ``spec``; weekdays are the next such day on or after ``on_or_after`` (today)."""
    today = now.date()
    if spec is None:
        return today
    if spec.kind == "fixed":
        assert spec.day is not None
        return spec.day
    if spec.kind == "weekday":
        base = on_or_after or today
        return base + timedelta(days=(spec.weekday - base.weekday()) % 7)
    # month_day: this year, or next year if it passed more than a day ago (so yesterday's date stays this
    # year).  2月29日: the next leap year.
    if on_or_after is None:
        return _first_on_or_after(spec.month, spec.dom, today - timedelta(days=1))
    # The end of a span: in the start's year, or the next one for 12月30日至1月2日; but 12月1日至11月30日 is a
    # typo (reported as an end before the start), not a 364-day span.
    wrapped = _first_on_or_after(spec.month, spec.dom, on_or_after)
    if wrapped.year == on_or_after.year or wrapped - on_or_after <= _YEAR_WRAP:
        return wrapped
    return _first_on_or_after(spec.month, spec.dom, date(on_or_after.year, 1, 1))


def _first_on_or_after(month: int, dom: int, earliest: date) -> date:
    for year in range(earliest.year, earliest.year + 9):
        try:
            day = date(year, month, dom)
        except ValueError:
            continue
        if day >= earliest:
            return day
    raise TimeParseError(f"日期不存在：{month}月{dom}日")  # pragma: no cover - _check_month_day


def _at(day: date, minutes: int, now: datetime, second: int = 0) -> datetime:
    return datetime.combine(day, time(), tzinfo=now.tzinfo) + timedelta(minutes=minutes, seconds=second)


def _clock_minutes(p: _Parts) -> int:
    assert p.hour is not None
    return _hour_with_period(p.hour, p.period, p.dian) * 60 + p.minute


def _moment(p: _Parts, now: datetime) -> datetime:
    if p.has_clock:
        minutes, second = _clock_minutes(p), p.second
    else:
        default = _PERIODS[p.period].default if p.period else 8 * 60  # a date alone: 08:00
        if default is None:
            raise _NoMatch("全天")  # a whole day is a span, not a moment
        minutes, second = default, 0
    dt = _at(_resolve_day(p.date, now), minutes, now, second)
    if p.date is None and dt <= now:
        dt += timedelta(days=1)  # "9:00" said at 10:00 is tomorrow
    elif p.date is not None and p.date.kind == "weekday" and dt <= now:
        dt += timedelta(days=7)  # "周三 9:00" said on Wednesday at 10:00 is next week
    return dt


def _span(left: _Parts, right: _Parts | None, now: datetime) -> Span:
    day = _resolve_day(left.date, now)
    if right is None:
        if left.has_clock:
            raise TimeParseError(
                "这是一个时间点，请同时写明结束时间，例如：今天14:00-16:00、明天8:00-12:00、明天全天"
            )
        period = _PERIODS[left.period] if left.period else _WHOLE_DAY
        start, end = _at(day, period.start, now), _at(day, period.end, now)
        same_day_rule = True
    else:
        if left.has_clock:
            start = _at(day, _clock_minutes(left), now, left.second)
        else:
            start = _at(day, (_PERIODS[left.period] if left.period else _WHOLE_DAY).start, now)
        if right.date is None and right.period is None and right.has_clock:
            right = replace(right, period=left.period if left.period != "全天" else None)  # 下午2点到4点
        end_day = day if right.date is None else _resolve_day(right.date, now, on_or_after=day)
        if right.has_clock:
            end = _at(end_day, _clock_minutes(right), now, right.second)
        else:
            end = _at(end_day, (_PERIODS[right.period] if right.period else _WHOLE_DAY).end, now)
        same_day_rule = right.date is None
    if same_day_rule and end <= now:
        if left.date is None:
            start, end = start + timedelta(days=1), end + timedelta(days=1)
        elif left.date.kind == "weekday":
            start, end = start + timedelta(days=7), end + timedelta(days=7)
    return Span(start, end)  # raises "结束时间早于开始时间" unless end > start


# --------------------------------------------------------------------------------------------------------
# Relative moments: 10分钟后, 30秒后, 2小时后, 半小时后, 1个半小时后, 3天后, 两周后

_RELATIVE_RX = re.compile(
    r"(?P<n>[0-9]{1,4}|[零〇一二两三四五六七八九十]{1,3}|半)个?(?P<half>半)?"
    r"(?P<unit>秒钟?|分钟?|小时|钟头|天|日|周|星期|礼拜)(?:后|之后|以后)"
)
_UNIT_SECONDS = {"秒": 1, "秒钟": 1, "分": 60, "分钟": 60, "小时": 3600, "钟头": 3600,
                 "天": 86400, "日": 86400, "周": 604800, "星期": 604800, "礼拜": 604800}  # fmt: skip


def _relative(s: str, now: datetime) -> datetime | None:
    m = _RELATIVE_RX.fullmatch(s)
    if not m:
        return None
    amount = 0.5 if m["n"] == "半" else _num(m["n"]) + (0.5 if m["half"] else 0)
    if amount <= 0:
        raise TimeParseError(f"时间间隔须大于 0：{s}")
    try:
        return now + timedelta(seconds=amount * _UNIT_SECONDS[m["unit"]])
    except OverflowError:
        raise TimeParseError(f"时间太远了：{s}") from None


# --------------------------------------------------------------------------------------------------------
# Recurrences: 每天17:30, 每周五下午3点, 每月15号9点, 工作日 7:30, 每个工作日7:30

_RECURRENCE_HEADS: list[tuple[re.Pattern[str], Literal["daily", "weekly", "monthly", "workday"]]] = [
    (re.compile(r"每天|每日|天天"), "daily"),
    (re.compile(r"(?:每个?)?工作日"), "workday"),
    (re.compile(r"每个?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"), "weekly"),
    (re.compile(rf"每个?月(?P<d>{_N})(?:日|号|(?=\s|$))"), "monthly"),
]


def _recurrence(s: str, now: datetime) -> Recurrence | None:
    for rx, kind in _RECURRENCE_HEADS:  # noqa: B007 (the matching kind is used after the loop)
        head = rx.match(s)
        if head:
            break
    else:
        return None
    rest = s[head.end() :].strip()
    if not rest:
        raise TimeParseError(f"请写明几点：{_quote(s)}。例如：{RECURRENCE_EXAMPLES}")
    p = _parse_parts(rest, now)
    if p.date is not None or p.period == "全天":
        raise _NoMatch(s)
    if p.has_clock:
        minutes, second = _clock_minutes(p), p.second
    else:
        default = _PERIODS[p.period].default if p.period else None
        assert default is not None
        minutes, second = default, 0
    if minutes >= 24 * 60:
        raise TimeParseError(f"重复提醒的时间须在 0:00–23:59 之间：{_quote(s)}")
    at = time(minutes // 60, minutes % 60, second)
    if kind == "weekly":
        return Recurrence("weekly", at, weekday=_WEEKDAY_CHARS[head["wd"]])
    if kind == "monthly":
        dom = _num(head["d"])
        if not 1 <= dom <= 31:
            raise TimeParseError(f"每月的日期须在 1–31 日之间：{_quote(s)}")
        return Recurrence("monthly", at, day=dom)
    return Recurrence(kind, at)


# --------------------------------------------------------------------------------------------------------
# Public parsers


_T = TypeVar("_T")


def _guard(fn: Callable[[], _T], error: Callable[[], TimeParseError]) -> _T:
    """Run a parser; _NoMatch → ``error()``; any other slip (a bug, an overflow) → a TimeParseError too."""
    try:
        return fn()
    except TimeParseError:
        raise
    except _NoMatch:
        raise error() from None
    except (ValueError, OverflowError, KeyError, IndexError) as exc:  # defensive: never crash a handler
        raise error() from exc


def _moment_strict(s: str, now: datetime) -> datetime:
    rel = _relative(s, now)
    if rel is not None:
        return rel
    return _moment(_parse_parts(s, now), now)


def _span_strict(s: str, now: datetime) -> Span:
    ended_early: TimeParseError | None = None
    for sep in re.finditer(_SEPARATORS, s):
        left, right = s[: sep.start()].strip(), s[sep.end() :].strip()
        if not left or not right:
            continue
        try:
            return _span(_parse_parts(left, now), _parse_parts(right, now), now)
        except _NoMatch:
            continue  # the "-" inside 2026-12-01: try the next separator
        except TimeParseError as exc:
            ended_early = ended_early or exc
    if ended_early:
        raise ended_early
    return _span(_parse_parts(s, now), None, now)


def parse_moment(text: str, now: datetime) -> datetime:
    """One point in time: ``2026-12-01 09:00``, ``12月1日9点半``, ``明天8:00``, ``周五 14:00``, ``10分钟后`` …"""
    s = _normalise(text)
    return _guard(lambda: _moment_strict(s, now), lambda: _moment_error(text))


def parse_span(text: str, now: datetime) -> Span:
    """A time range: ``今天14:00-16:00``, ``12月1日 8:00-12月2日 17:00``, ``今天下午``, ``明天全天`` …"""
    s = _normalise(text)
    return _guard(lambda: _span_strict(s, now), lambda: _span_error(text))


def parse_recurrence(text: str, now: datetime) -> Recurrence | None:
    """``每天17:30``, ``每周一 8:00``, ``每月1日 9:00``, ``工作日 7:30`` …; None if ``text`` is not a recurrence.

    Text that starts like one (``每天``, ``每周一`` …) but is wrong raises :class:`TimeParseError`.
    """
    s = _normalise(text)
    return _guard(lambda: _recurrence(s, now), lambda: _recurrence_error(text))


# --------------------------------------------------------------------------------------------------------
# Splitting "<time> <free text>"

_MAX_UNITS = 3  # whitespace-separated pieces a time may have: "12月1日 8:00-12月2日 17:00"
_MAX_PREFIX_CHARS = 48  # no time expression is longer; bounds the work on a long message
# After a prefix glued to the text ("明天8:00开会"), the text must not go on like a time: otherwise "明天8:00"
# asked for as a span would split as 明天 + "8:00…".
_CONTINUES_TIME = re.compile(rf"[0-9:.\-/~—–点时分秒半刻整钟号日]|{_N}|{_PERIOD_RX.pattern}")


def _units(prefix: str) -> int:
    return len(re.sub(rf"\s*(?:{_SEPARATORS})\s*", "-", prefix).split())


def _parse_kind(
    s: str, now: datetime, kind: Literal["moment", "span", "when"]
) -> datetime | Span | Recurrence:
    if kind == "span":
        return _span_strict(s, now)
    if kind == "when":
        try:
            rec = _recurrence(s, now)
        except _NoMatch:
            rec = None
        if rec is not None:
            return rec
    return _moment_strict(s, now)


def split_time_prefix(
    text: str, now: datetime, kind: Literal["moment", "span", "when"]
) -> tuple[datetime | Span | Recurrence, str]:
    """Split ``"<time> <rest…>"`` into the parsed time and the rest (stripped).

    The time is the longest prefix of at most three whitespace-separated pieces (a ``-``/``到`` with spaces
    around it does not count as a piece) that parses as ``kind``: ``moment`` → datetime, ``span`` →
    :class:`Span`, ``when`` → a :class:`Recurrence` or else a datetime.  A time glued to the text
    (``明天8:00开会``) is also split, where the text does not go on like a time.  A prefix that is clearly a
    time but wrong (``2月30日``, an end before the start, a span without its end) raises its own error rather
    than falling back to a shorter prefix.  Raises :class:`TimeParseError` when no prefix is a time.
    """
    stripped = text.strip()
    tokens = [t for t in re.finditer(r"\S+", stripped) if t.start() <= _MAX_PREFIX_CHARS]
    for k in range(len(tokens), 0, -1):
        token = tokens[k - 1]
        if _units(stripped[: token.end()]) > _MAX_UNITS:
            continue
        # The whole token first, then ever shorter pieces of it glued to the rest.
        for end in range(min(token.end(), _MAX_PREFIX_CHARS), token.start(), -1):
            prefix, rest = stripped[:end], stripped[end:]
            if end != token.end() and _CONTINUES_TIME.match(rest):
                continue
            try:
                value = _parse_kind(_normalise(prefix), now, kind)
            except _NoMatch:
                continue
            except TimeParseError:
                raise  # a time, but a wrong one: say so rather than read a shorter prefix
            except (ValueError, OverflowError, KeyError, IndexError):  # defensive, as in _guard
                continue
            return value, rest.strip()
    first = tokens[0][0] if tokens else stripped
    if kind == "span":
        raise _span_error(first)
    if kind == "when" and first.startswith(("每", "工作日", "天天")):
        raise _recurrence_error(first)
    raise _moment_error(first)

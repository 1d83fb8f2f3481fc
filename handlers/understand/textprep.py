"""Message preparation for understanding: emoji, zero-width characters, polite fillers, spoken numbers,
phones and colloquial dates — the surface noise between what staff type and the canonical grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.text import normalise

_ZW = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200d\u3030\u303d]")
_OK_EMOJI = ("👌", "👍", "🆗", "✅", "✔")
_STAR = "⭐"

CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
            "八": 8, "九": 9}
_RUN = re.compile("[零〇一幺二两三四五六七八九]{3,}")
_SMALL = re.compile(r"(?<![零〇一二两三四五六七八九十])([一二两三四五六七八九十]{1,3})(?=\s*(?:号|分|星|个人|人|位|颗星))")
_SPOKEN_GAP = re.compile(r"(?<=\d)[\s\-—.]+(?=\d)")

LEAD = re.compile(
    r"^(?:(?:(?!找)[\u4e00-\u9fa5]{1,3}(?:老师|师傅|校长|主任)们?(?:您好|你好|好)?|老师们?好?|师傅们?好?|您好|你好|哈喽|hello|hi|"
    r"在吗|打扰(?:一下|了)?|不好意思|麻烦(?:您|你)?|请问|请|帮我|帮忙|帮个忙|那个|嗯+|哦+|喂|我是[\u4e00-\u9fa5]{2,4}(?:爸爸|妈妈|家长|的?爸|的?妈))"
    r"[\s,，.。!！~～、]*)+",
    re.IGNORECASE,
)


def cn_int(s: str) -> int | None:
    """1–99 written in Chinese (十, 二十, 二十三, 两) or digits."""
    if s.isdigit():
        return int(s)
    if not s:
        return None
    if "十" in s:
        tens, _, ones = s.partition("十")
        if len(tens) > 1 or len(ones) > 1:
            return None
        t = CN_DIGIT.get(tens, -1) if tens else 1
        o = CN_DIGIT.get(ones, -1) if ones else 0
        return None if t < 0 or o < 0 else t * 10 + o
    if len(s) == 1 and s in CN_DIGIT:
        return CN_DIGIT[s]
    return None


def _run(m: re.Match[str]) -> str:
    return "".join(str(CN_DIGIT[c]) for c in m.group(0))


def _small(m: re.Match[str]) -> str:
    n = cn_int(m.group(1))
    return str(n) if n is not None else m.group(1)


@dataclass
class Msg:
    """One message, prepared: `s` without emoji and leading fillers, `n` the same with spoken numbers as digits."""

    raw: str
    s: str
    n: str
    stars: int
    ok_emoji: bool
    only_emoji: bool


def prepare(text: str) -> Msg:
    raw = _ZW.sub("", normalise(text))
    stars = raw.count(_STAR)
    ok = any(e in raw for e in _OK_EMOJI)
    s = _EMOJI.sub(" ", raw)
    s = re.sub(r"[ \t]+", " ", s).strip(" ,，!！~～")
    only_emoji = not s and bool(raw)
    s = LEAD.sub("", s).strip() or s
    n = _RUN.sub(_run, s)
    n = _SMALL.sub(_small, n)
    return Msg(raw, s, n, stars, ok, only_emoji)


PHONE = re.compile(r"(?<![\d])(?:\+?86[\s\-]*)?(1[3-9](?:[\s\-—.]*\d){9})(?![\d])")
SHORT_PHONE = re.compile(r"(?<![\d])1[3-9]\d{7,8}(?![\d])")
ID_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{17}[\dXx])(?![\dA-Za-z])")
PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Za-z][·•\s\-]?[A-Za-z0-9]{5,6}(?![A-Za-z0-9])")


def find_phone(n: str) -> tuple[str, int, int] | None:
    m = PHONE.search(n)
    if not m:
        return None
    return re.sub(r"\D", "", m.group(1)), m.start(), m.end()


# Dates as people write them, rewritten into the forms handlers/timeexpr.py reads.
_DATE_FIXES = [
    (re.compile(r"(?<![\d.])(1[0-2]|[1-9])[./](3[01]|[12]\d|0?[1-9])(?![\d.:])"), r"\1月\2日"),
    (re.compile(r"(\d{1,2})月(\d{1,2})号"), r"\1月\2日"),
    (re.compile(r"每月(\d{1,2})号"), r"每月\1日"),
    (re.compile(r"今晚"), "今天晚上"),
    (re.compile(r"明早"), "明天早上"),
    (re.compile(r"明晚"), "明天晚上"),
    (re.compile(r"今早"), "今天早上"),
    (re.compile(r"礼拜([一二三四五六日天])"), r"周\1"),
    (re.compile(r"星期天|周天"), "周日"),
    (re.compile(r"(?<=\d)点钟"), "点"),
    (re.compile(r"早上好|晚上好"), ""),
]


def fix_dates(s: str) -> str:
    for pattern, repl in _DATE_FIXES:
        s = pattern.sub(repl, s)
    return s


def compact(s: str) -> str:
    """For comparisons: no spaces or punctuation."""
    return re.sub(r"[\s,，.。!！?？、:：;；~～\"'“”()（）]+", "", s)

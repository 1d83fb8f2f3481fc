"""Where and what: split `教学楼301灯不亮` / `体育馆男更衣室的门关不上了` into a place and a fault."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.understand.lexicon import BUILDINGS, STANDALONE, SUB_IN, Lexicon

FAULT = re.compile(
    r"坏|不亮|不灵|漏|滴水|渗|堵|关不上|关不严|关不紧|打不开|开不了|锁不上|不转|不制热|不加热|没画面|卡纸|降不下来|升不起来|不烧水|鼓起|起鼓|打不着|不出来|不显示|不制冷|不热|不凉|不出|没电|断电|跳闸|断网|"
    r"网络断|连不上|没网|没声音|没信号|黑屏|花屏|失灵|松了|松动|晃|裂|碎|翘|闪|掉下|脱落|冲不了|拧不动|焦糊|糊味|煤气味|怪味|"
    r"异味|臭|飞虫|虫|老鼠|积水|冒烟|打火|短路|不通|不能用|用不了|卡住|卡了|异响|响个不停|噪音|破了|倒了|歪了|故障|问题|不工作|"
    r"停了|不动|抬不起|不下水|不出水|没水|水压|发霉|起皮|脱皮|不好用|没反应|不显示|不开|不关|不停|一直转|不制暖|漏电|冒水|不够亮"
)
_DIR = r"(?:东|西|南|北|东边|西边|南边|北边|东头|西头|东侧|西侧|旁边|边上|门口|里面|外面|后面|前面|对面|靠窗|最里面|那排|那块|那个|这个|的)*"
_FLOOR = r"(?:[1-9一二三四五六]\s*(?:楼|层)(?!下))"
_ROOM = r"(?:[1-6]\d{2}(?!\d)(?:室|教室|房间|宿舍)?)"
_CLASS = r"(?:[七八九]\s*[(（]?\s*[1-9一二三四五六七八九]\s*[)）]?\s*班(?:教室)?|我们班(?:教室)?|我班(?:教室)?)"


@dataclass
class Where:
    place: str
    rest: str
    start: int
    complete: bool  # names a building or a place that is unique on its own


def _unit_re(lex: Lexicon) -> re.Pattern[str]:
    words = lex.place_re.pattern if lex.place_re is not None else "教学楼"
    return re.compile(rf"(?:{_DIR})(?:{words}|{_FLOOR}|{_ROOM}|{_CLASS})")


_UNIT_CACHE: dict[int, re.Pattern[str]] = {}


def find_place(lex: Lexicon, text: str, default_building: str = "教学楼", klass: str | None = None) -> Where | None:
    """The first run of place words in the text (buildings, floors, rooms, sub-places, classes)."""
    unit = _UNIT_CACHE.get(id(lex))
    if unit is None:
        _UNIT_CACHE.clear()
        unit = _UNIT_CACHE[id(lex)] = _unit_re(lex)
    for m in unit.finditer(text):
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip("的")))
        # strip leading direction words only when they are not part of the place
        pos = m.end()
        while True:
            nxt = unit.match(text, pos)
            if not nxt or nxt.end() == pos:
                break
            pos = nxt.end()
        raw = text[start:pos]
        raw = re.sub(r"^(?:那个|这个|的)+", "", raw)
        place = re.sub(r"(?:的|那个|这个|那块|那排|里面|最里面)+$", "", raw).replace(" ", "")
        if not place or re.fullmatch(_DIR, place):
            continue
        rest = text[pos:].strip()
        rest = re.sub(r"^(?:的|那个|那几个|这个|那块|那几盏|有)+", "", rest).strip(" ,，")
        return Where(_expand(lex, place, default_building, klass), rest, start, _complete(lex, place))
    return None


def _expand(lex: Lexicon, place: str, default_building: str, klass: str | None = None) -> str:
    if klass:
        place = re.sub(r"^(?:我们班|我班)(?:教室)?", f"{klass}教室", place)
    place = re.sub(r"([七八九])\s*[(（]?\s*([一二三四五六七八九])\s*[)）]?\s*班",
                   lambda m: f"{m.group(1)}({'一二三四五六七八九'.index(m.group(2)) + 1})班", place)
    place = re.sub(r"([七八九])\s*[(（]?\s*([1-9])\s*[)）]?\s*班", lambda m: f"{m.group(1)}({m.group(2)})班", place)
    place = re.sub(r"(\([1-9]\)班)(?!教室)", r"\1教室", place)
    if re.fullmatch(rf"{_ROOM}.*", place) and not any(place.startswith(b) for b in BUILDINGS):
        place = default_building + place
    place = re.sub(r"^(\D*?)(\d{3})(?:室|教室|房间)$", r"\1\2", place)
    if not any(place.startswith(b) for b in BUILDINGS):
        for sub, building in {**SUB_IN, **lex.learned}.items():
            if place.startswith(sub):
                return building + place
    return place


def _complete(lex: Lexicon, place: str) -> bool:
    if any(b in place for b in BUILDINGS) or re.search(_ROOM, place) or re.search(_CLASS, place):
        return True
    return any(place.startswith(w) for w in (*STANDALONE, *SUB_IN, *lex.learned))


def has_fault(text: str) -> bool:
    return bool(FAULT.search(text))


def split_place(lex: Lexicon, text: str, default_building: str = "教学楼") -> tuple[str, str] | None:
    """`教学楼301灯不亮` → (教学楼301, 灯不亮) when the text opens with a place and goes on with a fault."""
    w = find_place(lex, text, default_building)
    if w is None or w.start != 0 or not w.rest:
        return None
    return w.place, w.rest

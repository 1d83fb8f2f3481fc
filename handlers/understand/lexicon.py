"""The school's words, built once per process and rebuilt when the people or places change: staff names and
the ways they are called (王老师, 刘师傅, 周校长, 老郑), students (also by given name and by pinyin, for voice
homophones), classes, and places (a built-in lexicon plus the places already used in tickets)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from pypinyin import lazy_pinyin
from sqlmodel import Session

from storage import directory
from storage.directory import Pupil, Staff

TITLES = {"leader": ("校长", "领导"), "admin": ("主任",), "teacher": ("老师",), "head_teacher": ("老师", "班主任"),
          "worker": ("师傅",), "guard": ("师傅",)}

BUILDINGS = ("教学楼", "实验楼", "行政楼", "综合楼", "宿舍楼", "食堂", "体育馆", "操场", "配电间", "东大门", "北门", "南门",
             "西门", "大门", "校门", "门卫室", "礼堂", "车棚", "停车场", "锅炉房", "水泵房")
SUBPLACES = ("图书馆", "报告厅", "男更衣室", "女更衣室", "更衣室", "篮球场", "器材室", "侧门", "后门", "前门", "塑胶跑道", "跑道", "主席台", "旗杆",
             "围墙", "道闸", "门卫室", "走廊", "楼道", "楼梯", "大厅", "男厕所", "女厕所", "男厕", "女厕", "厕所", "卫生间",
             "洗手间", "开水房", "开水器", "会议室", "后勤处", "校长室", "副校长室", "计算机房", "机房", "多媒体教室",
             "物理实验室", "化学实验室", "生物实验室", "实验室", "音乐教室", "美术教室", "教研室", "学生餐厅", "教工餐厅",
             "餐厅", "后厨", "办公室", "教室", "门口", "台阶", "广场", "花坛", "电梯", "屋顶", "天台", "楼顶", "监控室",
             "英语组", "数学组", "语文组", "通风橱", "讲台", "淋浴间", "浴室")
# A sub-place that names its building on its own (the lexicon also learns these from ticket places).
SUB_IN = {"图书馆": "综合楼", "报告厅": "综合楼", "计算机房": "实验楼", "物理实验室": "实验楼", "化学实验室": "实验楼",
          "生物实验室": "实验楼", "多媒体教室": "实验楼", "教工餐厅": "食堂", "学生餐厅": "食堂", "后厨": "食堂",
          "篮球场": "体育馆", "男更衣室": "体育馆", "女更衣室": "体育馆", "器材室": "体育馆", "后勤处": "行政楼",
          "校长室": "行政楼", "会议室": "行政楼", "音乐教室": "综合楼", "教研室": "综合楼"}
STANDALONE = {"报告厅", "配电间", "东大门", "北门", "南门", "西门", "操场", "食堂", "体育馆", "图书馆", "停车场", "车棚",
              "锅炉房", "水泵房", "门卫室", "大门", "校门"}


@dataclass
class Lexicon:
    staff: tuple[Staff, ...] = ()
    students: tuple[Pupil, ...] = ()
    classes: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    staff_by_call: dict[str, list[Staff]] = field(default_factory=dict)  # 王丽, 王老师, 刘师傅, 老郑 …
    student_by_call: dict[str, list[Pupil]] = field(default_factory=dict)  # 张浩然, 浩然
    student_pinyin: dict[str, list[Pupil]] = field(default_factory=dict)
    staff_pinyin: dict[str, list[Staff]] = field(default_factory=dict)
    surnames: frozenset[str] = frozenset()
    staff_re: re.Pattern[str] | None = None
    student_re: re.Pattern[str] | None = None
    place_re: re.Pattern[str] | None = None
    learned: dict[str, str] = field(default_factory=dict)  # sub-place → its building, from ticket places


def _alternation(words: Iterable[str]) -> re.Pattern[str] | None:
    ws = sorted({w for w in words if w}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ws)) if ws else None


def py(text: str) -> str:
    return "".join(lazy_pinyin(text))


def build(d: directory.Directory) -> Lexicon:
    lex = Lexicon(d.staff, d.students, d.classes, d.places)
    for p in d.staff:
        calls = {p.name}
        surname = p.name[0]
        for role in p.roles:
            for title in TITLES.get(role, ()):
                calls.add(surname + title)
                if len(p.name) >= 2:
                    calls.add(p.name + title)
        if p.roles & {"admin", "leader", "worker", "guard"}:
            calls.add("老" + surname)
        for c in calls:
            lex.staff_by_call.setdefault(c, []).append(p)
        lex.staff_pinyin.setdefault(py(p.name), []).append(p)
    for s in d.students:
        lex.student_by_call.setdefault(s.name, []).append(s)
        if len(s.name) == 3:
            lex.student_by_call.setdefault(s.name[1:], []).append(s)
        lex.student_pinyin.setdefault(py(s.name), []).append(s)
    lex.surnames = frozenset({p.name[0] for p in d.staff} | {s.name[0] for s in d.students})
    lex.staff_re = _alternation(lex.staff_by_call)
    lex.student_re = _alternation(lex.student_by_call)
    for place in d.places:
        for b in BUILDINGS:
            if place.startswith(b) and len(place) > len(b):
                tail = re.sub(r"^[0-9一二三四五六七八九]+楼", "", place[len(b):])
                if tail and tail not in lex.learned:
                    lex.learned[tail] = b
    lex.place_re = _alternation([*BUILDINGS, *SUBPLACES, *lex.learned])
    return lex


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[object, ...], Lexicon]] = {}


def lexicon(session: Session) -> Lexicon:
    """This process's lexicon for the session's database, rebuilt when `directory.version` changes."""
    key = str(session.get_bind().url)
    ver = directory.version(session)
    got = _cache.get(key)
    if got is not None and got[0] == ver:
        return got[1]
    lex = build(directory.snapshot(session))
    with _lock:
        _cache[key] = (ver, lex)
    return lex


# --- finding people in a message -------------------------------------------------------------------------


def students_in(lex: Lexicon, text: str) -> list[tuple[Pupil, int, int]]:
    """Students named in the text: by full name or given name, else by pinyin (voice homophones)."""
    found: list[tuple[Pupil, int, int]] = []
    if lex.student_re is not None:
        for m in lex.student_re.finditer(text):
            for s in lex.student_by_call[m.group(0)]:
                found.append((s, m.start(), m.end()))
    if found:
        return found
    for i, ch in enumerate(text):
        if ch not in lex.surnames:
            continue
        for size in (3, 2):
            piece = text[i:i + size]
            if len(piece) == size and re.fullmatch(r"[\u4e00-\u9fa5]+", piece):
                for s in lex.student_pinyin.get(py(piece), ()):
                    found.append((s, i, i + size))
        if found:
            break
    return found


def staff_in(lex: Lexicon, text: str, roles: set[str] | None = None) -> list[tuple[Staff, int, int]]:
    """Staff named in the text (name, 王老师, 刘师傅, 老郑 …), else by pinyin of a full name."""
    found: list[tuple[Staff, int, int]] = []
    if lex.staff_re is not None:
        for m in lex.staff_re.finditer(text):
            for p in lex.staff_by_call[m.group(0)]:
                if roles is None or p.roles & roles:
                    found.append((p, m.start(), m.end()))
    if found:
        return found
    for i, ch in enumerate(text):
        if ch not in lex.surnames:
            continue
        piece = text[i:i + 3]
        if len(piece) == 3 and re.fullmatch(r"[\u4e00-\u9fa5]+", piece):
            for p in lex.staff_pinyin.get(py(piece), ()):
                if roles is None or p.roles & roles:
                    found.append((p, i, i + 3))
    return found


def unique(items: list[tuple[object, int, int]]) -> list[object]:
    seen: list[object] = []
    for it in items:
        if it[0] not in seen:
            seen.append(it[0])
    return seen

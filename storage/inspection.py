"""Inspections and patrols 巡查 (XC): checkpoints (点位) with QR codes, routes, rounds, visits and findings.

A checkpoint is a place or asset with a code and its check items. A route is an ordered set of checkpoints with a
schedule (school days, every day, weekly, monthly, once), a time window and who does it (roles and/or named
people). On a day a route runs, its round exists once (UNIQUE route_id, day); a visit is a scan (or `巡查 <点位>`)
of a checkpoint, inside a due round or as an extra check; `异常` on a visit records a finding and opens a repair
ticket for the checkpoint's place through storage.repair (linked: Finding.ticket_id, and the ticket's history
names the visit). Round reminders and missed-checkpoint alerts are sent once: a mark on the round, written under
a row lock in the same transaction as the outbox rows, which carry unique dedup keys as the backstop.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any
from datetime import date, datetime, time, timedelta

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from sqlalchemy import Index, Text, UniqueConstraint, func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, Session, SQLModel, col, select

from storage import certificates, outbox, repair
from storage.errors import NotFound, UserError
from storage.people import ROLES, Actor, Person, people_with_role
from storage.schoolcal import WEEKDAY_NAMES, is_school_day, next_school_day

PREFIX = "XC"
KIND = "inspection"  # outbox kind
SCENE_PREFIX = "cp:"

NORMAL, ABNORMAL = "正常", "异常"
OPEN_VISIT = timedelta(hours=2)  # `正常`/`异常` apply to the person's last scan within this time
MAX_CODE, MAX_NAME, MAX_LOCATION, MAX_NOTE = 30, 60, 100, 300
INSPECTORS = frozenset({"admin", "leader", "guard", "worker"})  # a scan outside a round is an extra check
DEFAULT_KIND = "巡查点"

# Check items by kind (a checkpoint may list its own).
KIND_ITEMS: dict[str, str] = {
    "灭火器": "压力正常；铅封完好；在有效期；无遮挡",
    "消防器材": "压力正常；铅封完好；在有效期；无遮挡",
    "消火栓": "箱门完好；水带水枪齐全；无遮挡",
    "应急照明": "通电正常；疏散指示清晰",
    "安全出口": "疏散通道畅通；出口指示灯完好",
    "配电间": "门锁完好；无异味异响；无杂物堆放；警示标识完好",
    "食堂": "燃气阀门关闭；灶具完好；食材与留样规范；冰箱温度正常",
    "饮用水": "饮水机清洁；滤芯在有效期；水质无异常",
    "教室": "门窗关好；灯和电器断电；无安全隐患",
    "监控": "画面正常；录像正常",
    "周界报警": "布防正常；报警测试正常",
    "运动场地": "器材牢固；场地无破损；无安全隐患",
    "财产": "数量相符；完好无损；标签清楚",
    DEFAULT_KIND: "门窗完好；无异常人员；无安全隐患",
}

SCHOOL_DAYS, DAILY, WEEKLY, MONTHLY, ONCE = "school_days", "daily", "weekly", "monthly", "once"
SCHEDULES = (SCHOOL_DAYS, DAILY, WEEKLY, MONTHLY, ONCE)


# --- models ---------------------------------------------------------------------------------------------


class Checkpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=MAX_CODE)
    name: str = Field(max_length=MAX_NAME)
    location: str = Field(default="", max_length=MAX_LOCATION)  # the place a repair is reported for
    kind: str = Field(default=DEFAULT_KIND, max_length=20)
    items: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))  # 「；」 separated
    active: bool = True
    qr_ticket: str | None = Field(default=None, max_length=200)  # WeChat's permanent QR ticket, cached
    qr_url: str | None = Field(default=None, max_length=300)
    created_at: datetime

    @property
    def scene(self) -> str:
        return f"{SCENE_PREFIX}{self.id}"

    @property
    def place(self) -> str:
        return self.location or self.name

    def item_list(self) -> list[str]:
        return split_items(self.items) or split_items(KIND_ITEMS.get(self.kind, KIND_ITEMS[DEFAULT_KIND]))


class InspectionRoute(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, unique=True, max_length=80)  # built-in routes: builtin:<name>
    name: str = Field(max_length=MAX_NAME)
    schedule: str = Field(default=SCHOOL_DAYS, max_length=12)
    schedule_day: int | None = None  # weekly: 0 = Monday; monthly: day of the month
    schedule_date: date | None = None  # once
    start: time
    end: time
    roles: str = Field(default="", max_length=100)  # role keys, comma separated
    person_ids: str = Field(default="", max_length=200)  # named people, comma separated ids
    active: bool = True
    created_at: datetime


class RouteStop(SQLModel, table=True):
    route_id: int = Field(foreign_key="inspectionroute.id", primary_key=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", primary_key=True)
    position: int = 0


class InspectionRound(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("route_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    route_id: int = Field(foreign_key="inspectionroute.id")
    day: date
    starts_at: datetime
    ends_at: datetime = Field(index=True)
    reminded_at: datetime | None = None
    closed_at: datetime | None = None
    missed: int | None = None  # checkpoints not visited, counted at the end of the window


class InspectionVisit(SQLModel, table=True):
    __table_args__ = (Index("ix_inspectionvisit_person_at", "person_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", index=True)
    round_id: int | None = Field(default=None, foreign_key="inspectionround.id", index=True)  # None: extra check
    person_id: int = Field(foreign_key="person.id")
    at: datetime = Field(index=True)
    via: str = Field(default="scan", max_length=10)  # scan | text (巡查 <点位>)
    result: str | None = Field(default=None, max_length=4)  # 正常 | 异常 | None: not answered yet
    note: str | None = Field(default=None, max_length=MAX_NOTE)

    @property
    def ref(self) -> str:
        return f"{PREFIX}{self.id}"


class InspectionFinding(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="inspectionvisit.id", unique=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id")
    description: str = Field(max_length=MAX_NOTE)
    ticket_id: int | None = Field(default=None, foreign_key="repairticket.id", index=True)
    photos: int = 0
    created_at: datetime


# --- small helpers --------------------------------------------------------------------------------------


def split_items(text: str | None) -> list[str]:
    return [s.strip() for s in re.split(r"[;；、\n|]+", text or "") if s.strip()]


def ids_text(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def parse_ids(text: str) -> list[int]:
    return [int(x) for x in (text or "").split(",") if x.strip().isdigit()]


def runs_on(route: InspectionRoute, d: date) -> bool:
    """Whether the route has a round on day `d` (school days from the official or provisional calendar)."""
    if route.schedule == SCHOOL_DAYS:
        return is_school_day(d)
    if route.schedule == DAILY:
        return True
    if route.schedule == WEEKLY:
        return d.weekday() == (route.schedule_day or 0)
    if route.schedule == MONTHLY:  # on day N, moved to the next school day when it is not one
        planned = date(d.year, d.month, min(max(route.schedule_day or 1, 1), 28))
        return d == next_school_day(planned)
    if route.schedule == ONCE:
        return d == route.schedule_date
    return False


def describe_schedule(route: InspectionRoute) -> str:
    window = f"{route.start:%H:%M}–{route.end:%H:%M}"
    if route.schedule == SCHOOL_DAYS:
        return f"每个上课日 {window}"
    if route.schedule == DAILY:
        return f"每天 {window}"
    if route.schedule == WEEKLY:
        return f"每{WEEKDAY_NAMES[route.schedule_day or 0]} {window}"
    if route.schedule == MONTHLY:
        return f"每月{route.schedule_day or 1}日（遇节假日顺延） {window}"
    if route.schedule == ONCE and route.schedule_date:
        return f"{route.schedule_date:%Y-%m-%d} {window}"
    return window


def window_of(route: InspectionRoute, d: date) -> tuple[datetime, datetime]:
    return datetime.combine(d, route.start), datetime.combine(d, route.end)


def stops(session: Session, route_id: int) -> list[Checkpoint]:
    rows = session.exec(select(Checkpoint).join(RouteStop, col(RouteStop.checkpoint_id) == col(Checkpoint.id))
                        .where(RouteStop.route_id == route_id).order_by(col(RouteStop.position))).all()
    return list(rows)


def responsible_ids(session: Session, route: InspectionRoute) -> list[int]:
    roles = [r for r in route.roles.split(",") if r]
    ids = [p.id for p in people_with_role(session, *roles) if p.id is not None] if roles else []
    for pid in parse_ids(route.person_ids):
        p = session.get(Person, pid)
        if p is not None and p.active and pid not in ids:
            ids.append(pid)
    return ids


def responsible_text(session: Session, route: InspectionRoute) -> str:
    parts = [ROLES.get(r, r) for r in route.roles.split(",") if r]
    for pid in parse_ids(route.person_ids):
        p = session.get(Person, pid)
        if p is not None:
            parts.append(p.name)
    return "、".join(parts) or "未指定"


# --- checkpoints ----------------------------------------------------------------------------------------


def _clean(value: str | None, limit: int, what: str, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise UserError(f"{what}不能为空")
    if len(text) > limit:
        raise UserError(f"{what}太长了（最多{limit}字）")
    return text


def save_checkpoint(session: Session, *, code: str, name: str, location: str = "", kind: str = "",
                    items: str = "", now: datetime, checkpoint_id: int | None = None,
                    active: bool = True) -> tuple[Checkpoint, bool]:
    """Create a checkpoint, or update the one with this code (or id). Returns (checkpoint, created)."""
    code = _clean(code, MAX_CODE, "点位编号", required=True).upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9_\-]*", code):
        raise UserError(f"点位编号「{code}」只能用字母、数字、- 和 _")
    name = _clean(name, MAX_NAME, "点位名称", required=True)
    location = _clean(location, MAX_LOCATION, "位置")
    kind = _clean(kind, 20, "类型") or DEFAULT_KIND
    items_list = split_items(items)
    if sum(len(i) for i in items_list) > 500:
        raise UserError("检查项太长了")
    same_code = session.exec(select(Checkpoint).where(Checkpoint.code == code)).first()
    if checkpoint_id is not None:
        cp = session.get(Checkpoint, checkpoint_id)
        if cp is None:
            raise NotFound(f"点位 {checkpoint_id}")
        if same_code is not None and same_code.id != cp.id:
            raise UserError(f"点位编号 {code} 已被「{same_code.name}」使用")
        created = False
    elif same_code is not None:
        cp, created = same_code, False
    else:
        cp, created = Checkpoint(code=code, name=name, created_at=now), True
    cp.code, cp.name, cp.location, cp.kind = code, name, location, kind
    cp.items = "；".join(items_list)
    cp.active = active
    session.add(cp)
    session.flush()
    return cp, created


def import_checkpoints(session: Session, rows: list[list[str]], *, now: datetime) -> tuple[int, list[str]]:
    """CSV rows 编号,名称,位置,类型,检查项 (the last three optional). Bad rows are reported by line and skipped,
    each good row is kept (a savepoint per row). A first row that looks like a header is skipped."""
    done, errors = 0, []
    seen: dict[str, int] = {}
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row] + [""] * 5
        if lineno == 1 and cells[0] in ("编号", "点位编号", "code"):
            continue
        if not any(cells):
            continue
        code, name, location, kind, items = cells[:5]
        if not code or not name:
            errors.append(f"第{lineno}行：需要 编号,名称（位置、类型、检查项可选）")
            continue
        if code.upper() in seen:
            errors.append(f"第{lineno}行：编号 {code} 与第{seen[code.upper()]}行重复")
            continue
        try:
            with session.begin_nested():
                save_checkpoint(session, code=code, name=name, location=location, kind=kind, items=items, now=now)
        except UserError as exc:
            errors.append(f"第{lineno}行：{exc.message}")
            continue
        seen[code.upper()] = lineno
        done += 1
    return done, errors


def all_checkpoints(session: Session, active_only: bool = False) -> list[Checkpoint]:
    stmt = select(Checkpoint)
    if active_only:
        stmt = stmt.where(Checkpoint.active == True)
    return list(session.exec(stmt.order_by(col(Checkpoint.code))).all())


def checkpoint_by_scene(session: Session, scene: str) -> Checkpoint | None:
    """The checkpoint of a QR scene `cp:<id>` (None: not such a scene, or no such active checkpoint)."""
    m = re.fullmatch(r"cp:(\d{1,9})", (scene or "").strip())
    if not m:
        return None
    cp = session.get(Checkpoint, int(m.group(1)))
    return cp if cp is not None and cp.active else None


def find_checkpoint(session: Session, text: str) -> Checkpoint:
    """By code (any case), by exact name, or by a unique part of the name or location (`巡查 <点位>`)."""
    q = (text or "").strip()
    if not q:
        raise UserError("请写上点位编号或名称，例如：巡查 XF-101")
    cps = all_checkpoints(session, active_only=True)
    for cp in cps:
        if cp.code == q.upper():
            return cp
    exact = [cp for cp in cps if q in (cp.name, cp.location, f"{cp.location}{cp.name}")]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [cp for cp in cps if q in cp.name or q in cp.location]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise NotFound(f"点位「{q}」")
    listed = "、".join(f"{cp.code} {cp.name}" for cp in partial[:8])
    raise UserError(f"「{q}」对应多个点位：{listed}。请发送「巡查 点位编号」。")


def set_qr(session: Session, cp: Checkpoint, ticket: str, url: str | None) -> None:
    cp.qr_ticket, cp.qr_url = ticket, url
    session.add(cp)


# --- routes ---------------------------------------------------------------------------------------------


def save_route(session: Session, *, name: str, checkpoint_codes: list[str], start: time, end: time,
               now: datetime, schedule: str = SCHOOL_DAYS, schedule_day: int | None = None,
               schedule_date: date | None = None, roles: list[str] | None = None,
               person_ids: list[int] | None = None, key: str | None = None) -> InspectionRoute:
    """Create a route, or update the one with this key (built-in) or name, with its checkpoints in order."""
    name = _clean(name, MAX_NAME, "路线名称", required=True)
    if schedule not in SCHEDULES:
        raise UserError(f"未知的巡查周期：{schedule}")
    if end <= start:
        raise UserError("巡查时段的结束时间应晚于开始时间")
    if schedule == ONCE and schedule_date is None:
        raise UserError("一次性巡查需要日期")
    cps: list[Checkpoint] = []
    for code in checkpoint_codes:
        cp = session.exec(select(Checkpoint).where(Checkpoint.code == code.strip().upper())).first()
        if cp is None:
            raise UserError(f"点位编号 {code} 不存在，请先导入点位")
        if cp not in cps:
            cps.append(cp)
    if not cps:
        raise UserError("路线至少需要一个点位")
    found = None
    if key:
        found = session.exec(select(InspectionRoute).where(InspectionRoute.key == key)).first()
    if found is None:
        found = session.exec(select(InspectionRoute).where(InspectionRoute.name == name,
                                                           col(InspectionRoute.key).is_(None) if not key
                                                           else InspectionRoute.key == key)).first()
    route = found or InspectionRoute(name=name, start=start, end=end, created_at=now, key=key)
    route.name, route.schedule, route.schedule_day, route.schedule_date = name, schedule, schedule_day, schedule_date
    route.start, route.end, route.active = start, end, True
    route.roles = ",".join(roles or [])
    route.person_ids = ids_text(person_ids or [])
    session.add(route)
    session.flush()
    assert route.id is not None
    for old in session.exec(select(RouteStop).where(RouteStop.route_id == route.id)).all():
        session.delete(old)
    session.flush()
    for i, cp in enumerate(cps):
        assert cp.id is not None
        session.add(RouteStop(route_id=route.id, checkpoint_id=cp.id, position=i))
    session.flush()
    return route


def all_routes(session: Session, active_only: bool = True) -> list[InspectionRoute]:
    stmt = select(InspectionRoute)
    if active_only:
        stmt = stmt.where(InspectionRoute.active == True)
    return list(session.exec(stmt.order_by(col(InspectionRoute.id))).all())


# --- rounds ---------------------------------------------------------------------------------------------


def ensure_round(session: Session, route: InspectionRoute, day: date) -> InspectionRound:
    """The route's round on `day`, created once whoever asks first (a scan, or the job)."""
    assert route.id is not None
    stmt = select(InspectionRound).where(InspectionRound.route_id == route.id, InspectionRound.day == day)
    found = session.exec(stmt).first()
    if found is not None:
        return found
    starts, ends = window_of(route, day)
    try:
        with session.begin_nested():
            rnd = InspectionRound(route_id=route.id, day=day, starts_at=starts, ends_at=ends)
            session.add(rnd)
            session.flush()
        return rnd
    except IntegrityError:  # another process created it a moment ago
        got = session.exec(stmt).first()
        assert got is not None
        return got


def _lock_round(session: Session, round_id: int) -> InspectionRound | None:
    return session.exec(select(InspectionRound).where(InspectionRound.id == round_id)
                        .with_for_update().execution_options(populate_existing=True)).first()


def due_routes(session: Session, now: datetime) -> list[InspectionRoute]:
    """Routes whose window is open now, on a day they run."""
    t = now.time()
    return [r for r in all_routes(session) if r.start <= t < r.end and runs_on(r, now.date())]


@dataclass
class Progress:
    route: InspectionRoute
    round: InspectionRound
    done: list[Checkpoint] = field(default_factory=list)
    missing: list[Checkpoint] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.missing)


def progress(session: Session, rnd: InspectionRound) -> Progress:
    route = session.get(InspectionRoute, rnd.route_id)
    assert route is not None and route.id is not None
    visited = set(session.exec(select(InspectionVisit.checkpoint_id).where(InspectionVisit.round_id == rnd.id)).all())
    p = Progress(route, rnd)
    for cp in stops(session, route.id):
        (p.done if cp.id in visited else p.missing).append(cp)
    return p


def my_due_rounds(session: Session, actor: Actor, now: datetime) -> list[InspectionRound]:
    out = []
    for route in due_routes(session, now):
        if actor.id in responsible_ids(session, route):
            out.append(ensure_round(session, route, now.date()))
    return out


def my_progress(session: Session, actor: Actor, now: datetime) -> list[Progress]:
    """The rounds due now for this person, else today's rounds of theirs (done or ended)."""
    rounds = my_due_rounds(session, actor, now)
    if not rounds:
        mine = [r.id for r in all_routes(session) if actor.id in responsible_ids(session, r)]
        if mine:
            rounds = list(session.exec(select(InspectionRound).where(col(InspectionRound.route_id).in_(mine),
                                                                      InspectionRound.day == now.date())
                                       .order_by(col(InspectionRound.starts_at))).all())
    return [progress(session, r) for r in rounds]


# --- scanning and answering -----------------------------------------------------------------------------


@dataclass
class ScanOutcome:
    checkpoint: Checkpoint
    visit: InspectionVisit | None = None  # None: scan-to-report (a teacher with no round due)
    progress: Progress | None = None  # the round the visit counts for (None: an extra check)
    repeat: bool = False  # this checkpoint was already visited in the round


def scan(session: Session, actor: Actor, cp: Checkpoint, *, now: datetime, via: str = "scan") -> ScanOutcome:
    """A scan of `cp`: a visit in a round due for this person that includes it; else an extra check by
    inspecting staff; else (a teacher) nothing is recorded and the caller starts scan-to-report."""
    if not actor.is_staff:
        raise UserError("该二维码用于学校巡查和报修，仅限教职工使用。")
    for rnd in my_due_rounds(session, actor, now):
        assert rnd.id is not None
        if cp.id in {c.id for c in stops(session, rnd.route_id)}:
            repeat = session.exec(select(InspectionVisit.id).where(InspectionVisit.round_id == rnd.id,
                                                                   InspectionVisit.checkpoint_id == cp.id)).first()
            visit = _visit(session, actor, cp, rnd.id, now, via)
            return ScanOutcome(cp, visit, progress(session, rnd), repeat=repeat is not None)
    if actor.has(*INSPECTORS) or via == "text":
        return ScanOutcome(cp, _visit(session, actor, cp, None, now, via))
    return ScanOutcome(cp)


def _visit(session: Session, actor: Actor, cp: Checkpoint, round_id: int | None, now: datetime,
           via: str) -> InspectionVisit:
    assert cp.id is not None
    visit = InspectionVisit(checkpoint_id=cp.id, round_id=round_id, person_id=actor.id, at=now, via=via)
    session.add(visit)
    session.flush()
    return visit


def open_visit(session: Session, actor: Actor, now: datetime) -> InspectionVisit:
    """The person's last scan not yet answered with 正常/异常 (within OPEN_VISIT)."""
    visit = session.exec(select(InspectionVisit).where(InspectionVisit.person_id == actor.id,
                                                       col(InspectionVisit.at) >= now - OPEN_VISIT)
                         .order_by(col(InspectionVisit.id).desc()).with_for_update()).first()
    if visit is None or visit.result is not None:
        raise UserError("请先扫描点位上的二维码（或发送「巡查 点位编号」），再回复「正常」或「异常 情况说明」。")
    return visit


@dataclass
class Answer:
    visit: InspectionVisit
    checkpoint: Checkpoint
    progress: Progress | None
    finding: InspectionFinding | None = None
    ticket: repair.RepairTicket | None = None
    worker: repair.Worker | None = None


def _answer(session: Session, visit: InspectionVisit) -> tuple[Checkpoint, Progress | None]:
    cp = session.get(Checkpoint, visit.checkpoint_id)
    assert cp is not None
    rnd = session.get(InspectionRound, visit.round_id) if visit.round_id else None
    return cp, (progress(session, rnd) if rnd else None)


def mark_normal(session: Session, actor: Actor, *, now: datetime) -> Answer:
    visit = open_visit(session, actor, now)
    visit.result = NORMAL
    session.add(visit)
    cp, p = _answer(session, visit)
    return Answer(visit, cp, p)


def report_problem(session: Session, actor: Actor, note: str, *, now: datetime) -> Answer:
    """`异常 <说明>`: the finding, and a repair ticket for the checkpoint's place (category from the text)."""
    note = _clean(note, MAX_NOTE, "异常说明")
    if not note:
        raise UserError("请写上异常情况，例如：异常 压力表指针在红区")
    visit = open_visit(session, actor, now)
    cp, _ = _answer(session, visit)
    visit.result, visit.note = ABNORMAL, note
    session.add(visit)
    session.flush()
    ticket, worker = repair.create_ticket(session, actor, cp.place[: repair.MAX_PLACE],
                                          f"{cp.name}：{note}（巡查 {visit.ref} 发现）"[: repair.MAX_DESCRIPTION],
                                          now=now)
    assert cp.id is not None and visit.id is not None
    finding = InspectionFinding(visit_id=visit.id, checkpoint_id=cp.id, description=note, ticket_id=ticket.id,
                                created_at=now)
    session.add(finding)
    session.flush()
    _, p = _answer(session, visit)
    return Answer(visit, cp, p, finding, ticket, worker)


def add_finding_photo(session: Session, finding_id: int, media_id: str | None, pic_url: str | None, *,
                      now: datetime) -> InspectionFinding:
    """A photo sent after `异常`: kept with the finding's repair ticket (the worker sees it there)."""
    finding = session.get(InspectionFinding, finding_id)
    if finding is None:
        raise NotFound("巡查发现")
    if finding.photos >= repair.MAX_PHOTOS:
        raise UserError(f"最多{repair.MAX_PHOTOS}张照片。")
    if finding.ticket_id is not None:
        session.add(repair.RepairPhoto(ticket_id=finding.ticket_id, media_id=media_id, pic_url=pic_url,
                                       created_at=now))
    finding.photos += 1
    session.add(finding)
    return finding


def finding_for_ticket(session: Session, ticket_id: int) -> InspectionFinding | None:
    """The other direction of the link: which inspection finding opened a repair ticket."""
    return session.exec(select(InspectionFinding).where(InspectionFinding.ticket_id == ticket_id)).first()


# --- the jobs: reminding and closing rounds --------------------------------------------------------------


def remind_due_rounds(session: Session, now: datetime) -> int:
    """Rounds whose window has opened: the people responsible are told the route and how many checkpoints —
    once per round (the reminded_at mark under a row lock, and unique outbox dedup keys)."""
    count = 0
    for route in due_routes(session, now):
        if route.created_at > datetime.combine(now.date(), route.end):
            continue
        rnd = ensure_round(session, route, now.date())
        assert rnd.id is not None
        locked = _lock_round(session, rnd.id)
        if locked is None or locked.reminded_at is not None:
            continue
        locked.reminded_at = now
        session.add(locked)
        assert route.id is not None
        cps = stops(session, route.id)
        text = (f"巡查提醒：现在开始「{route.name}」（{route.start:%H:%M}–{route.end:%H:%M}），共 {len(cps)} 个点位："
                + "、".join(cp.name for cp in cps[:10]) + ("等" if len(cps) > 10 else "")
                + "。到达点位后用微信扫描点位二维码，按提示回复「正常」或「异常 情况说明」；"
                  "发送「巡查进度」查看完成情况。")
        outbox.notify(session, responsible_ids(session, route), KIND, text, now=now, data={"round": rnd.id},
                      dedup=f"xc-round:{rnd.id}:remind")
        count += 1
    return count


def close_ended_rounds(session: Session, now: datetime) -> int:
    """Rounds whose window has ended: missed checkpoints go to the people responsible and the admins, once.

    Today's routes that ended with no round at all (nobody scanned, the job was down) are closed too."""
    for route in all_routes(session):
        starts, ends = window_of(route, now.date())
        if ends <= now and runs_on(route, now.date()) and route.created_at <= starts:
            ensure_round(session, route, now.date())
    ended = session.exec(select(InspectionRound.id).where(col(InspectionRound.closed_at).is_(None),
                                                          col(InspectionRound.ends_at) <= now)
                         .order_by(col(InspectionRound.id))).all()
    admins = [p.id for p in people_with_role(session, "admin")]
    count = 0
    for rid in ended:
        rnd = _lock_round(session, rid)
        if rnd is None or rnd.closed_at is not None:
            continue  # another process closed it while we waited for the lock
        p = progress(session, rnd)
        rnd.closed_at, rnd.missed = now, len(p.missing)
        session.add(rnd)
        if not p.missing:
            continue
        missing = "、".join(f"{cp.name}（{cp.code}）" for cp in p.missing)
        who = responsible_ids(session, p.route)
        names = "、".join(n for n in (session.get(Person, i).name for i in who) if n)  # type: ignore[union-attr]
        text = (f"漏检提醒：{rnd.day:%m月%d日}「{p.route.name}」（{p.route.start:%H:%M}–{p.route.end:%H:%M}）"
                f"已结束，{len(p.missing)} 个点位未巡查：{missing}。已完成 {len(p.done)}/{p.total}。")
        outbox.notify(session, who, KIND, text, now=now, data={"round": rid}, dedup=f"xc-round:{rid}:missed")
        outbox.notify(session, [a for a in admins if a not in who], KIND, text + f"负责人：{names or '未指定'}。",
                      now=now, data={"round": rid}, dedup=f"xc-round:{rid}:missed")
        count += 1
    return count


# --- reading: the ledger ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    visit: InspectionVisit
    checkpoint: Checkpoint
    route: str  # route name, or 临时检查 for an extra check
    person: str
    finding: InspectionFinding | None
    ticket: repair.RepairTicket | None

    @property
    def result_text(self) -> str:
        return self.visit.result or "未反馈"

    @property
    def handling(self) -> str:
        """发现问题及处理: the finding and where its repair stands."""
        if self.finding is None:
            return ""
        text = self.finding.description
        if self.ticket is not None:
            text += f"；已报修 {self.ticket.ref}（{self.ticket.state}）"
        return text


@dataclass
class LedgerFilter:
    route_id: int | None = None
    checkpoint_id: int | None = None
    person: str = ""
    start: date | None = None
    end: date | None = None  # inclusive
    result: str = ""  # 正常 | 异常 | 未反馈


def ledger(session: Session, f: LedgerFilter, limit: int = 5000) -> list[LedgerRow]:
    stmt = (select(InspectionVisit, Checkpoint, Person.name, InspectionRoute.name, InspectionFinding,
                   repair.RepairTicket)
            .join(Checkpoint, col(Checkpoint.id) == col(InspectionVisit.checkpoint_id))
            .join(Person, col(Person.id) == col(InspectionVisit.person_id))
            .join(InspectionRound, col(InspectionRound.id) == col(InspectionVisit.round_id), isouter=True)
            .join(InspectionRoute, col(InspectionRoute.id) == col(InspectionRound.route_id), isouter=True)
            .join(InspectionFinding, col(InspectionFinding.visit_id) == col(InspectionVisit.id), isouter=True)
            .join(repair.RepairTicket, col(repair.RepairTicket.id) == col(InspectionFinding.ticket_id),
                  isouter=True))
    if f.route_id:
        stmt = stmt.where(InspectionRound.route_id == f.route_id)
    if f.checkpoint_id:
        stmt = stmt.where(InspectionVisit.checkpoint_id == f.checkpoint_id)
    if f.person:
        stmt = stmt.where(col(Person.name).contains(f.person.strip()))
    if f.start:
        stmt = stmt.where(col(InspectionVisit.at) >= datetime.combine(f.start, time()))
    if f.end:
        stmt = stmt.where(col(InspectionVisit.at) < datetime.combine(f.end + timedelta(days=1), time()))
    if f.result in (NORMAL, ABNORMAL):
        stmt = stmt.where(InspectionVisit.result == f.result)
    elif f.result == "未反馈":
        stmt = stmt.where(col(InspectionVisit.result).is_(None))
    rows = session.exec(stmt.order_by(col(InspectionVisit.at), col(InspectionVisit.id)).limit(limit)).all()
    return [LedgerRow(v, cp, route or "临时检查", person, fnd, t) for v, cp, person, route, fnd, t in rows]


def open_findings(session: Session) -> list[tuple[InspectionFinding, Checkpoint, repair.RepairTicket | None]]:
    """Findings whose repair is not finished (or that have no ticket)."""
    rows = session.exec(select(InspectionFinding, Checkpoint, repair.RepairTicket)
                        .join(Checkpoint, col(Checkpoint.id) == col(InspectionFinding.checkpoint_id))
                        .join(repair.RepairTicket, col(repair.RepairTicket.id) == col(InspectionFinding.ticket_id),
                              isouter=True)
                        .order_by(col(InspectionFinding.id))).all()
    return [(f, cp, t) for f, cp, t in rows if t is None or t.state in repair.OPEN]


@dataclass(frozen=True)
class TodayRound:
    route: InspectionRoute
    done: int
    total: int
    state: str  # 未开始 | 进行中 | 已完成 | 有漏检


def today_rounds(session: Session, now: datetime) -> list[TodayRound]:
    """The dashboard: every route that runs today, how far its round got."""
    out = []
    for route in all_routes(session):
        if not runs_on(route, now.date()):
            continue
        assert route.id is not None
        rnd = session.exec(select(InspectionRound).where(InspectionRound.route_id == route.id,
                                                         InspectionRound.day == now.date())).first()
        total = len(stops(session, route.id))
        if rnd is None:
            starts, ends = window_of(route, now.date())
            state = "未开始" if now < starts else ("有漏检" if now >= ends else "进行中")
            out.append(TodayRound(route, 0, total, state))
            continue
        p = progress(session, rnd)
        if not p.missing:
            state = "已完成"
        elif now >= rnd.ends_at:
            state = "有漏检"
        else:
            state = "进行中" if now >= rnd.starts_at else "未开始"
        out.append(TodayRound(route, len(p.done), p.total, state))
    return out


def count_visits(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(InspectionVisit)).one())


# --- the XLSX export: the paper 消防巡查记录表, one sheet per month ------------------------------------------

XLSX_HEADERS = ("日期", "时间", "部位", "情况", "发现问题及处理", "巡查人")
OPEN_HEADERS = ("发现日期", "部位", "问题", "报修单", "维修状态")


def part_text(cp: Checkpoint) -> str:
    return f"{cp.name}（{cp.location}）" if cp.location and cp.location not in cp.name else cp.name


def export_xlsx(rows: list[LedgerRow], findings: list[tuple[InspectionFinding, Checkpoint, repair.RepairTicket | None]],
                *, title: str = "消防巡查记录表", today: date | None = None) -> bytes:
    """The ledger as the paper form: a sheet per month (日期, 时间, 部位, 情况, 发现问题及处理, 巡查人) under a
    title row, then a sheet of the findings whose repair is still open."""
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]

    def sheet(name: str, heading: str, headers: tuple[str, ...], widths: tuple[int, ...]) -> object:
        ws = wb.create_sheet(name)
        ws.append([heading])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
        ws["A1"].font = Font(size=16, bold=True)
        ws["A1"].alignment = Alignment(horizontal="center")
        ws.append(list(headers))
        for i, w in enumerate(widths, start=1):
            cell = ws.cell(row=2, column=i)
            cell.font, cell.border, cell.alignment = Font(bold=True), box, Alignment(horizontal="center")
            ws.column_dimensions[cell.column_letter].width = w
        ws.freeze_panes = "A3"
        return ws

    months: dict[tuple[int, int], list[LedgerRow]] = {}
    for r in rows:
        months.setdefault((r.visit.at.year, r.visit.at.month), []).append(r)
    if not months:
        d = today or date.today()
        months[(d.year, d.month)] = []
    red = Font(color="C00000")
    for (y, m), month_rows in sorted(months.items()):
        ws: Any = sheet(f"{y}年{m}月", f"{title}（{y}年{m}月）", XLSX_HEADERS, (12, 8, 30, 8, 46, 10))
        for r in month_rows:
            ws.append([f"{r.visit.at:%Y-%m-%d}", f"{r.visit.at:%H:%M}", part_text(r.checkpoint), r.result_text,
                       r.handling, r.person])
            for cell in ws[ws.max_row]:
                cell.border = box
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            if r.visit.result == ABNORMAL:
                ws.cell(row=ws.max_row, column=4).font = red
    ws = sheet("未整改问题", "巡查发现的未整改问题", OPEN_HEADERS, (12, 30, 40, 10, 10))
    for f, cp, t in findings:
        ws.append([f"{f.created_at:%Y-%m-%d}", part_text(cp), f.description, t.ref if t else "",
                   t.state if t else "未报修"])
        for cell in ws[ws.max_row]:
            cell.border = box
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def dashboard_panel(session: Session, now: datetime) -> dict[str, Any]:
    """What the console's dashboard shows: today's rounds, open findings, expired certificates ({} before the
    tables exist)."""
    if "inspectionvisit" not in sa_inspect(session.connection()).get_table_names():
        return {}
    return {"rounds": today_rounds(session, now), "findings": open_findings(session),
            "expired": certificates.expired(session, now.date())}


# --- built-in routes ------------------------------------------------------------------------------------

FIRE_KINDS = ("灭火器", "消防器材", "消火栓", "应急照明", "安全出口")


@dataclass(frozen=True)
class BuiltinRoute:
    key: str
    name: str
    kinds: tuple[str, ...]  # the route visits every active checkpoint of these kinds, in code order
    schedule: str
    start: time
    hours: float
    roles: tuple[str, ...]
    day: int | None = None
    on: date | None = None


def sync_builtin_routes(session: Session, specs: list[BuiltinRoute], *, now: datetime) -> list[str]:
    """Create or update the built-in routes (keyed builtin:…) from the checkpoints of their kinds; a route whose
    kinds have no checkpoint yet is left out (and deactivated if it existed). Returns one line per route."""
    lines = []
    for spec in specs:
        codes = [cp.code for cp in all_checkpoints(session, active_only=True) if cp.kind in spec.kinds]
        key = f"builtin:{spec.key}"
        if not codes:
            old = session.exec(select(InspectionRoute).where(InspectionRoute.key == key)).first()
            if old is not None and old.active:
                old.active = False
                session.add(old)
            lines.append(f"巡查路线「{spec.name}」：还没有{'/'.join(spec.kinds[:3])}等点位，未建立")
            continue
        end_minutes = min(spec.start.hour * 60 + spec.start.minute + int(spec.hours * 60), 23 * 60 + 59)
        route = save_route(session, name=spec.name, checkpoint_codes=codes, start=spec.start,
                           end=time(end_minutes // 60, end_minutes % 60), schedule=spec.schedule,
                           schedule_day=spec.day, schedule_date=spec.on, roles=list(spec.roles), key=key, now=now)
        lines.append(f"巡查路线「{route.name}」：{describe_schedule(route)}，{len(codes)} 个点位，"
                     f"{responsible_text(session, route)}负责")
    return lines

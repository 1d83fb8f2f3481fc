"""Checkpoints and routes: what is inspected (a checkpoint with its QR scene and check items), in which order,
on which days and in which time window, and by whom (roles and/or named people); the built-in routes kept in step
with the checkpoints of their kinds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlmodel import Session, col, select

from storage.errors import NotFound, UserError
from storage.inspection.models import (
    DAILY,
    DEFAULT_KIND,
    MAX_CODE,
    MAX_LOCATION,
    MAX_NAME,
    MONTHLY,
    ONCE,
    SCHEDULES,
    SCHOOL_DAYS,
    WEEKLY,
    Checkpoint,
    InspectionRoute,
    RouteStop,
    split_items,
)
from storage.people import ROLES, Person, people_with_role
from storage.schoolcal import WEEKDAY_NAMES, is_school_day, next_school_day

__all__ = ["FIRE_KINDS", "BuiltinRoute", "all_checkpoints", "all_routes", "checkpoint_by_scene", "describe_schedule",
           "find_checkpoint", "ids_text", "import_checkpoints", "parse_ids", "responsible_ids", "responsible_text",
           "runs_on", "save_checkpoint", "save_route", "set_qr", "stops", "sync_builtin_routes", "window_of"]


# --- schedules and who is responsible -------------------------------------------------------------------


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


def clean_field(value: str | None, limit: int, what: str, required: bool = False) -> str:
    """A text field as typed, trimmed; a refusal when it is required and empty, or too long (rounds use it too)."""
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
    code = clean_field(code, MAX_CODE, "点位编号", required=True).upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9_\-]*", code):
        raise UserError(f"点位编号「{code}」只能用字母、数字、- 和 _")
    name = clean_field(name, MAX_NAME, "点位名称", required=True)
    location = clean_field(location, MAX_LOCATION, "位置")
    kind = clean_field(kind, 20, "类型") or DEFAULT_KIND
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
    name = clean_field(name, MAX_NAME, "路线名称", required=True)
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

"""The console's read-only views of inspections: the 巡查记录 ledger (filtered), the findings whose repair is still
open, today's rounds for the dashboard, and the XLSX laid out like the paper 消防巡查记录表."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from sqlalchemy import func
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, col, select

from storage import certificates, repair
from storage.inspection.checkpoints import all_routes, runs_on, stops, window_of
from storage.inspection.models import (
    ABNORMAL,
    NORMAL,
    Checkpoint,
    InspectionFinding,
    InspectionRound,
    InspectionRoute,
    InspectionVisit,
)
from storage.inspection.rounds import progress
from storage.people import Person

__all__ = ["OPEN_HEADERS", "XLSX_HEADERS", "LedgerFilter", "LedgerRow", "TodayRound", "count_visits",
           "dashboard_panel", "export_xlsx", "ledger", "open_findings", "part_text", "today_rounds"]


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

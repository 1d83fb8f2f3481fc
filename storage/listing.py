"""What every console list (台账) and its Excel export share: the filters, a page of rows, search by record number
or text, date ranges, and the one-sheet XLSX writer.

Each domain's own lists are in its package (`storage/<domain>/queries.py`); `storage.ledger` puts them together
(the export registry, the dashboard). The console's lists and the Excel exports use the same queries, so what you
see filtered on screen is what you download. Times are naive school-local, as stored.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Font, PatternFill  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
from sqlalchemy import func, inspect
from sqlmodel import Session, col, select

from storage.errors import UserError
from storage.kernel import Ref, parse_day
from storage.redact import redact

__all__ = ["EXPORT_LIMIT", "PER_PAGE", "XL_DATE", "XL_DATETIME", "Filters", "Page", "Sheet", "fmt_dt", "has_table",
           "in_range", "paged", "parse_date", "ref_or_text", "to_xlsx", "xl_time", "yes_no"]

T = TypeVar("T")
PER_PAGE = 50
EXPORT_LIMIT = 100_000  # one sheet; far beyond a school's year of any ledger


@dataclass(frozen=True)
class Filters:
    """What a list or an export is narrowed to. `end` is inclusive (a whole day)."""

    q: str = ""
    start: date | None = None
    end: date | None = None
    state: str = ""
    kind: str = ""
    flag: str = ""  # a ledger-specific switch: 紧急, 在校, 黑名单 …

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        lo = datetime.combine(self.start, time()) if self.start else None
        hi = datetime.combine(self.end + timedelta(days=1), time()) if self.end else None
        return lo, hi

    @property
    def like(self) -> str | None:
        q = self.q.strip()
        if not q:
            return None
        return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, (self.total + self.per_page - 1) // self.per_page)


def parse_date(text: str | None) -> date | None:
    """`2026-12-01` (what <input type=date> sends), also `2026/12/1`; empty → None; else a Chinese error."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = parse_day(text)
    except ValueError:
        raise UserError(f"日期格式不对：{text[:30]}（例如 2026-12-01）") from None
    if not 1900 <= day.year <= 2999:  # 9999-12-31 would overflow the day after it
        raise UserError(f"日期超出范围：{text[:30]}（例如 2026-12-01）")
    return day


def ref_or_text(f: Filters, prefix: str, id_column: Any, *columns: Any) -> list[Any]:
    """A ledger's search box: the text in any of `columns`, or the record's own number (`BX12` or `12`)."""
    conds: list[Any] = [col(c).ilike(f.like, escape="\\") for c in columns]
    n = Ref.search(f.q, prefix)
    if n is not None:
        conds.append(col(id_column) == n)
    return conds


def in_range(column: Any, f: Filters) -> list[Any]:
    lo, hi = f.bounds()
    conds = []
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column < hi)
    return conds


def paged(session: Session, stmt: Any, page: int, per_page: int = PER_PAGE) -> tuple[list[Any], int]:
    total = session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one()
    page = max(1, page)
    rows = session.exec(stmt.offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), int(total)


_present: set[tuple[int, str]] = set()


def has_table(session: Session, name: str) -> bool:
    """Whether a domain's table exists yet (its migration may not have run): the console then says so."""
    bind = session.get_bind()
    key = (id(bind), name)
    if key in _present:
        return True
    if inspect(session.connection()).has_table(name):
        _present.add(key)
        return True
    return False


def fmt_dt(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


# --- exports -----------------------------------------------------------------------------------------------

XL_DATETIME = "yyyy-mm-dd hh:mm"
XL_DATE = "yyyy-mm-dd"


def xl_time(value: datetime | None) -> datetime | str:
    """A time for an export: a real Excel date cell (to_xlsx gives it a number format), blank when unset."""
    return value.replace(second=0, microsecond=0) if value else ""


def yes_no(flag: bool | None) -> str:
    return "是" if flag else "否"


@dataclass
class Sheet:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    widths: list[int] = field(default_factory=list)


def to_xlsx(sheet: Sheet, subtitle: str = "") -> bytes:
    """One sheet: a title line, the Chinese headers (frozen, filterable), one row per record."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet.title[:31]
    ws.append(sheet.headers)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in ws[1]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for row in sheet.rows:
        ws.append([_cell(v) for v in row])
        for cell, value in zip(ws[ws.max_row], row, strict=False):
            if cell.data_type == "f":  # text that starts with "=" stays text: no formulas from user input
                cell.data_type = "s"
            elif isinstance(value, datetime):  # dates are dates in Excel: sortable, filterable, computable
                cell.number_format = XL_DATETIME
            elif isinstance(value, date):
                cell.number_format = XL_DATE
    for i, width in enumerate(sheet.widths or [14] * len(sheet.headers), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    if sheet.rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(sheet.headers))}{len(sheet.rows) + 1}"
    wb.properties.title = sheet.title + (f"（{subtitle}）" if subtitle else "")
    wb.properties.creator = "校园后勤助手"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _cell(value: Any) -> Any:
    # Control characters are not allowed in XLSX cells (openpyxl refuses them): dropped. An export leaves the
    # building: no secret and no full phone or ID number in any cell, whatever the text it came from.
    return redact(_ILLEGAL.sub("", value)) if isinstance(value, str) else value

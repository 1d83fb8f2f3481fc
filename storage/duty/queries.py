"""The console's read-only views of the duty rota: the list by date range (and its export), and how far it goes."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.duty.models import DutyRota
from storage.listing import EXPORT_LIMIT, Filters, Sheet, xl_time
from storage.people import Person
from storage.schoolcal import WEEKDAY_NAMES

__all__ = ["duty_rota", "export_duty", "last_rota_day"]


def duty_rota(session: Session, f: Filters) -> list[tuple[DutyRota, str]]:
    stmt = select(DutyRota, Person.name).join(Person, col(Person.id) == col(DutyRota.leader_id))
    if f.start:
        stmt = stmt.where(col(DutyRota.day) >= f.start)
    if f.end:
        stmt = stmt.where(col(DutyRota.day) <= f.end)
    if f.like:
        stmt = stmt.where(col(Person.name).ilike(f.like, escape="\\"))
    return [(r, n) for r, n in session.exec(stmt.order_by(col(DutyRota.day)).limit(EXPORT_LIMIT)).all()]


def last_rota_day(session: Session, today: date) -> date | None:
    """The last day on the rota from `today` on (None: nothing planned)."""
    return session.exec(select(func.max(DutyRota.day)).where(col(DutyRota.day) >= today)).one()


def export_duty(session: Session, f: Filters, **_: Any) -> Sheet:
    out = [[r.day, "周" + WEEKDAY_NAMES[r.day.weekday()], name,
            {"generate": "自动排班", "import": "导入", "swap": "换班"}.get(r.source, r.source), xl_time(r.updated_at)]
           for r, name in duty_rota(session, f)]
    return Sheet("节假日行政值日", ["日期", "星期", "值班领导", "来源", "更新时间"], out, [12, 6, 12, 10, 17])

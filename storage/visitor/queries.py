"""The console's read-only views of visitors: the 访客台账 list and its export, the blacklist, and the latest views
of full numbers. Masked numbers only; a full phone number typed in the search box is matched by its keyed hash."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.listing import EXPORT_LIMIT, Filters, Page, Sheet, in_range, paged, ref_or_text, xl_time, yes_no
from storage.people import Person
from storage.visitor.models import IdRevealLog, VisitorBlacklist, VisitorEntry
from storage.visitor.service import keyed_hash

__all__ = ["VisitorRow", "blacklist_rows", "export_blacklist", "export_visitors", "recent_reveals", "visitors"]


@dataclass
class VisitorRow:
    entry: VisitorEntry
    guard: str


def _visitor_stmt(f: Filters, secret_key: str | None = None) -> Any:
    guard = aliased(Person)
    stmt = select(VisitorEntry, guard.name).join(guard, col(guard.id) == col(VisitorEntry.guard_id), isouter=True)
    if f.flag == "in":
        stmt = stmt.where(col(VisitorEntry.checked_out_at).is_(None))
    elif f.flag == "blacklist":
        stmt = stmt.where(VisitorEntry.blacklisted == True)
    if f.like:
        conds = ref_or_text(f, "FK", VisitorEntry.id, VisitorEntry.name, VisitorEntry.host_name, VisitorEntry.purpose,
                            VisitorEntry.plate)
        digits = re.sub(r"\D", "", f.q)
        if secret_key and len(digits) == 11:  # a full phone number: matched through its keyed hash, never stored
            conds.append(col(VisitorEntry.phone_hash) == keyed_hash(secret_key, digits))
        stmt = stmt.where(or_(*conds))
    stmt = stmt.where(*in_range(col(VisitorEntry.checked_in_at), f))
    return stmt.order_by(col(VisitorEntry.id).desc())


def visitors(session: Session, f: Filters, page: int = 1, secret_key: str | None = None) -> Page[VisitorRow]:
    rows, total = paged(session, _visitor_stmt(f, secret_key), page)
    return Page([VisitorRow(e, g or "") for e, g in rows], total, max(1, page))


def recent_reveals(session: Session, limit: int = 50) -> list[IdRevealLog]:
    """The latest views of a full ID or phone number, newest first (`reveal_log` gives one visit's)."""
    return list(session.exec(select(IdRevealLog).order_by(col(IdRevealLog.id).desc()).limit(limit)).all())


def blacklist_rows(session: Session, f: Filters) -> list[VisitorBlacklist]:
    stmt = select(VisitorBlacklist)
    like = f.like
    if like:
        stmt = stmt.where(or_(col(VisitorBlacklist.reason).ilike(like, escape="\\"),
                              col(VisitorBlacklist.value_masked).ilike(like, escape="\\"),
                              col(VisitorBlacklist.created_by).ilike(like, escape="\\")))
    return list(session.exec(stmt.order_by(col(VisitorBlacklist.id).desc())).all())


# --- exports -----------------------------------------------------------------------------------------------


def export_visitors(session: Session, f: Filters, secret_key: str | None = None, **_: Any) -> Sheet:
    """Masked only: the export leaves the building, the full numbers never do."""
    rows = session.exec(_visitor_stmt(f, secret_key).order_by(None).order_by(col(VisitorEntry.id)).limit(EXPORT_LIMIT)).all()
    out = [[f"FK{e.id}", e.name, e.phone_masked, e.id_masked or "", e.party, e.plate or "", e.purpose,
            e.host_name or "", guard or "", xl_time(e.checked_in_at), xl_time(e.checked_out_at),
            yes_no(e.blacklisted)] for e, guard in rows]
    return Sheet("访客台账", ["编号", "姓名", "手机（脱敏）", "身份证号（脱敏）", "人数", "车牌", "事由", "被访人", "登记门卫",
                          "入校时间", "离校时间", "黑名单"], out, [8, 10, 14, 22, 6, 10, 24, 10, 10, 17, 17, 7])


def export_blacklist(session: Session, f: Filters, **_: Any) -> Sheet:
    out = [[b.id, "手机" if b.kind == "phone" else "身份证", b.value_masked, b.reason, b.created_by, xl_time(b.created_at)]
           for b in blacklist_rows(session, Filters(q=f.q))]
    return Sheet("访客黑名单", ["编号", "类型", "号码（脱敏）", "原因", "添加人", "添加时间"], out, [6, 8, 22, 30, 10, 17])

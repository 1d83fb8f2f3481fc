"""The rules of certificates 证照: people's certificates with an expiry date — above all canteen staff's 健康证.

The holder may never bind WeChat (canteen staff): importing creates such people without a binding. The holder
(when bound) and the admins are told 30 and 7 days before expiry, once each: a mark per threshold on the
certificate, set under a row lock in the same transaction as the outbox rows (unique dedup keys as backstop).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlmodel import Session, col, select

from storage import outbox
from storage.certificates.models import DEFAULT_TYPE, HEALTH, MAX_NUMBER, MAX_TYPE, Certificate
from storage.errors import UserError
from storage.people import Person, PersonRole, find_people, people_with_role

__all__ = ["KIND", "NOTICE_DAYS", "holder", "import_rows", "notify_expiring", "parse_day", "save"]

KIND = "system"  # outbox kind
NOTICE_DAYS = (30, 7)


def parse_day(text: str) -> date:
    s = (text or "").strip().replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s) or re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", s)
    if not m:
        raise UserError(f"「{text}」不是日期（应为 2027-03-31）")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise UserError(f"「{text}」不是有效日期") from None


def holder(session: Session, name: str, *, now: datetime, role: str | None = None) -> Person:
    """The person of that name; created without a WeChat binding when there is none (canteen staff)."""
    name = (name or "").strip()
    if not name or len(name) > 50:
        raise UserError("姓名不能为空（最多50字）")
    found = find_people(session, name)
    if len(found) > 1:
        raise UserError(f"有 {len(found)} 位同名的「{name}」，请在后台逐个录入")
    if found:
        return found[0]
    person = Person(name=name, created_at=now)
    session.add(person)
    session.flush()
    if role:
        assert person.id is not None
        session.add(PersonRole(person_id=person.id, role=role))
    return person


def save(session: Session, *, name: str, expires_on: date, now: datetime, type_: str = DEFAULT_TYPE,
         number: str = "") -> tuple[Certificate, bool]:
    """A person's certificate of a type: updated when they already have one of that type (a renewal resets the
    notices), else created. Returns (certificate, created)."""
    type_ = (type_ or DEFAULT_TYPE).strip()
    if len(type_) > MAX_TYPE or len(number or "") > MAX_NUMBER:
        raise UserError("证照类型或编号太长了")
    person = holder(session, name, now=now)
    assert person.id is not None
    cert = session.exec(select(Certificate).where(Certificate.person_id == person.id,
                                                  Certificate.type == type_)).first()
    created = cert is None
    if cert is None:
        cert = Certificate(person_id=person.id, type=type_, expires_on=expires_on, created_at=now)
    if cert.expires_on != expires_on:
        cert.notified_30_at = cert.notified_7_at = None
    cert.expires_on, cert.number = expires_on, (number or "").strip()
    session.add(cert)
    session.flush()
    return cert, created


def import_rows(session: Session, rows: list[list[str]], *, now: datetime) -> tuple[int, list[str]]:
    """CSV rows 姓名,证照类型,编号,有效期至 (类型 defaults to 健康证). Bad rows reported by line, good rows kept."""
    done, errors = 0, []
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row] + [""] * 4
        if lineno == 1 and cells[0] in ("姓名", "name"):
            continue
        if not any(cells):
            continue
        name, type_, number, expiry = cells[:4]
        if not name or not expiry:
            errors.append(f"第{lineno}行：需要 姓名,证照类型,编号,有效期至（类型可空，默认健康证）")
            continue
        try:
            with session.begin_nested():
                save(session, name=name, type_=type_ or DEFAULT_TYPE, number=number, expires_on=parse_day(expiry),
                     now=now)
        except UserError as exc:
            errors.append(f"第{lineno}行：{exc.message}")
            continue
        done += 1
    return done, errors


def notify_expiring(session: Session, now: datetime) -> int:
    """Certificates 30 and 7 days (or fewer) before expiry: holder and admins told once per threshold. One that
    is already inside 7 days when first seen gets only the 7-day notice. Returns how many notices went out."""
    today = now.date()
    admins = [p.id for p in people_with_role(session, "admin")]
    horizon = date.fromordinal(today.toordinal() + max(NOTICE_DAYS))
    due = session.exec(select(Certificate).where(col(Certificate.expires_on) >= today,
                                                 col(Certificate.expires_on) <= horizon,
                                                 col(Certificate.notified_7_at).is_(None))
                       .order_by(col(Certificate.id)).with_for_update(skip_locked=True)).all()
    count = 0
    for cert in due:
        left = (cert.expires_on - today).days
        threshold = 7 if left <= 7 else 30
        if threshold == 30 and cert.notified_30_at is not None:
            continue
        if threshold == 7:
            cert.notified_7_at = now
            cert.notified_30_at = cert.notified_30_at or now
        else:
            cert.notified_30_at = now
        session.add(cert)
        person = session.get(Person, cert.person_id)
        name = person.name if person else "?"
        when = "今天" if left == 0 else f"{left} 天后（{cert.expires_on:%Y-%m-%d}）"
        tail = "请尽快复查换证；健康证过期不得从事食堂工作。" if cert.type == HEALTH else "请及时办理续期。"
        holder_told = [cert.person_id] if (person is not None and person.openid) or cert.person_id in admins else []
        key = f"cert:{cert.id}:{cert.expires_on:%Y%m%d}:{threshold}"
        number = f"（{cert.number}）" if cert.number else ""
        for whose, told in (("您的", holder_told), (name + "的", [a for a in admins if a != cert.person_id])):
            outbox.notify(session, told, KIND, f"证照到期提醒：{whose}{cert.type}{number}将于{when}到期。{tail}",
                          now=now, data={"certificate": cert.id}, dedup=key)
        count += 1
    return count

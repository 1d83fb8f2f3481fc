"""The console's (and the CLI's) read-only view of certificates: every one with the days it has left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from storage.certificates.models import Certificate
from storage.people import Person

__all__ = ["CertRow", "expired", "listing"]


@dataclass(frozen=True)
class CertRow:
    cert: Certificate
    person: str
    days_left: int

    @property
    def expired(self) -> bool:
        return self.days_left < 0

    @property
    def status(self) -> str:
        if self.days_left < 0:
            return f"已过期 {-self.days_left} 天"
        if self.days_left <= 30:
            return f"{self.days_left} 天后到期"
        return "有效"


def listing(session: Session, today: date) -> list[CertRow]:
    rows = session.exec(select(Certificate, Person.name).join(Person, col(Person.id) == col(Certificate.person_id))
                        .order_by(col(Certificate.expires_on))).all()
    return [CertRow(c, name, (c.expires_on - today).days) for c, name in rows]


def expired(session: Session, today: date) -> list[CertRow]:
    return [r for r in listing(session, today) if r.expired]

"""People's certificates with an expiry date (健康证 …): the table, with a mark per expiry notice sent."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

__all__ = ["DEFAULT_TYPE", "HEALTH", "MAX_NUMBER", "MAX_TYPE", "Certificate"]

HEALTH = "健康证"
DEFAULT_TYPE = HEALTH
MAX_TYPE, MAX_NUMBER = 30, 60


class Certificate(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    type: str = Field(default=DEFAULT_TYPE, max_length=MAX_TYPE)
    number: str = Field(default="", max_length=MAX_NUMBER)
    expires_on: date = Field(index=True)
    notified_30_at: datetime | None = None
    notified_7_at: datetime | None = None
    created_at: datetime

"""The holiday duty rota: one row per duty day and the leader on duty, with where the day came from."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

__all__ = ["GENERATED", "IMPORTED", "SWAPPED", "DutyRota"]

GENERATED, IMPORTED, SWAPPED = "generate", "import", "swap"  # where a rota day came from


class DutyRota(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True)
    leader_id: int = Field(foreign_key="person.id", index=True)
    source: str = Field(default=GENERATED, max_length=10)  # generate | import | swap
    updated_at: datetime

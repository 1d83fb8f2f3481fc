"""The scheduler's job state: for each periodic job, the last time slot it ran in, so that of several processes
running the scheduler each slot runs once (the table keeps its name, `periodicjobstate`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col

__all__ = ["PeriodicJobState", "claim_slot", "ensure_job_row", "record_job_result"]


class PeriodicJobState(SQLModel, table=True):
    """The last time slot each periodic job ran in: claimed in the job's own transaction, once per slot."""

    name: str = Field(primary_key=True, max_length=80)
    last_slot: int = 0
    last_run_at: datetime | None = None
    last_result: str | None = Field(default=None, max_length=500)


def claim_slot(session: Session, name: str, slot: int, now: datetime) -> bool:
    """Claim time slot `slot` of periodic job `name` in this transaction; False if it already ran (or is running).

    The UPDATE … WHERE last_slot < slot takes the row lock: a second process waits for the first to commit, then
    finds the slot taken. The caller must make sure the row exists (ensure_job_row) in an earlier transaction.
    """
    result = session.execute(
        update(PeriodicJobState)
        .where(col(PeriodicJobState.name) == name, col(PeriodicJobState.last_slot) < slot)
        .values(last_slot=slot, last_run_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def ensure_job_row(session: Session, name: str) -> None:
    """The job's row, created once (a no-op when it exists), so that `claim_slot` has a row to lock."""
    table = PeriodicJobState.__table__  # type: ignore[attr-defined]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(table).values(name=name, last_slot=0).on_conflict_do_nothing(index_elements=["name"]))


def record_job_result(session: Session, name: str, result: str | None) -> None:
    """What the job's last run said (kept for whoever looks at the table)."""
    if result:
        session.execute(update(PeriodicJobState).where(col(PeriodicJobState.name) == name)
                        .values(last_result=result[:500]))


"""Visits (FK), bookings, the blacklist and the log of who saw a full number: the tables. Phone and ID numbers are
kept encrypted, as keyed hashes and masked, never in clear (see the service)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

__all__ = ["IdRevealLog", "VisitorBlacklist", "VisitorBooking", "VisitorEntry"]


class VisitorBooking(SQLModel, table=True):
    """A teacher's 预约: the guard's check-in with the same phone that day links to it."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50)
    phone_hash: str = Field(max_length=64, index=True)
    phone_enc: str = Field(max_length=255)
    phone_masked: str = Field(max_length=20)
    purpose: str = Field(max_length=200)
    expected_at: datetime = Field(index=True)
    teacher_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime


class VisitorEntry(SQLModel, table=True):
    """One visit (FK<id>): checked in by a guard, checked out by a guard."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50)
    phone_hash: str = Field(max_length=64, index=True)
    phone_enc: str = Field(max_length=255)
    phone_masked: str = Field(max_length=20)
    id_hash: str | None = Field(default=None, max_length=64, index=True)
    id_enc: str | None = Field(default=None, max_length=255)
    id_masked: str | None = Field(default=None, max_length=24)
    purpose: str = Field(max_length=200)
    host_name: str | None = Field(default=None, max_length=50)
    host_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    plate: str | None = Field(default=None, max_length=12)
    party: int = 1
    booking_id: int | None = Field(default=None, foreign_key="visitorbooking.id")
    guard_id: int = Field(foreign_key="person.id")
    blacklisted: bool = False
    checked_in_at: datetime = Field(index=True)
    checked_out_at: datetime | None = None
    checked_out_by: int | None = Field(default=None, foreign_key="person.id")
    host_denied_at: datetime | None = None  # the host answered 不认识
    long_stay_notified_at: datetime | None = None


class VisitorBlacklist(SQLModel, table=True):
    """A phone or ID number the gate must be warned about; only its keyed hash and masked form are kept."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # phone | id
    value_hash: str = Field(max_length=64, unique=True)
    value_masked: str = Field(max_length=24)
    reason: str = Field(default="", max_length=200)
    created_by: str = Field(default="", max_length=50)
    created_at: datetime


class IdRevealLog(SQLModel, table=True):
    """Who saw a visitor's full ID number or phone, and when (kept after the visit itself is purged)."""

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(index=True)  # no foreign key: the audit trail outlives the purged visit
    field_name: str = Field(max_length=20)  # id_number | phone
    admin_id: int = Field(foreign_key="person.id")
    admin_name: str = Field(max_length=50)
    revealed_at: datetime

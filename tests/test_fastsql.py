"""storage/fastsql.py: a hot statement run through the driver writes and reads exactly what SQLAlchemy's own
execution does, on both backends, and fails with SQLAlchemy's exception types."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlmodel import select as orm_select
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.fastsql import Hot
from storage.inbox import InboundMessage
from storage.outbox import OutboxMessage

T = InboundMessage.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 12, 31, 23, 59, 59)  # whole seconds: SQLite's stored text must match SQLAlchemy's anyway


def _row(key: str, at: datetime = AT) -> dict[str, object]:
    return {"msg_key": key, "openid": "o_x", "state": "done", "reply": "好", "late": False, "attempts": 0,
            "received_at": at, "done_at": at}


def test_inserts_read_back_the_same_as_sqlalchemys(db: Database) -> None:
    hot = Hot(insert(T))
    with db.session() as s:
        assert hot._compile(s.get_bind().dialect, tuple(_row("x"))) is not None  # the driver's path, not the fallback
        hot.run(s, _row("hot-1"))
        hot.run(s, [_row("hot-2"), _row("hot-3", datetime(2027, 1, 1, 0, 0, 0, 123456))])
        s.connection().execute(insert(T), _row("sa-1"))
    with db.session() as s:
        rows = {r.msg_key: r for r in s.exec(orm_select(InboundMessage))}
        raw = dict(s.connection().execute(text("SELECT msg_key, CAST(done_at AS TEXT) FROM inbound_message")).all())
    assert set(rows) == {"hot-1", "hot-2", "hot-3", "sa-1"}
    assert rows["hot-1"].done_at == AT and rows["hot-1"].late is False and rows["hot-1"].reply == "好"
    assert rows["hot-3"].received_at == datetime(2027, 1, 1, 0, 0, 0, 123456)
    assert raw["hot-1"] == raw["sa-1"]  # stored alike (on SQLite: the same text), so comparisons in SQL agree
    with db.session() as s:
        later = s.connection().execute(select(T.c.msg_key).where(T.c.done_at > datetime(2026, 12, 31, 23, 59))).all()
    assert {k for (k,) in later} == {"hot-1", "hot-2", "hot-3", "sa-1"}


def test_returning_and_select_give_tuples(db: Database) -> None:
    ins = Hot(insert(T).returning(T.c.id))
    find = Hot(select(T.c.msg_key, T.c.late).where(T.c.openid == bindparam("o")).order_by(T.c.id))
    with db.session() as s:
        (first,) = ins.run(s, _row("r-1")) or [()]
        assert isinstance(first[0], int)
        assert find.run(s, {"o": "o_x"}) == [("r-1", False)]
        assert find.run(s, {"o": "nobody"}) == []


def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(db: Database) -> None:
    hot = Hot(insert(T))
    with pytest.raises(IntegrityError), db.session() as s:
        hot.run(s, _row("dup"))
        hot.run(s, _row("dup"))  # msg_key is unique
    with db.session() as s:
        assert s.connection().execute(select(T.c.id)).all() == []


def test_a_statement_that_needs_a_default_filled_in_is_left_to_sqlalchemy(db: Database) -> None:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    partial = {"person_id": None, "openid": "o_x", "kind": "reply", "text": "好", "data": "{}",
               "next_attempt_at": AT, "created_at": AT}  # state, attempts, force_cs … from the model's defaults
    hot = Hot(insert(table))
    with db.session() as s:
        compiled = hot._compile(s.get_bind().dialect, tuple(partial))
        hot.run(s, partial)
    with db.session() as s:
        row = s.exec(orm_select(OutboxMessage)).one()
    assert compiled is None and row.state == "pending" and row.attempts == 0


def test_many_rows_go_in_as_one_statement_per_chunk_and_read_back_in_order(db: Database) -> None:
    hot = Hot(insert(T))
    rows = [_row(f"m-{i:04d}", datetime(2026, 12, 1, 9, 0, i % 60)) for i in range(250)]
    with db.session() as s:
        assert hot._compile(s.get_bind().dialect, tuple(rows[0]), 2) is not None  # the multi-row statement
        hot.run(s, rows)  # 250 rows of 8 values: chunks of 100, 100 and 50
        hot.run(s, [_row("single")])
        s.connection().execute(insert(T), _row("by-sqlalchemy", datetime(2026, 12, 1, 9, 0, 1)))
    with db.session() as s:
        got = s.connection().execute(select(T.c.msg_key, T.c.received_at).order_by(T.c.id)).all()
        text_of = dict(s.connection().execute(text("SELECT msg_key, CAST(received_at AS TEXT) FROM inbound_message")).all())
    assert [k for k, _ in got] == [r["msg_key"] for r in rows] + ["single", "by-sqlalchemy"]
    assert got[61][1] == datetime(2026, 12, 1, 9, 0, 1)
    assert text_of["m-0061"] == text_of["by-sqlalchemy"]  # stored alike, so ORDER BY and comparisons agree

"""Hot statements: SQL built once with SQLAlchemy, run straight through the driver.

SQLAlchemy's execution of an already compiled Core statement costs about 190 µs of CPU per statement on
PostgreSQL, round trip included (the execution context, parameter processing, the result object); psycopg's
own `execute` of a server-side prepared statement costs about 80 µs (measured: five INSERTs in a transaction;
a `报修` runs five such statements). `Hot` keeps the statement as a Core construct (the same SQL on every backend), compiles it once
per dialect and set of parameter names, and runs it on the session's own connection and transaction through
the driver's cursor (psycopg: prepared on the server), with SQLAlchemy's conversions of the values and of
the columns read (dates on SQLite) applied as it would. A statement that needs SQLAlchemy to fill something in (a column default, a
literal) is left to SQLAlchemy's execution, so the outcome is the same either way.

Rows come back as plain tuples (index them; no attribute access by column name).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]
MAX_ROWS = 100  # rows in one multi-row INSERT
MAX_PARAMETERS = 900  # values in one statement (old SQLite builds allow 999)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    processors: dict[str, Callable[[Any], Any]]  # SQLAlchemy's conversions of values (e.g. dates on SQLite)
    positions: tuple[str, ...] | None  # the parameter order, for a driver with positional placeholders
    results: tuple[Callable[[Any], Any] | None, ...] | None  # per column of the rows, if any needs converting
    constants: dict[str, Any]  # the values written into the statement itself


class Hot:
    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, int, tuple[str, ...], int], _Compiled | None] = {}
        self._lock = threading.Lock()

    def _compile(self, dialect: Dialect, keys: tuple[str, ...], rows: int = 0) -> _Compiled | None:
        """The statement for this dialect and these parameter names (None: leave it to SQLAlchemy); with
        `rows`, an INSERT of that many rows in one statement, its parameters named `<key>_m<row>`."""
        cache_key = (dialect.name, id(dialect), keys, rows)
        if cache_key in self._compiled:
            return self._compiled[cache_key]
        statement = self.statement
        column_keys: list[str] | None = None
        if rows:  # each value typed as its column, so that its conversion (dates on SQLite) is the column's
            columns = statement.table.c  # type: ignore[attr-defined]
            statement = statement.values(  # type: ignore[attr-defined]
                [{k: bindparam(f"{k}_m{i}", type_=columns[k].type if k in columns else None) for k in keys}
                 for i in range(rows)])
        elif isinstance(statement, Insert):  # compiled for the columns given (as SQLAlchemy does per execution)
            column_keys = list(keys)
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
        binds = compiled.binds
        if rows:
            generated = {f"{k}_m{i}" for i in range(rows) for k in keys}
            if set(binds) != generated:  # SQLAlchemy would fill in more (a column's default): leave it to it
                with self._lock:
                    self._compiled[cache_key] = None
                return None
            keys = tuple(generated)
        result: _Compiled | None = None
        # Values written into the statement (`role == "worker"`) go along as constants; anything SQLAlchemy would
        # compute per execution (a column's Python default, a list expanded into IN (…)) leaves it to SQLAlchemy.
        constants = {name: b.effective_value for name, b in binds.items() if name not in keys}
        direct = (not any(binds[name].required for name in constants)
                  and not getattr(compiled, "insert_prefetch", None) and not getattr(compiled, "update_prefetch", None)
                  and not any(b.expanding or b.literal_execute for b in binds.values())
                  and not compiled.literal_execute_params
                  and dialect.paramstyle in ("pyformat", "qmark"))
        if direct:
            processors = {name: proc for name, b in binds.items()
                          if (proc := b.type.dialect_impl(dialect).bind_processor(dialect))}
            positions = tuple(compiled.positiontup or ()) if dialect.paramstyle == "qmark" else None
            columns = getattr(self.statement, "exported_columns", ())  # a SELECT's columns, an INSERT's RETURNING
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
            result = _Compiled(str(compiled), processors, positions, results if any(results) else None, constants)
        with self._lock:
            self._compiled[cache_key] = result
        return result

    @staticmethod
    def _values(c: _Compiled, params: Mapping[str, Any]) -> Mapping[str, Any] | tuple[Any, ...]:
        if c.constants:
            params = {**c.constants, **params}
        if c.processors:
            params = {k: (c.processors[k](v) if k in c.processors else v) for k, v in params.items()}
        return params if c.positions is None else tuple(params[name] for name in c.positions)

    def run(self, session: Session | Connection, params: Params) -> list[tuple[Any, ...]] | None:
        """Execute in the session's (or the Core connection's) transaction. One mapping: one execution; a sequence: several rows (an
        INSERT: one multi-row statement; else an executemany). Returns the rows of a statement that returns
        rows, else None."""
        many = not isinstance(params, Mapping)
        if many and not params:
            return None
        if many and isinstance(self.statement, Insert):
            self._insert_rows(session, params)  # type: ignore[arg-type]
            return None
        first: Mapping[str, Any] = params[0] if many else params  # type: ignore[index,assignment]
        conn = session.connection() if isinstance(session, Session) else session
        c = self._compile(conn.dialect, tuple(first))
        if c is None:
            result = conn.execute(self.statement, params if many else first)  # type: ignore[arg-type]
            return [tuple(r) for r in result.all()] if result.returns_rows else None
        return self._execute(conn, c, params)

    def _insert_rows(self, session: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Several rows with the same columns: one multi-row INSERT per chunk (a driver's executemany costs
        a pipeline or a round trip per row; this is one statement, prepared once per number of rows)."""
        keys = tuple(rows[0])
        if any(tuple(r) != keys for r in rows):
            for row in rows:
                self.run(session, row)
            return
        conn = session.connection() if isinstance(session, Session) else session
        size = max(1, min(MAX_ROWS, MAX_PARAMETERS // max(1, len(keys))))
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            c = self._compile(conn.dialect, keys, len(chunk)) if len(chunk) > 1 else self._compile(conn.dialect, keys)
            if c is None:
                conn.execute(self.statement, list(chunk) if len(chunk) > 1 else chunk[0])
            elif len(chunk) == 1:
                self._execute(conn, c, chunk[0])
            else:
                self._execute(conn, c, {f"{k}_m{i}": v for i, row in enumerate(chunk) for k, v in row.items()})

    def _execute(self, conn: Connection, c: _Compiled, params: Params) -> list[tuple[Any, ...]] | None:
        dialect = conn.dialect
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if not isinstance(params, Mapping):
                cursor.executemany(c.sql, [self._values(c, p) for p in params])
                return None
            if c.positions is None:
                cursor.execute(c.sql, self._values(c, params), prepare=True)  # psycopg: prepared on the server
            else:
                cursor.execute(c.sql, self._values(c, params))  # sqlite3 keeps its own statement cache
            if cursor.description is None:
                return None
            rows = cursor.fetchall()
            if c.results is None:
                return rows  # type: ignore[no-any-return]
            return [tuple(p(v) if p else v for p, v in zip(c.results, row, strict=True)) for row in rows]
        except dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would: its exception types (OperationalError → 503, IntegrityError …), parameters
            # never in the text, and a connection that is gone dropped from the pool.
            if dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(c.sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                      dialect=dialect) from exc
        finally:
            try:
                cursor.close()
            except Exception:  # the connection is gone; the error above says so
                pass

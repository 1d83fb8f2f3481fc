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

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]


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
        self._compiled: dict[tuple[str, int, tuple[str, ...]], _Compiled | None] = {}
        self._lock = threading.Lock()

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled | None:
        """The statement for this dialect and these parameter names (None: leave it to SQLAlchemy)."""
        cache_key = (dialect.name, id(dialect), keys)
        if cache_key in self._compiled:
            return self._compiled[cache_key]
        # An INSERT without .values() is compiled for the columns given (as SQLAlchemy does per execution).
        column_keys = list(keys) if isinstance(self.statement, Insert) else None
        compiled = self.statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
        binds = compiled.binds
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

    def run(self, session: Session, params: Params) -> list[tuple[Any, ...]] | None:
        """Execute in the session's transaction. One mapping: one execution; a sequence: an executemany
        (one round trip). Returns the rows of a statement that returns rows, else None."""
        many = not isinstance(params, Mapping)
        if many and not params:
            return None
        first: Mapping[str, Any] = params[0] if many else params  # type: ignore[index,assignment]
        conn = session.connection()
        dialect = conn.dialect
        c = self._compile(dialect, tuple(first))
        if c is None:
            result = conn.execute(self.statement, params if many else first)  # type: ignore[arg-type]
            return [tuple(r) for r in result.all()] if result.returns_rows else None
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(c.sql, [self._values(c, p) for p in params])  # type: ignore[union-attr]
                return None
            if c.positions is None:
                cursor.execute(c.sql, self._values(c, first), prepare=True)  # psycopg: prepared on the server
            else:
                cursor.execute(c.sql, self._values(c, first))  # sqlite3 keeps its own statement cache
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

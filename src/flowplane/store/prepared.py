"""Hot statements run straight on the DBAPI cursor.

SQLAlchemy Core costs ~60 µs per execution here even with a prebuilt statement and a warm
compile cache (execution context, cache key, result set-up); the driver itself takes a few
µs. A :class:`Prepared` statement is compiled once per dialect and parameter-key set into
the driver's SQL and paramstyle (``?`` for sqlite3, ``%(name)s`` for psycopg), with the
column types' bind and result processors looked up once, and then executed on the
connection's DBAPI cursor inside the SQLAlchemy transaction.

It behaves like ``Connection.execute`` where it matters: ``before_cursor_execute`` and
``after_cursor_execute`` listeners are called, and driver errors are raised as
SQLAlchemy's ``DBAPIError`` subclasses (a lost connection invalidates it), so the store's
retry and error handling see no difference. Only statements without expanding (``IN``)
parameters can be prepared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

Processor = Callable[[Any], Any]
Row = dict[str, Any]


class _Compiled:
    """One statement compiled for one dialect and set of parameter keys."""

    __slots__ = ("binds", "compiled", "names", "positional", "results", "sql")

    def __init__(self, stmt: Any, dialect: sa.Dialect, keys: Sequence[str]) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("statements with expanding parameters cannot be prepared")
        self.compiled = compiled
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        self.names: list[str] = list(compiled.positiontup or ())
        self.binds: list[tuple[str, Processor]] = []
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds.append((name, processor))
        # Selected or RETURNING columns (none for plain DML).
        columns = list(stmt.exported_columns)
        self.results: list[tuple[str, Processor | None]] | None = (
            [
                (col.key, col.type.dialect_impl(dialect).result_processor(dialect, None))
                for col in columns
            ]
            if columns
            else None
        )

    def args(self, params: dict[str, Any]) -> Any:
        values = self.compiled.construct_params(params)
        # Like SQLAlchemy, processors see None too (JSON stores None as JSON null).
        for name, processor in self.binds:
            values[name] = processor(values.get(name))
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values


class Prepared:
    """A prebuilt statement executed on the DBAPI cursor (see the module docstring)."""

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: sa.Dialect, params: dict[str, Any]) -> _Compiled:
        key = (dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.stmt, dialect, list(params))
        return compiled

    def execute(self, conn: sa.Connection, params: dict[str, Any]) -> tuple[list[Row], int]:
        """Execute once; return ``(rows as dicts, rowcount)`` (no rows without RETURNING)."""
        compiled = self._for(conn.dialect, params)
        return _run(conn, compiled, compiled.args(params), False)

    def execute_many(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Execute once per parameter set (all sets must have the same keys)."""
        if not rows:
            return
        compiled = self._for(conn.dialect, rows[0])
        args = [compiled.args(row) for row in rows]
        if len(args) == 1:
            _run(conn, compiled, args[0], False)
        else:
            _run(conn, compiled, args, True)


class _Plain:
    """Driver SQL without parameters or results (``BEGIN IMMEDIATE``)."""

    results = None

    def __init__(self, sql: str) -> None:
        self.sql = sql


def execute_sql(conn: sa.Connection, sql: str) -> None:
    """Run parameterless driver SQL on the DBAPI cursor, like ``exec_driver_sql``."""
    _run(conn, _Plain(sql), (), False)


def _run(
    conn: sa.Connection, compiled: _Compiled | _Plain, args: Any, many: bool
) -> tuple[list[Row], int]:
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    sql = compiled.sql
    dispatch = conn.dispatch
    try:
        for listener in dispatch.before_cursor_execute:
            listener(conn, cursor, sql, args, None, many)
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
            rows: list[Row] = []
            if compiled.results is not None:
                results = compiled.results
                for raw in cursor.fetchall():
                    row: Row = {}
                    for (key, processor), value in zip(results, raw, strict=True):
                        row[key] = processor(value) if processor is not None else value
                    rows.append(row)
            rowcount = cursor.rowcount
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrap(conn, cursor, sql, args, exc) from exc
        for listener in dispatch.after_cursor_execute:
            listener(conn, cursor, sql, args, None, many)
        return rows, rowcount
    finally:
        cursor.close()


def _wrap(conn: sa.Connection, cursor: Any, sql: str, args: Any, exc: Any) -> Exception:
    """The ``DBAPIError`` SQLAlchemy would raise (invalidating a lost connection)."""
    dialect = conn.dialect
    disconnect = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if disconnect:
        conn.invalidate(exc)
    wrapped: Exception = sa_exc.DBAPIError.instance(
        sql,
        args,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect,
        dialect=dialect,
    )
    return wrapped

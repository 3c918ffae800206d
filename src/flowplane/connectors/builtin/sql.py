"""SQL connectors for PostgreSQL (psycopg) and SQLite: parameterised statements only.

The SQL text is passed to the driver unchanged and values travel separately as bound
parameters, so data can never become SQL. Placeholders are the driver's own: PostgreSQL
``%s`` / ``%(name)s`` (write a literal ``%`` as ``%%`` when parameters are given), SQLite
``?`` / ``:name``. One statement per call. The database URL comes from a credential.

On SQLite a statement may touch only the database the connector opened (``sqlite_file`` is
inside the namespace's folder): an authorizer refuses ``ATTACH``, ``DETACH``, ``VACUUM
INTO``, ``load_extension()`` and the directory pragmas, which would read or write other files.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._sandbox import sandbox_path
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

MAX_ROWS = 100_000
DEFAULT_ROWS = 1000
SQL = prop(
    "string",
    "One SQL statement with placeholders (PostgreSQL %s or %(name)s; "
    "SQLite ? or :name). Never put values in the text.",
    minLength=1,
    maxLength=100_000,
)
PARAMS = prop(
    ["array", "object"], "Bound parameter values: a list (positional) or an object (named)."
)
TARGET = {
    "credential": {
        **CREDENTIAL_PROP,
        "description": "Credential holding the database URL "
        "(postgresql://user:pw@host:5432/db or sqlite:///path/to.db).",
    },
    "sqlite_file": prop(
        "string",
        "Or a SQLite file inside the namespace's file folder.",
        minLength=1,
        maxLength=1024,
    ),
    "timeout": prop(
        "number", "Statement time limit in seconds.", exclusiveMinimum=0, maximum=3600, default=30
    ),
}


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def jsonable(value: Any) -> Any:
    """Convert a database value to JSON (decimals to numbers, times to ISO-8601, bytes to b64)."""
    if isinstance(value, decimal.Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and abs(value) < 2**53
            else (float(value))
        )
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _params(raw: Any) -> Sequence[Any] | dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, list | dict):
        return raw
    raise _bad("params must be a list or an object")


def _result(
    columns: list[str],
    rows: Sequence[Sequence[Any]],
    limit: int,
    truncated: bool,
    rowcount: int,
    started: float,
) -> dict[str, Any]:
    return {
        "rows": [dict(zip(columns, (jsonable(v) for v in row), strict=False)) for row in rows],
        "columns": columns,
        "row_count": len(rows),
        "affected": max(rowcount, 0),
        "truncated": truncated,
        "elapsed_ms": round((time.monotonic() - started) * 1000),
    }


# --- SQLite -------------------------------------------------------------------------------------

# What a statement may not do, whatever file it runs on: every file SQLite touches must be the
# database the connector opened (inside the namespace's folder, or the credential's file).
# ``ATTACH 'x'`` opens or creates any file the server can write, ``VACUUM INTO 'x'`` writes
# one (SQLite authorises it as an ATTACH of that file); plain ``VACUUM`` attaches ''.
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_DENIED_PRAGMAS = frozenset({"temp_store_directory", "data_store_directory"})


def _authorize(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    """The SQLite authorizer of connector connections (see the rules above)."""
    if action == sqlite3.SQLITE_ATTACH:
        return sqlite3.SQLITE_OK if arg1 == "" else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_DETACH:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _DENIED_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_run(
    path: str,
    sql: str,
    params: Any,
    many: list[Any] | None,
    limit: int,
    timeout: float,
    read_only: bool,
) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + timeout
    uri = f"file:{urllib.parse.quote(path)}?mode={'ro' if read_only else 'rwc'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=min(timeout, 30.0))
    except sqlite3.Error as exc:
        raise ConnectorError(f"cannot open SQLite database: {exc}", retryable=True) from exc
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    conn.set_authorizer(_authorize)
    try:
        with conn:
            if many is not None:
                cursor = conn.executemany(sql, many)
            else:
                cursor = conn.execute(sql, params if params is not None else ())
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limit + 1) if columns else []
            return _result(
                columns, rows[:limit], limit, len(rows) > limit, cursor.rowcount, started
            )
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise ConnectorError(
                f"statement took longer than {timeout:g}s", retryable=False
            ) from exc
        locked = "locked" in str(exc) or "busy" in str(exc)
        raise ConnectorError(f"SQLite error: {exc}", retryable=locked) from exc
    except (sqlite3.Error, ValueError, OverflowError) as exc:
        if str(exc) in ("not authorized", "authorization denied"):
            raise _bad(
                "SQLite error: not authorized (ATTACH, DETACH, VACUUM INTO, extensions and "
                "directory pragmas are refused: a statement may only use its own database file)"
            ) from exc
        raise _bad(f"SQLite error: {exc}") from exc
    finally:
        conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


async def _pg_run(
    ctx: NodeContext,
    url: str,
    sql: str,
    params: Any,
    many: list[Any] | None,
    limit: int,
    timeout: float,
    read_only: bool,
) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise _bad("the PostgreSQL URL needs a host (unix sockets are not allowed)")
    addresses = await check_host(ctx, parts.hostname, parts.port or 5432)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout + 5):
            conn = await psycopg.AsyncConnection.connect(
                url,
                hostaddr=addresses[0],
                connect_timeout=max(1, min(int(timeout), 30)),
                autocommit=False,
            )
            async with conn:
                async with conn.cursor() as cursor:
                    if read_only:  # must come before any query of the transaction
                        await cursor.execute("SET TRANSACTION READ ONLY")
                    await cursor.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [str(int(timeout * 1000))],
                    )
                    if many is not None:
                        await cursor.executemany(sql, many)
                    else:
                        await cursor.execute(sql, params)
                    columns = [d.name for d in cursor.description or []]
                    rows = await cursor.fetchmany(limit + 1) if columns else []
                    result = _result(
                        columns, rows[:limit], limit, len(rows) > limit, cursor.rowcount, started
                    )
                await conn.commit()
                return result
    except TimeoutError as exc:
        raise ConnectorError(
            f"PostgreSQL did not answer within {timeout:g}s", retryable=True
        ) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise _bad(f"statement took longer than {timeout:g}s") from exc
    except psycopg.OperationalError as exc:
        raise ConnectorError(f"PostgreSQL connection failed: {exc}", retryable=True) from exc
    except psycopg.errors.SerializationFailure as exc:
        raise ConnectorError(f"PostgreSQL error: {exc}", retryable=True) from exc
    except (psycopg.Error, TypeError, ValueError) as exc:
        raise _bad(f"PostgreSQL error: {exc}") from exc


async def _run(params: dict[str, Any], ctx: NodeContext, many: list[Any] | None) -> Any:
    sql: str = params["sql"]
    limit = params.get("max_rows", DEFAULT_ROWS)
    timeout = float(params.get("timeout", 30))
    read_only = bool(params.get("read_only"))
    bound = _params(params.get("params"))
    if params.get("credential") and params.get("sqlite_file"):
        raise _bad("give either 'credential' or 'sqlite_file', not both")
    ctx.check_cancelled()
    if params.get("sqlite_file"):
        path = str(sandbox_path(ctx, params["sqlite_file"]))
        return await asyncio.to_thread(
            _sqlite_run, path, sql, bound, many, limit, timeout, read_only
        )
    if not params.get("credential"):
        raise _bad("give 'credential' (the database URL) or 'sqlite_file'")
    url = credential(ctx, params["credential"])
    scheme = url.split(":", 1)[0].lower()
    try:
        if scheme in ("postgres", "postgresql"):
            return await _pg_run(ctx, url, sql, bound, many, limit, timeout, read_only)
        if scheme == "sqlite":
            path = urllib.parse.unquote(url.split(":///", 1)[-1]) if ":///" in url else ""
            if not path:
                raise _bad("SQLite URL must look like sqlite:///path/to.db")
            return await asyncio.to_thread(
                _sqlite_run, path, sql, bound, many, limit, timeout, read_only
            )
    except ConnectorError as exc:
        password = urllib.parse.urlsplit(url).password
        exc.detail = mask_values(exc.detail, [url, password])
        exc.args = (exc.detail,)
        raise
    raise _bad(f"unsupported database scheme {scheme!r} (postgresql or sqlite)")


ROWS_OUT = out(
    {
        "rows": prop("array", "Result rows as objects (column: value)."),
        "columns": prop("array", "Column names."),
        "row_count": prop("integer", "Rows returned."),
        "affected": prop("integer", "Rows changed by INSERT/UPDATE/DELETE."),
        "truncated": prop("boolean", "Whether max_rows cut the result."),
        "elapsed_ms": prop("integer", "Time taken."),
    }
)


@connector(
    "sql.query",
    name="SQL query",
    category="sql",
    description="Run one parameterised SQL statement on PostgreSQL or SQLite and return rows.",
    input_schema=obj(
        {
            "sql": SQL,
            "params": PARAMS,
            **TARGET,
            "max_rows": prop(
                "integer", "Most rows returned.", minimum=1, maximum=MAX_ROWS, default=DEFAULT_ROWS
            ),
            "read_only": prop("boolean", "Run in a read-only transaction.", default=False),
        },
        ["sql"],
    ),
    output_schema=ROWS_OUT,
    secrets=["credential"],
    examples=[
        {
            "credential": "ORDERS_DB",
            "sql": "SELECT id, total FROM orders WHERE customer_id = %s AND total > %s",
            "params": ["{{ input.customer }}", 100],
        },
        {
            "sqlite_file": "app.db",
            "sql": "INSERT INTO log(msg) VALUES (:msg)",
            "params": {"msg": "hello"},
        },
    ],
)
async def sql_query(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Run ``sql`` with ``params`` bound by the driver."""
    return await _run(params, ctx, None)


@connector(
    "sql.execute_many",
    name="SQL execute many",
    category="sql",
    description="Run one parameterised statement once per parameter set, in one transaction.",
    input_schema=obj(
        {
            "sql": SQL,
            **TARGET,
            "rows": prop(
                "array",
                "Parameter sets (lists or objects), one per execution.",
                items={"type": ["array", "object"]},
                minItems=1,
                maxItems=MAX_ROWS,
            ),
        },
        ["sql", "rows"],
    ),
    output_schema=ROWS_OUT,
    secrets=["credential"],
    examples=[
        {
            "credential": "ORDERS_DB",
            "sql": "INSERT INTO items(sku, qty) VALUES (%s, %s)",
            "rows": [["A-1", 2], ["B-7", 1]],
        }
    ],
)
async def sql_execute_many(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Run ``sql`` for every parameter set in ``rows``."""
    return await _run({**params, "params": None}, ctx, params["rows"])

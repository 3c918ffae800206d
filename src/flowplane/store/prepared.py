"""Hot statements run straight on the DBAPI cursor.

SQLAlchemy Core costs ~60 µs per execution here even with a prebuilt statement and a warm
compile cache (execution context, cache key, result set-up); the driver itself takes a few
µs. A :class:`Prepared` statement is compiled once per dialect and parameter-key set into
the driver's SQL and paramstyle (``?`` for sqlite3, ``%(name)s`` for psycopg), with the
column types' bind and result processors looked up once, and then executed on the
connection's DBAPI cursor inside the SQLAlchemy transaction.

It behaves like ``Connection.execute`` where it matters: ``before_cursor_execute`` and
``after_cursor_execute`` listeners are called (with no cursor for statements sent in a
PostgreSQL batch, which uses none), and driver errors are raised as
SQLAlchemy's ``DBAPIError`` subclasses (a lost connection invalidates it), so the store's
retry and error handling see no difference. Only statements without expanding (``IN``)
parameters can be prepared.

A statement given a record class (``Prepared(stmt, record=NodeRunRecord)``) returns
records rather than dicts: each row's dict, built as for a plain statement and passed
through the class's ``CONVERT`` functions (a status string to its enum), becomes the
record's ``__dict__`` (:func:`~flowplane.store.records.base.adopt`): no second copy, no
``__init__``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from flowplane.jsontext import dumps

Processor = Callable[[Any], Any]
Row = dict[str, Any]
R = TypeVar("R")
# conn.info key of the connection's _Link.
LINK = "flowplane_link"
_IDS = itertools.count(1)


class _Compiled:
    """One statement compiled for one dialect and set of parameter keys."""

    __slots__ = (
        "args",
        "binds",
        "compiled",
        "keys",
        "name",
        "names",
        "numbered",
        "positional",
        "results",
        "sql",
        "stmt",
    )

    def __init__(
        self,
        stmt: Any,
        dialect: sa.Dialect,
        keys: Sequence[str],
        record: type[Any] | None = None,
    ) -> None:
        self.stmt, self.keys = stmt, list(keys)
        self.name = f"fp_{next(_IDS)}"
        self.numbered: tuple[str, list[str]] | None = None
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("statements with expanding parameters cannot be prepared")
        self.compiled = compiled
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        self.names: list[str] = list(compiled.positiontup or ())
        self.binds: list[tuple[str, Processor]] = []
        for name, bind in compiled.binds.items():
            processor = bind_processor(bind.type, dialect)
            if processor is not None:
                self.binds.append((name, processor))
        # The driver's parameters from a parameter dict (see _builder).
        self.args: Callable[[dict[str, Any]], Any] = (
            _builder(compiled, self.keys, self.binds, self.positional, self.names)
            or self.construct_args
        )
        # Selected or RETURNING columns (none for plain DML).
        columns = list(stmt.exported_columns)
        self.results: _Results | None = (
            _Results([(col.key, result_processor(col.type, dialect)) for col in columns], record)
            if columns
            else None
        )

    def numbered_sql(self, dialect: sa.Dialect) -> tuple[str, list[str]]:
        """The statement with ``$n`` parameters (for ``PREPARE``), and their names in order."""
        if self.numbered is None:
            numbered: Any = type(dialect)(paramstyle="numeric_dollar")  # type: ignore[call-arg]
            compiled = self.stmt.compile(dialect=numbered, column_keys=self.keys)
            self.numbered = (compiled.string, list(compiled.positiontup or ()))
        return self.numbered

    def construct_args(self, params: dict[str, Any]) -> Any:
        """The driver's parameters the way SQLAlchemy builds them (``construct_params``,
        then the bind processors): what :attr:`args` returns, only slower."""
        values = self.compiled.construct_params(params)
        # Like SQLAlchemy, processors see None too (JSON stores None as JSON null).
        for name, processor in self.binds:
            values[name] = processor(values.get(name))
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values


def _builder(
    compiled: Any,
    keys: Sequence[str],
    binds: list[tuple[str, Processor]],
    positional: bool,
    names: list[str],
) -> Callable[[dict[str, Any]], Any] | None:
    """A function giving what :meth:`_Compiled.construct_args` gives for parameter dicts
    with exactly ``keys`` (the compiled statement is cached per key tuple), generated once.

    For such dicts ``construct_params`` always takes each bind's value from the same
    place: the parameter of its key, else of its name, else the bind's own (literal)
    value; so the function reads them directly, applies the processors and builds the
    tuple (``?`` style) or dict (``%(name)s`` style) in one expression. ``None`` for
    statements it does not cover (escaped or collected bind names, callable or missing
    required values): they keep ``construct_args``.
    """
    if compiled.escaped_bind_names or getattr(compiled, "_collected_params", None):
        return None
    present = set(keys)
    namespace: dict[str, Any] = {}
    source: dict[str, str] = {}  # bind name -> expression of its value
    for bind, name in compiled.bind_names.items():
        if bind.key in present:
            source[name] = f"p[{bind.key!r}]"
        elif name in present:
            source[name] = f"p[{name!r}]"
        elif bind.required or bind.callable:
            return None
        else:
            constant = f"c{len(namespace)}"
            namespace[constant] = bind.value
            source[name] = constant
    lines = ["def build(p):"]
    for index, (name, processor) in enumerate(binds):
        if name not in source:
            return None
        namespace[f"f{index}"] = processor
        lines.append(f"    v{index} = f{index}({source[name]})")
        source[name] = f"v{index}"
    if positional:
        if any(name not in source for name in names):
            return None
        items = "".join(f"{source[name]}, " for name in names)
        lines.append(f"    return ({items})")
    else:
        items = "".join(f"{name!r}: {value}, " for name, value in source.items())
        lines.append(f"    return {{{items}}}")
    exec("\n".join(lines), namespace)  # names and keys appear as repr() literals only
    build: Callable[[dict[str, Any]], Any] = namespace["build"]
    return build


class _Results:
    """Turns a statement's raw result rows into dicts, with the result processors (or into
    records of ``record``, with its converters too)."""

    __slots__ = ("columns", "keys", "processed", "record")

    def __init__(
        self, columns: list[tuple[str, Processor | None]], record: type[Any] | None = None
    ) -> None:
        self.record = record
        convert: dict[str, Processor] = getattr(record, "CONVERT", {})
        if convert:
            columns = [
                (key, _then(processor, convert[key]) if key in convert else processor)
                for key, processor in columns
            ]
        self.columns = columns
        self.keys = [key for key, _processor in columns]
        # (key, processor) of the columns with one; None if keys repeat (rows() would
        # process a value twice): then the column-by-column loop.
        unique = len(set(self.keys)) == len(self.keys)
        self.processed: list[tuple[str, Processor]] | None = (
            [(key, processor) for key, processor in columns if processor is not None]
            if unique
            else None
        )

    def rows(self, raw_rows: Any) -> list[Any]:
        """The rows as dicts, or as records of :attr:`record`."""
        keys, processed = self.keys, self.processed
        if processed is None:
            rows = _rows(self.columns, raw_rows)
        else:
            rows = [dict(zip(keys, raw, strict=True)) for raw in raw_rows]
            if processed:
                for row in rows:
                    for key, processor in processed:
                        row[key] = processor(row[key])
        record = self.record
        if record is None:
            return rows
        # adopt(), inlined: the dict becomes the record's state.
        new, assign = object.__new__, object.__setattr__
        records: list[Any] = []
        for row in rows:
            one = new(record)
            assign(one, "__dict__", row)
            records.append(one)
        return records


def _then(processor: Processor | None, convert: Processor) -> Processor:
    """``convert`` applied after ``processor`` (if any)."""
    if processor is None:
        return convert
    return lambda value: convert(processor(value))


def bind_processor(type_: Any, dialect: sa.Dialect) -> Processor | None:
    """The type's bind processor for ``dialect``; SQLAlchemy's JSON one replaced by an
    equivalent that is quicker for None, dicts and lists (see :func:`_json_processor`)."""
    impl = type_.dialect_impl(dialect)
    processor: Processor | None = impl.bind_processor(dialect)
    if processor is None or not _plain_json(impl, dialect):
        return processor
    return _json_processor(None if impl.none_as_null else "null", processor)


def result_processor(type_: Any, dialect: sa.Dialect) -> Processor | None:
    """The type's result processor for ``dialect``; for JSON decoded with ``json.loads``,
    with JSON ``null`` (what None is stored as) answered without decoding."""
    impl = type_.dialect_impl(dialect)
    processor: Processor | None = impl.result_processor(dialect, None)
    if (
        processor is None
        or not isinstance(impl, sa.JSON)
        or getattr(dialect, "_json_deserializer", None) is not None
    ):
        return processor

    def process(value: Any) -> Any:
        if value is None or value == "null":
            return None
        return processor(value)

    return process


def _plain_json(impl: Any, dialect: sa.Dialect) -> bool:
    """Whether ``impl``'s bind processor is SQLAlchemy's JSON one serialising with
    ``json.dumps`` into a string column as is (SQLite's)."""
    cls = type(impl)
    return (
        isinstance(impl, sa.JSON)
        and cls.bind_processor is sa.JSON.bind_processor
        and cls._make_bind_processor is sa.JSON._make_bind_processor
        and getattr(dialect, "_json_serializer", None) is None
        and impl._str_impl.bind_processor(dialect) is None
    )


def _json_processor(none: str | None, processor: Processor) -> Processor:
    """SQLAlchemy's JSON bind ``processor``, with None (JSON ``null``, or SQL NULL with
    ``none_as_null``: ``none``) and plain dicts and lists done here; other values (its
    ``JSON.NULL`` and ``null()`` markers, strings, numbers) go to ``processor``."""

    def process(value: Any) -> Any:
        if value is None:
            return none
        cls = type(value)
        if cls is dict or cls is list:
            return dumps(value)
        return processor(value)

    return process


class Prepared(Generic[R]):
    """A prebuilt statement executed on the DBAPI cursor (see the module docstring); its
    rows are dicts, or records of the class given as ``record``."""

    @overload
    def __init__(self: Prepared[Row], stmt: Any) -> None: ...

    @overload
    def __init__(self: Prepared[R], stmt: Any, *, record: type[R]) -> None: ...

    def __init__(self, stmt: Any, *, record: type[Any] | None = None) -> None:
        self.stmt = stmt
        self.record = record
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: sa.Dialect, params: dict[str, Any]) -> _Compiled:
        key = (dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(
                self.stmt, dialect, list(params), self.record
            )
        return compiled

    def execute(self, conn: sa.Connection, params: dict[str, Any]) -> tuple[list[R], int]:
        """Execute once; return ``(rows, rowcount)`` (no rows without RETURNING)."""
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

    def defer(
        self,
        conn: sa.Connection,
        params: dict[str, Any],
        on_result: Callable[[list[R]], None] | None = None,
    ) -> None:
        """Execute without waiting for the result: on a batching connection, queued until
        the next statement that needs a result (or the commit); elsewhere, at once.
        ``on_result`` gets the rows when they arrive (before the commit returns)."""
        compiled = self._for(conn.dialect, params)
        link: _Link | None = conn.info.get(LINK)
        pending = link.pending if link is not None else None
        if pending is None:
            rows, _count = _run(conn, compiled, compiled.args(params), False, link)
            if on_result is not None:
                on_result(rows)
        else:
            pending.append((compiled, compiled.args(params), False, on_result))

    def defer_many(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """:meth:`execute_many` without reading the result (see :meth:`defer`)."""
        if not rows:
            return
        pending = _pending(conn)
        if pending is None:
            self.execute_many(conn, rows)
            return
        compiled = self._for(conn.dialect, rows[0])
        pending.append((compiled, [compiled.args(row) for row in rows], True, None))


class _Plain:
    """Driver SQL without parameters or results (``BEGIN IMMEDIATE``)."""

    results: _Results | None = None

    def __init__(self, sql: str) -> None:
        self.sql = sql


# (statement, parameters, executemany?, callback for its rows)
_Queued = tuple["_Compiled | _Plain", Any, bool, "Callable[[list[Any]], None] | None"]
_BEGIN = _Plain("BEGIN")
_COMMIT = _Plain("COMMIT")
Listener = Callable[..., Any]


class _Link:
    """How prepared statements use one DBAPI connection. Kept in its connection's
    ``info``, which SQLAlchemy clears when the DBAPI connection is replaced.

    Between :func:`begin_transaction` and :func:`end_transaction` the connection's
    ``before_cursor_execute`` and ``after_cursor_execute`` listeners are the ones it had
    when the transaction began (looked up once, not per statement); outside, they are
    looked up per statement. sqlite3 statements share one cursor (results are always
    read to the end). ``pending``: the statements queued on a batching connection;
    ``session``: its :class:`_Session`."""

    __slots__ = ("after", "before", "cursor", "dbapi", "in_tx", "pending", "reuse", "session")

    def __init__(self, conn: sa.Connection) -> None:
        self.dbapi: Any = conn.connection.dbapi_connection
        self.reuse = conn.dialect.name == "sqlite"
        self.cursor: Any = None
        self.in_tx = False
        self.before: tuple[Listener, ...] = ()
        self.after: tuple[Listener, ...] = ()
        self.pending: list[_Queued] | None = None
        self.session: _Session | None = None


def _link(conn: sa.Connection) -> _Link:
    link: _Link | None = conn.info.get(LINK)
    if link is None:
        link = conn.info[LINK] = _Link(conn)
    return link


def batching(conn: sa.Connection) -> bool:
    """Whether ``conn`` is in a batching transaction (see :func:`enable_batching`): a
    :meth:`Prepared.defer`red statement then travels with the next round trip."""
    return _pending(conn) is not None


def _pending(conn: sa.Connection) -> list[_Queued] | None:
    link: _Link | None = conn.info.get(LINK)
    return link.pending if link is not None else None


def _listeners(conn: sa.Connection) -> tuple[tuple[Listener, ...], tuple[Listener, ...]]:
    """The connection's cursor-execute listeners (checked the way SQLAlchemy does)."""
    if not (conn._has_events or conn.engine._has_events):
        return (), ()
    dispatch = conn.dispatch
    return tuple(iter(dispatch.before_cursor_execute)), tuple(iter(dispatch.after_cursor_execute))


def begin_transaction(conn: sa.Connection) -> None:
    """A transaction begins on ``conn`` (called just before SQLAlchemy's ``begin``, so
    that its ``BEGIN`` is covered too): look its listeners up for the whole of it."""
    link = _link(conn)
    link.before, link.after = _listeners(conn)
    link.in_tx = True


def end_transaction(conn: sa.Connection) -> None:
    """The transaction on ``conn`` ended (committed or not)."""
    link: _Link | None = conn.info.get(LINK)
    if link is not None:
        link.in_tx = False
        link.before = link.after = ()


def execute_sql(conn: sa.Connection, sql: str) -> None:
    """Run parameterless driver SQL on the DBAPI cursor, like ``exec_driver_sql``."""
    _run(conn, _Plain(sql), (), False)


def enable_batching(conn: sa.Connection) -> None:
    """Start a transaction in batching mode on this (psycopg) connection.

    The transaction's ``BEGIN`` is queued (it travels with the first statement), so psycopg
    is switched to autocommit for the transaction, or it would send its own ``BEGIN`` in a
    round trip of its own; :func:`disable_batching` switches it back. Every statement path
    sends what is queued first (:class:`Prepared`, and the store's ``before_cursor_execute``
    hook for SQLAlchemy's), so nothing ever runs outside the transaction.
    """
    link = _link(conn)
    link.dbapi.autocommit = True
    link.pending = [(_BEGIN, (), False, None)]


def disable_batching(conn: sa.Connection) -> None:
    """End batching mode (after the transaction, committed or rolled back)."""
    link: _Link | None = conn.info.get(LINK)
    if link is not None:
        link.pending = None
    dbapi_conn: Any = conn.connection.dbapi_connection
    if dbapi_conn is not None and not dbapi_conn.closed:
        dbapi_conn.autocommit = False


def flush_pending(conn: sa.Connection) -> None:
    """Send the queued statements now (one round trip), e.g. before a statement that does
    not go through :class:`Prepared`."""
    link: _Link | None = conn.info.get(LINK)
    if link is not None and link.pending:
        _run_batch(conn, link, None, None, False)


def commit_batched(conn: sa.Connection) -> None:
    """Send the queued statements and ``COMMIT`` in one round trip (batching connections).

    SQLAlchemy's own commit that follows finds the transaction closed and sends nothing.
    """
    link = _link(conn)
    pending = link.pending
    if pending is not None and pending[:1] == [(_BEGIN, (), False, None)]:
        if len(pending) == 1:
            pending.clear()  # nothing was sent: nothing to commit
            return
    _run_batch(conn, link, _COMMIT, (), False)


UNKNOWN_STATEMENT = "26000"  # invalid_sql_statement_name: a prepared statement is gone
_OURS = "SELECT name FROM pg_prepared_statements WHERE name LIKE 'fp\\_%'"


class _Session:
    """What batching keeps per psycopg connection: its client-side binder, and the
    statements it has ``PREPARE``d (named by ``generation``; prepared statements outlive
    transactions, so after a failed batch the names are changed rather than guessed).

    psycopg itself sends ``DEALLOCATE ALL`` after a rollback when it has prepared
    statements of its own, which drops ours too: after a rollback, :func:`resync`
    re-reads which of ours the server still has.
    """

    def __init__(self, dbapi_conn: Any) -> None:
        import psycopg
        from psycopg.adapt import Transformer

        self.dbapi_conn = dbapi_conn
        cursor = psycopg.ClientCursor(dbapi_conn)
        self.mogrify = cursor.mogrify
        # What mogrify quotes each parameter with (a Transformer of the cursor's
        # adapters), made once rather than per call.
        self.transformer = Transformer.from_context(cursor)
        self.encoding: str = self.transformer.encoding
        self.prepared: set[str] = set()
        self.generation = 0
        # What send() and rows() use, looked up once.
        from psycopg import errors, pq
        from psycopg.generators import execute

        self.execute = execute
        self.errors = errors
        self.error_from_result = errors.error_from_result
        self.ok = pq.ConnStatus.OK
        self.bad = pq.ConnStatus.BAD
        self.fatal = pq.ExecStatus.FATAL_ERROR
        self.loader = Transformer(dbapi_conn)

    def send(self, sql: str) -> list[Any]:
        """Run ``sql`` (statements separated by ``;``) as one simple query on the
        connection; return one result per statement. What ``cursor.execute(sql,
        prepare=False)`` does, without a cursor: its set-up and the loaders it sets up for
        every result, of which only the wanted ones are read here, cost more than the
        query's own work on the client. A statement's error is raised as psycopg's."""
        conn = self.dbapi_conn
        pgconn = conn.pgconn
        with conn.lock:
            if pgconn.status != self.ok:  # (what psycopg's cursor raises then)
                if pgconn.status == self.bad:
                    raise self.errors.OperationalError("the connection is closed")
                raise self.errors.InterfaceError(
                    f"cannot execute operations: the connection is in status {pgconn.status}"
                )
            pgconn.send_query(sql.encode(self.encoding))
            results: list[Any] = conn.wait(self.execute(pgconn))
        for result in results:
            if result.status == self.fatal:
                raise self.error_from_result(result, encoding=self.encoding)
        return results

    def rows(self, result: Any) -> list[tuple[Any, ...]]:
        """The rows of one of :meth:`send`'s results, as tuples of Python values."""
        if not result.ntuples:
            return []
        loader = self.loader
        loader.set_pgresult(result)
        rows: list[tuple[Any, ...]] = loader.load_rows(0, result.ntuples, tuple)
        return rows

    def literal(self, value: Any) -> str:
        """``value`` as ``mogrify`` puts it in a query: the common parameter types (None,
        bools, ints, strings without backslashes or NULs) quoted here, exactly as
        psycopg does, anything else by psycopg's transformer."""
        cls = type(value)
        if value is None:
            return "NULL"
        if cls is str:
            text: str = value
            if "\\" not in text and "\x00" not in text:
                return "'" + text.replace("'", "''") + "'"
        elif cls is int:
            return str(value) if value >= 0 else " " + str(value)  # " -1": never "--"
        elif cls is bool:
            return "true" if value else "false"
        literal: bytes = self.transformer.as_literal(value)
        return literal.decode(self.encoding)


def resync(conn: sa.Connection) -> None:
    """After a rollback (batching still on, so no transaction is opened): learn which of
    our prepared statements the server still holds (one round trip, only if we had any)."""
    link: _Link | None = conn.info.get(LINK)
    session = link.session if link is not None else None
    dbapi_conn: Any = conn.connection.dbapi_connection
    if session is None or session.dbapi_conn is not dbapi_conn or not session.prepared:
        return
    with dbapi_conn.cursor() as cursor:
        cursor.execute(_OURS, prepare=False)
        session.prepared = {row[0] for row in cursor.fetchall()}


def _run_batch(
    conn: sa.Connection, link: _Link, compiled: _Compiled | _Plain | None, args: Any, many: bool
) -> tuple[list[Any], int]:
    """Send the queued statements, then ``compiled`` (if any), as one multi-statement
    query: one round trip. Each statement is ``PREPARE``d once per connection and run with
    ``EXECUTE``, its parameters bound on the client by psycopg (as its ``ClientCursor``
    does), so the server plans it once, not per use. Returns ``compiled``'s rows and
    rowcount."""
    pending = link.pending
    assert pending is not None
    batch = list(pending)
    pending.clear()
    if compiled is not None:
        batch.append((compiled, args, many, None))
    dbapi_conn = link.dbapi
    session = link.session
    if session is None:
        session = link.session = _Session(dbapi_conn)
    before, after = (link.before, link.after) if link.in_tx else _listeners(conn)
    parts: list[str] = []
    new: list[str] = []
    # (index of the statement's result, callback) of queued statements that want rows.
    wanted: list[tuple[int, Callable[[list[Any]], None], _Compiled]] = []
    for item, item_args, item_many, on_result in batch:
        if isinstance(item, _Plain):
            parts.append(item.sql)
            continue
        for listener in before:
            listener(conn, None, item.sql, item_args, None, item_many)
        _execute_parts(conn, session, item, item_args, item_many, parts, new)
        if on_result is not None:
            wanted.append((len(parts) - 1, on_result, item))
    sql = ";\n".join(parts)
    try:
        results = session.send(sql)
    except conn.dialect.loaded_dbapi.Error as exc:
        if new or getattr(exc, "sqlstate", None) == UNKNOWN_STATEMENT:
            # Which PREPAREs ran is unknown (they outlive the transaction): new names.
            session.prepared.clear()
            session.generation += 1
        raise _wrap(conn, None, sql, None, exc) from exc
    session.prepared.update(new)
    for item, item_args, item_many, _on_result in batch:
        if not isinstance(item, _Plain):
            for listener in after:
                listener(conn, None, item.sql, item_args, None, item_many)
    # One result per statement sent, in order.
    for index, on_result, item in wanted:
        on_result(item.results.rows(session.rows(results[index])) if item.results else [])
    rows: list[Any] = []
    rowcount = -1
    if compiled is not None and not isinstance(compiled, _Plain):
        last = results[len(parts) - 1]
        if compiled.results is not None:
            rows = compiled.results.rows(session.rows(last))
        tuples = last.command_tuples
        rowcount = tuples if tuples is not None else -1
    return rows, rowcount


def _execute_parts(
    conn: sa.Connection,
    session: _Session,
    item: _Compiled,
    args: Any,
    many: bool,
    parts: list[str],
    new: list[str],
) -> None:
    """Append ``item``'s ``EXECUTE`` (one per parameter set), preceded by its ``PREPARE``
    the first time this connection sees it."""
    sql, names = item.numbered_sql(conn.dialect)
    name = f"{item.name}_{session.generation}"
    if name not in session.prepared and name not in new:
        parts.append(f"PREPARE {name} AS {sql}")
        new.append(name)
    if not names:
        parts.extend([f"EXECUTE {name}"] * (len(args) if many else 1))
        return
    call, literal = f"EXECUTE {name}(", session.literal
    for one in args if many else (args,):
        # What session.mogrify(f"EXECUTE {name}(%s, ...)", values) gives, quicker.
        parts.append(call + ", ".join([literal(one[n]) for n in names]) + ")")


def _rows(results: list[tuple[str, Processor | None]], raw_rows: Any) -> list[Row]:
    rows: list[Row] = []
    for raw in raw_rows:
        row: Row = {}
        for (key, processor), value in zip(results, raw, strict=True):
            row[key] = processor(value) if processor is not None else value
        rows.append(row)
    return rows


def _run(
    conn: sa.Connection,
    compiled: _Compiled | _Plain,
    args: Any,
    many: bool,
    link: _Link | None = None,
) -> tuple[list[Any], int]:
    if link is None:
        link = _link(conn)
    if link.pending:
        # Queued statements (at least the transaction's BEGIN) travel with this one.
        return _run_batch(conn, link, compiled, args, many)
    before, after = (link.before, link.after) if link.in_tx else _listeners(conn)
    cursor = link.cursor
    if cursor is None:
        cursor = link.dbapi.cursor()
        if link.reuse:
            link.cursor = cursor
    sql = compiled.sql
    try:
        for listener in before:
            listener(conn, cursor, sql, args, None, many)
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
            rows: list[Any] = []
            if compiled.results is not None:
                rows = compiled.results.rows(cursor.fetchall())
            rowcount: int = cursor.rowcount
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrap(conn, cursor, sql, args, exc) from exc
        for listener in after:
            listener(conn, cursor, sql, args, None, many)
        return rows, rowcount
    finally:
        if not link.reuse:
            cursor.close()


def driver_error(conn: sa.Connection, exc: Exception, sql: str) -> Exception:
    """The ``DBAPIError`` SQLAlchemy would raise for driver error ``exc`` (of ``sql``)."""
    return _wrap(conn, None, sql, None, exc)


def _wrap(conn: sa.Connection, cursor: Any, sql: str, args: Any, exc: Any) -> Exception:
    """The ``DBAPIError`` SQLAlchemy would raise (invalidating a lost connection)."""
    pending = _pending(conn)
    if pending:
        pending.clear()
    dialect = conn.dialect
    if conn.invalidated:  # (``conn.connection`` would raise PendingRollbackError)
        disconnect = True
    else:
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

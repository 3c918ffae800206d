"""Every prepared statement a real workload executes gets, from its generated parameter
builder, exactly the parameters SQLAlchemy's ``construct_params`` way gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from engine_support import running

from flowplane.services.caller import Caller
from flowplane.status import NodeStatus, RunStatus
from flowplane.store import statements as q
from flowplane.store.base import Store
from flowplane.store.prepared import Prepared, flush_pending
from flowplane.store.records import NodeState, RunRecord
from flowplane.store.tx import Tx


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Check every Prepared execution's parameters; the statements checked."""
    seen: list[str] = []

    def check(stmt: Prepared, conn: sa.Connection, params: dict[str, Any]) -> None:
        compiled = stmt._for(conn.dialect, params)
        fast, slow = compiled.args(dict(params)), compiled.construct_args(dict(params))
        assert repr(fast) == repr(slow), (compiled.sql, params)
        seen.append(compiled.sql)

    for method in ("execute", "defer"):
        original = getattr(Prepared, method)

        def one(
            self: Prepared, conn: sa.Connection, params: Any, _o: Any = original, **kw: Any
        ) -> Any:
            check(self, conn, params)
            return _o(self, conn, params, **kw)

        monkeypatch.setattr(Prepared, method, one)
    for method in ("execute_many", "defer_many"):
        original = getattr(Prepared, method)

        def many(
            self: Prepared, conn: sa.Connection, rows: Sequence[Any], _o: Any = original
        ) -> Any:
            for row in rows:
                check(self, conn, row)
            return _o(self, conn, rows)

        monkeypatch.setattr(Prepared, method, many)
    return seen


async def test_workload_parameters_match_construct_params(store: Store, checked: list[str]) -> None:
    async with running(store) as rt:
        chain = {
            "name": "live-chain",
            "nodes": [
                {"id": "a", "type": "test.count", "params": {"value": {"x": [1, None, "é"]}}},
                {"id": "b", "type": "test.count", "needs": ["a"]},
                {"id": "c", "type": "util.noop", "needs": ["a"]},
            ],
        }
        fan = {
            "name": "live-fan",
            "nodes": [
                {
                    "id": "fan",
                    "type": "util.fail",
                    "foreach": list(range(3)),
                    "max_parallel": 2,
                    "params": {"retryable": False},
                },
            ],
        }
        first = (await rt.runs.start(Caller.system(), chain, {"k": "v"})).run.id
        second = (await rt.runs.start(Caller.system(), fan)).run.id
        assert (await rt.runs.wait(Caller.system(), first, timeout=20)).status == "finished"
        assert (await rt.runs.wait(Caller.system(), second, timeout=20)).status == "failed"
    sql = " ".join(checked)
    for table in ("INSERT INTO event_batches", "INSERT INTO node_runs"):
        assert table in sql
    assert len(checked) > 30


async def test_statements_given_a_record_class_return_records_equal_to_sqlalchemys(
    store: Store,
) -> None:
    """A Prepared built with ``record=`` gives what SQLAlchemy's own row, made a record,
    gives (statuses as enums), executed at once or queued and delivered (``defer``)."""
    async with running(store, start_worker=False) as rt:
        doc = {
            "name": "records",
            "nodes": [
                {"id": "a", "type": "util.noop"},
                {"id": "b", "type": "util.noop", "needs": ["a"]},
            ],
        }
        run_id = (await rt.runs.start(Caller.system(), doc, {"k": [1]})).run.id

        def read(tx: Tx) -> tuple[list[Any], list[Any]]:
            fast = q.NODE_STATES.execute(tx.conn, {"_run": run_id})[0]
            fast += q.GET_RUN.execute(tx.conn, {"_run": run_id})[0]
            queued: list[Any] = []
            q.GET_RUN_NO_DOC.defer(tx.conn, {"_run": run_id}, on_result=queued.extend)
            flush_pending(tx.conn)
            fast += queued
            slow: list[Any] = [
                NodeState.from_row(r._mapping)
                for r in tx.conn.execute(q.NODE_STATES.stmt, {"_run": run_id})
            ]
            for stmt in (q.GET_RUN.stmt, q.GET_RUN_NO_DOC.stmt):
                slow += [
                    RunRecord.from_row(r._mapping) for r in tx.conn.execute(stmt, {"_run": run_id})
                ]
            return fast, slow

        fast, slow = await store.read(read)
    assert fast == slow and len(fast) == 4
    states, run, light = fast[:2], fast[2], fast[3]
    assert sorted((s.node_id, s.status) for s in states) == [
        ("a", NodeStatus.READY),
        ("b", NodeStatus.PENDING),
    ]
    assert all(type(s.status) is NodeStatus for s in states)
    assert run.status is RunStatus.RUNNING and run.input == {"k": [1]}
    assert run.document is not None and light.document is None


def test_literals_match_psycopg_mogrify() -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    from conftest import POSTGRES_URL, require_postgres
    from flowplane.store.prepared import _Session

    require_postgres()
    values: list[Any] = [
        *(None, True, False, 0, 1, -1, -5, 2**31, 2**40, -(2**63), 2**70, -(2**70)),
        *("", "abc", "it's", "''", "a\\b", "é ü 中", "--", "%s", "%%", "$1", "\n\t"),
        *(1.5, -0.0, Jsonb({"a": [1, None, "é", "x'y"]}), Jsonb(None), Jsonb("a\\b")),
    ]
    with psycopg.connect(POSTGRES_URL) as conn:
        session = _Session(conn)
        for value in values:
            assert session.literal(value) == session.mogrify("%s", [value]), repr(value)
            call = f"EXECUTE fp_1_0({session.literal(value)}, {session.literal('x')})"
            assert call == session.mogrify("EXECUTE fp_1_0(%s, %s)", [value, "x"]), repr(value)
        for binder in (session.literal, lambda v: session.mogrify("%s", [v])):
            with pytest.raises(psycopg.DataError):
                binder("nul\x00")


def test_a_batch_hands_each_statement_its_rows_count_and_error(store: Store) -> None:
    """On PostgreSQL queued statements travel as one query (see prepared._run_batch): each
    gets its own rows, decoded as a cursor would, the one that asked last its row count,
    and a failing one raises SQLAlchemy's error for it (the connection still works)."""
    from flowplane.store.prepared import commit_batched, disable_batching, enable_batching

    if store.dialect != "postgresql":
        pytest.skip("statements are batched on PostgreSQL only")
    table = sa.table("fp_batch", sa.column("id", sa.Integer), sa.column("v", sa.JSON))
    insert = Prepared(table.insert())
    update = Prepared(table.update().where(table.c.id < sa.bindparam("_below")))
    select = Prepared(sa.select(table.c.id, table.c.v).order_by(table.c.id))
    with store.engine.connect() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE fp_batch (id int PRIMARY KEY, v jsonb)"))
        conn.commit()
        enable_batching(conn)
        try:
            early: list[Any] = []
            for k in range(3):
                insert.defer(conn, {"id": k, "v": {"k": k, "s": "é'\\"}})
            select.defer(conn, {}, on_result=early.extend)
            rows, count = update.execute(conn, {"v": None, "_below": 2})
            assert early == [{"id": k, "v": {"k": k, "s": "é'\\"}} for k in range(3)]
            assert (rows, count) == ([], 2)
            assert select.execute(conn, {})[0][1:] == [
                {"id": 1, "v": None},
                {"id": 2, "v": {"k": 2, "s": "é'\\"}},
            ]
            commit_batched(conn)
        finally:
            disable_batching(conn)
        enable_batching(conn)
        try:
            insert.defer(conn, {"id": 5, "v": None})
            insert.defer(conn, {"id": 1, "v": None})  # taken: the batch fails here
            with pytest.raises(sa.exc.IntegrityError, match="fp_batch_pkey"):
                select.execute(conn, {})
            conn.connection.dbapi_connection.rollback()  # (psycopg's: SQLAlchemy began none)
        finally:
            disable_batching(conn)
        ids = [row["id"] for row in select.execute(conn, {})[0]]
        assert ids == [0, 1, 2]


def test_a_batch_on_a_dropped_connection_is_a_disconnect(store: Store) -> None:
    """A connection that is gone (closed under the batch) fails the batch with
    SQLAlchemy's error for a lost connection, which the store retries on a new one."""
    import contextlib

    from flowplane.store.prepared import commit_batched, disable_batching, enable_batching

    if store.dialect != "postgresql":
        pytest.skip("statements are batched on PostgreSQL only")
    select = Prepared(sa.select(sa.literal(1).label("one")))
    with store.engine.connect() as conn:
        conn.connection.dbapi_connection.rollback()  # (idle, whatever the pool left)
        enable_batching(conn)
        conn.connection.dbapi_connection.pgconn.finish()  # the server went away
        with pytest.raises(sa.exc.OperationalError, match="closed") as caught:
            select.execute(conn, {})
        assert caught.value.connection_invalidated
        with contextlib.suppress(Exception):
            disable_batching(conn)
    with store.engine.connect() as conn:  # the pool gives a working one
        conn.connection.dbapi_connection.rollback()
        enable_batching(conn)
        try:
            assert select.execute(conn, {})[0] == [{"one": 1}]
            commit_batched(conn)
        finally:
            disable_batching(conn)

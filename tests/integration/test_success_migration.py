"""Migration 0008 on both backends: successful attempts move onto their node runs and back.

An existing database holds every attempt as an ``attempts`` row. Upgrading folds each
``finished`` row into its node run (``worker``, ``attempt_started_ms``) and deletes it; the
attempts read back exactly as before (outcome, number, worker, times, error, order). A
finished row that does not match its node run (another finish time) is left in place and
still listed once. The downgrade writes the rows back and restores the unique index on a
node run's successful attempt.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from migration_support import downgrade, store_at

from flowplane.store import migrate, reads

OLD_REVISION = "0007"
COLUMNS = ("node_id", "iteration", "attempt", "status", "worker", "started_at_ms")
COLUMNS += ("finished_at_ms", "error")


def _old_rows(run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node runs and attempts as the code before 0008 wrote them (attempts in id order)."""
    nodes: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []

    def node(node_id: str, iteration: int, status: str, attempt: int, finished: int | None) -> None:
        nodes.append(
            {
                "run_id": run_id,
                "node_id": node_id,
                "iteration": iteration,
                "status": status,
                "attempt": attempt,
                "started_at_ms": None if finished is None else finished - 5,
                "finished_at_ms": finished,
                "output": {"n": node_id} if status == "finished" else None,
            }
        )

    def attempt(node_id: str, iteration: int, n: int, status: str, worker: Any, at: int) -> None:
        error = {"code": "boom", "message": "x"} if status in ("failed", "lost") else None
        attempts.append(
            {
                "run_id": run_id,
                "node_id": node_id,
                "iteration": iteration,
                "attempt": n,
                "status": status,
                "worker": worker,
                "started_at_ms": None if worker is None else at - 3,
                "finished_at_ms": at,
                "error": error,
            }
        )

    node("lone", 0, "finished", 1, 1010)
    node("retried", 0, "finished", 3, 1050)
    node("broken", 0, "failed", 1, 1060)
    node("each", -1, "finished", 1, 1100)  # a foreach level row: no attempt of its own
    node("each", 0, "finished", 2, 1090)
    node("each", 1, "finished", 1, 1090)
    node("waited", 0, "finished", 1, 1110)
    node("reused", 0, "finished", 1, 1000)
    node("odd", 0, "finished", 1, 1200)
    attempt("reused", 0, 1, "finished", "fork:other", 1000)
    attempt("lone", 0, 1, "finished", "w1", 1010)
    attempt("retried", 0, 1, "failed", "w1", 1020)
    attempt("retried", 0, 2, "lost", "w2", 1030)
    attempt("each", 0, 1, "superseded", "w1", 1040)
    attempt("retried", 0, 3, "finished", "w1", 1050)
    attempt("broken", 0, 1, "failed", "w2", 1060)
    attempt("each", 0, 2, "finished", "w1", 1090)
    attempt("each", 1, 1, "finished", "w2", 1090)
    attempt("waited", 0, 1, "finished", None, 1110)
    attempt("odd", 0, 1, "finished", "w1", 1190)  # not the node run's finish: left as a row
    return nodes, attempts


def _key(row: Any) -> tuple[Any, ...]:
    return tuple(row[c] if isinstance(row, dict) else getattr(row, c) for c in COLUMNS)


async def test_migration_moves_successes_and_back(db: tuple[str, str]) -> None:
    schema = db[1]
    async with store_at(db, OLD_REVISION) as store:
        meta = sa.MetaData()
        node_runs = sa.Table("node_runs", meta, autoload_with=store.engine)
        attempts = sa.Table("attempts", meta, autoload_with=store.engine)
        run_id = str(uuid.uuid4())
        nodes, rows = _old_rows(run_id)
        with store.engine.begin() as conn:
            conn.execute(node_runs.insert(), nodes)
            conn.execute(attempts.insert(), rows)
            before = [
                _key(r._mapping) for r in conn.execute(sa.select(attempts).order_by(attempts.c.id))
            ]
        assert before == [_key(r) for r in rows]

        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()
        after = await store.read(lambda tx: reads.attempts_of(tx, run_id))
        assert [_key(a) for a in after] == before
        with store.engine.begin() as conn:
            left = conn.execute(sa.text("SELECT node_id, status FROM attempts ORDER BY id")).all()
            kept = dict(
                conn.execute(
                    sa.text(
                        "SELECT node_id || ':' || iteration, worker FROM node_runs"
                        " WHERE worker IS NOT NULL"
                    )
                ).all()
            )
        # Only the finished row that matched no node run's finish stayed.
        assert [tuple(r) for r in left] == [
            ("retried", "failed"),
            ("retried", "lost"),
            ("each", "superseded"),
            ("broken", "failed"),
            ("odd", "finished"),
        ]
        assert kept == {
            "reused:0": "fork:other",
            "lone:0": "w1",
            "retried:0": "w1",
            "each:0": "w1",
            "each:1": "w2",
            "waited:0": "",
        }

        downgrade(store, schema, OLD_REVISION)
        with store.engine.begin() as conn:
            restored = [_key(r._mapping) for r in conn.execute(sa.select(attempts))]
            assert sorted(restored, key=repr) == sorted(before, key=repr)
            columns = {c["name"] for c in sa.inspect(conn).get_columns("node_runs")}
            assert "worker" not in columns and "attempt_started_ms" not in columns
            second = {**rows[1], "attempt": 9}
            try:
                with conn.begin_nested():
                    conn.execute(attempts.insert(), [second])
            except sa.exc.IntegrityError as exc:
                assert "ux_attempts_one_success" in str(exc) or "UNIQUE" in str(exc)
            else:
                raise AssertionError("the downgrade did not restore ux_attempts_one_success")

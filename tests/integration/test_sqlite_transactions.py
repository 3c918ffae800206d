"""SQLite transactions begun and ended on the driver connection (not SQLAlchemy's
``begin``): commit, rollback, statements through SQLAlchemy in between, and a busy
database sending the transaction to the writer thread."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flowplane.store import reads
from flowplane.store import schema as t
from flowplane.store.base import Store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> Any:
    store = await Store.open(f"sqlite:///{tmp_path / 'tx.db'}")
    try:
        yield store
    finally:
        await store.close()


def _event(tx: Any, message: str) -> None:
    tx.event("run-1", "default", "NodeLog", "a", message=message)


async def _messages(store: Store) -> list[str]:
    def read(tx: Any) -> list[str]:
        return [e.payload["message"] for e in reads.events_after(tx, limit=1000)]

    return await store.read(read)


async def test_commit_and_rollback(sqlite_store: Store) -> None:
    await sqlite_store.transact(lambda tx: _event(tx, "one"))

    def fail(tx: Any) -> None:
        _event(tx, "lost")
        tx.flush()  # written to the database, then rolled back
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await sqlite_store.transact(fail)
    await sqlite_store.transact(lambda tx: _event(tx, "two"))
    assert await _messages(sqlite_store) == ["one", "two"]


async def test_sqlalchemy_statements_join_the_transaction(sqlite_store: Store) -> None:
    def mixed(tx: Any, fail: bool) -> int:
        _event(tx, "mixed-fail" if fail else "mixed")
        tx.flush()
        # Through SQLAlchemy: it begins "its" transaction, the BEGIN is not sent twice.
        count = tx.conn.execute(sa.select(sa.func.count()).select_from(t.event_batches)).scalar()
        tx.conn.execute(t.event_counter.update().values(seq=t.event_counter.c.seq))
        if fail:
            raise RuntimeError("boom")
        return int(count)

    assert await sqlite_store.transact(lambda tx: mixed(tx, False)) == 1
    with pytest.raises(RuntimeError):
        await sqlite_store.transact(lambda tx: mixed(tx, True))
    await sqlite_store.transact(lambda tx: _event(tx, "after"))
    assert await _messages(sqlite_store) == ["mixed", "after"]


async def test_busy_database_goes_to_the_writer_thread(sqlite_store: Store, tmp_path: Path) -> None:
    await sqlite_store.transact(lambda tx: _event(tx, "first"))
    # Another process holds the write lock: the inline BEGIN IMMEDIATE fails at once
    # and the transaction waits on the writer thread until the lock is released.
    other = sqlite3.connect(tmp_path / "tx.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        pending = asyncio.ensure_future(sqlite_store.transact(lambda tx: _event(tx, "waited")))
        await asyncio.sleep(0.2)
        assert not pending.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await pending
    await sqlite_store.transact(lambda tx: _event(tx, "inline again"))
    assert await _messages(sqlite_store) == ["first", "waited", "inline again"]


async def test_transactions_wait_for_those_on_the_writer_thread(
    sqlite_store: Store, tmp_path: Path
) -> None:
    # A transaction sent to the writer thread by a busy database retries on SQLite's busy
    # handler, which sleeps longer and longer (up to 100 ms) between attempts. Had the
    # transactions started after the lock's release run inline, they would take the lock
    # in every gap and the waiting one would commit after all of them.
    other = sqlite3.connect(tmp_path / "tx.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        waiting = asyncio.ensure_future(sqlite_store.transact(lambda tx: _event(tx, "waited")))
        await asyncio.sleep(0.3)  # the busy handler's sleeps are long now
        assert not waiting.done()
    finally:
        other.execute("COMMIT")
        other.close()
    for k in range(20):
        await sqlite_store.transact(lambda tx, k=k: _event(tx, f"after {k}"))
    assert waiting.done()
    messages = await _messages(sqlite_store)
    assert messages == ["waited", *(f"after {k}" for k in range(20))]


async def test_the_wal_is_started_over_under_steady_writes(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inline commits one after the other while the writer thread checkpoints: a passive
    # checkpoint never catches up with the last commit, and SQLite writes the WAL from
    # its start again only after one did. Without a RESTART checkpoint the WAL is never
    # started over (the header's checkpoint sequence number stays 0) and its file holds
    # about 6 pages per commit; with one every ~50 ms, the file keeps the length of the
    # longest stretch between two, which a starved writer thread (a loaded CI machine)
    # can stretch to several times the mean.
    from flowplane.store import sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 10**9)  # only the test's
    monkeypatch.setattr(sqlite_module, "RESTART_WAL_PAGES", 64)
    store: Any = sqlite_store
    payload = "x" * 3000
    commits = 0
    stop = False

    def write(tx: Any) -> None:
        tx.event("run-1", "default", "NodeLog", "a", message=payload)

    async def steady() -> None:
        nonlocal commits
        while not stop:
            await store.transact(write)
            commits += 1

    writer = asyncio.create_task(steady())
    try:
        for _ in range(30):
            await asyncio.sleep(0.02)
            await store.checkpoint()
    finally:
        stop = True
        await writer
    wal = (tmp_path / "tx.db-wal").read_bytes()
    restarts = int.from_bytes(wal[12:16], "big")  # incremented each time it starts over
    pages = len(wal) // 4096
    assert commits > 100
    assert restarts >= 10, (restarts, pages, commits)
    assert pages < commits * 2, (restarts, pages, commits)

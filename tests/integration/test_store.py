"""The store contract on both backends: migrations, events, claims."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.migrate import LATEST_REVISION, current_revision, head_revision
from flowplane.store.schema import metadata


async def test_upgrade_head_matches_metadata(store: Store) -> None:
    assert current_revision(store) == head_revision()

    def diff(tx: Any) -> list[Any]:
        ctx = MigrationContext.configure(tx.conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)

    assert await store.read(diff) == []


def test_the_latest_revision_is_the_scripts_head() -> None:
    assert LATEST_REVISION == head_revision()


async def test_a_store_at_the_latest_revision_opens_without_alembic(
    db: tuple[str, str],
) -> None:
    url, schema = db
    store = await Store.open(url, schema=schema)
    await store.close()
    script = (
        "import asyncio, sys\n"
        "from flowplane.store.base import Store\n"
        "async def main():\n"
        f"    store = await Store.open({url!r}, schema={schema!r})\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False", done.stderr


async def test_event_seq_is_gap_free_and_ordered(store: Store) -> None:
    def write(tx: Any) -> None:
        for i in range(3):
            tx.event("run-1", "default", "NodeLog", "a", message=str(i))

    for _ in range(4):
        await store.transact(write)

    def read(tx: Any) -> list[int]:
        return [e.seq for e in reads.events_after(tx, limit=100)]

    assert await store.read(read) == list(range(1, 13))


async def test_ping(store: Store) -> None:
    assert await store.ping()


async def test_wake_ups_reach_other_stores_once_and_not_the_sender_twice(
    store: Store, db: tuple[str, str]
) -> None:
    # On PostgreSQL a second store on the schema stands for another process (LISTEN/
    # NOTIFY); the sender's own listener drops its NOTIFYs, delivered in-process already.
    other = await Store.open(db[0], schema=db[1])
    try:
        mine: list[tuple[str, str]] = []
        theirs: list[tuple[str, str]] = []
        got = asyncio.Event()

        def on_theirs(kind: str, payload: str) -> None:
            theirs.append((kind, payload))
            got.set()

        store.add_listener(lambda kind, payload: mine.append((kind, payload)), kinds=("cancel",))
        other.add_listener(on_theirs, kinds=("cancel",))
        await asyncio.sleep(0.2)  # the listeners are connected (and their reconnect wake-ups done)
        for run in ("r1", "r2"):
            await store.transact(lambda tx, run=run: tx.notify("cancel", run))
        if store.dialect == "postgresql":
            async with asyncio.timeout(5):
                while len(theirs) < 2:
                    got.clear()
                    await got.wait()
            assert theirs == [("cancel", "r1"), ("cancel", "r2")]
        await asyncio.sleep(0.3)  # time for a duplicate to arrive, if one were sent
        assert mine == [("cancel", "r1"), ("cancel", "r2")]
    finally:
        await other.close()


async def test_listener_reconnects_after_losing_its_connection(
    store: Store, db: tuple[str, str]
) -> None:
    _postgres_only(store)
    other = await Store.open(db[0], schema=db[1])
    try:
        got: asyncio.Queue[str] = asyncio.Queue()
        store.add_listener(lambda _kind, payload: got.put_nowait(payload), kinds=("cancel",))
        await asyncio.sleep(0.2)

        def kill_listeners(tx: Any) -> int:
            sql = (
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE :listen AND pid <> pg_backend_pid()"
            )
            listen = f'LISTEN "flowplane_{db[1]}%'
            return int(tx.conn.execute(sa.text(sql), {"listen": listen}).scalar())

        assert await other.transact(kill_listeners) == 2  # both stores' listeners
        # Until the listener is back (notifications sent before are lost).
        await send_until_received(
            lambda: other.transact(lambda tx: tx.notify("cancel", "after")),
            got,
            lambda payload: payload == "after",
        )
    finally:
        await other.close()


async def test_listener_takes_notifications_without_a_sender(
    store: Store, db: tuple[str, str]
) -> None:
    # A NOTIFY without the "@<sender>|" prefix (another version, or psql) still wakes us.
    _postgres_only(store)
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    store.add_listener(lambda kind, payload: got.put_nowait((kind, payload)), kinds=("cancel",))
    await asyncio.sleep(0.2)
    sql = sa.text("SELECT pg_notify(:channel, :message)")
    with store.engine.connect() as conn:
        conn.execute(sql, {"channel": f"flowplane_{db[1]}", "message": "cancel|r9"})
        conn.commit()
    async with asyncio.timeout(5):
        assert await got.get() == ("cancel", "r9")


async def test_event_notifications_reach_only_processes_listening_for_events(
    store: Store, db: tuple[str, str]
) -> None:
    # "event" NOTIFYs (one per commit with events) have a channel of their own: a store
    # with no listener for them (a worker process) is not woken by them, until one is added.
    _postgres_only(store)
    other = await Store.open(db[0], schema=db[1])
    try:
        arrived: list[str] = []  # kinds reaching the other store's listener thread
        deliver = other._deliver_local

        def spy(notes: list[tuple[str, str]]) -> None:
            arrived.extend(kind for kind, _payload in notes)
            deliver(notes)

        other._deliver_local = spy  # type: ignore[method-assign]
        cancels: asyncio.Queue[str] = asyncio.Queue()
        other.add_listener(lambda _kind, payload: cancels.put_nowait(payload), kinds=("cancel",))
        await asyncio.sleep(0.3)
        arrived.clear()

        def write(tx: Any) -> None:
            tx.event("run-1", "default", "NodeLog", "a", message="x")

        for _ in range(3):
            await store.transact(write)
        await store.transact(lambda tx: tx.notify("cancel", "sentinel"))
        async with asyncio.timeout(5):
            assert await cancels.get() == "sentinel"
        assert "cancel" in arrived and "event" not in arrived, arrived

        events: asyncio.Queue[str] = asyncio.Queue()
        other.add_listener(lambda _kind, payload: events.put_nowait(payload), kinds=("event",))
        # Until the listener LISTENs to the event channel too ("": its own wake-up).
        await send_until_received(
            lambda: store.transact(write), events, lambda payload: payload != ""
        )
    finally:
        await other.close()


async def test_taking_the_event_channel_loses_no_other_notification(
    store: Store, db: tuple[str, str]
) -> None:
    # The listener LISTENs to the event channel on its connection when the first event
    # listener comes (no reconnect): cancels sent meanwhile all arrive.
    _postgres_only(store)
    other = await Store.open(db[0], schema=db[1])
    try:
        got: list[int] = []
        other.add_listener(lambda _kind, payload: got.append(int(payload)), kinds=("cancel",))
        await asyncio.sleep(0.3)
        for i in range(300):
            if i == 100:
                other.add_listener(lambda _kind, _payload: None, kinds=("event",))
            await store.transact(lambda tx, i=i: tx.notify("cancel", str(i)))
        async with asyncio.timeout(5):
            while len(got) < 300:
                await asyncio.sleep(0.02)
        assert sorted(got) == list(range(300))
    finally:
        await other.close()


async def test_notifications_with_the_longest_schema_name() -> None:
    # Channel names are limited to 63 bytes; schema names are not (as far as 63): the
    # channels are shortened with a hash, wake-ups and events still cross stores.
    from conftest import POSTGRES_URL, drop_schema, require_postgres

    require_postgres()
    schema = "t_" + uuid.uuid4().hex + "x" * 29
    assert len(schema) == 63
    one = await Store.open(POSTGRES_URL, schema=schema)
    two = await Store.open(POSTGRES_URL, schema=schema)
    try:
        got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        two.add_listener(lambda kind, payload: got.put_nowait((kind, payload)))
        await asyncio.sleep(0.3)
        while not got.empty():  # (the listener's own wake-ups)
            got.get_nowait()
        await one.transact(lambda tx: tx.notify("cancel", "r1"))
        await one.transact(lambda tx: tx.event("run-1", "default", "NodeLog", "a", message="x"))
        async with asyncio.timeout(5):
            assert await got.get() == ("cancel", "r1")
            assert (await got.get())[0] == "event"
    finally:
        await one.close()
        await two.close()
        drop_schema(schema)


async def send_until_received(
    send: Callable[[], Awaitable[object]],
    received: asyncio.Queue[str],
    wanted: Callable[[str], bool],
) -> None:
    """Send, then wait 0.3 s for a ``wanted`` payload, again until one came (10 s at most)."""
    async with asyncio.timeout(10):
        while True:
            await send()
            try:
                async with asyncio.timeout(0.3):
                    if wanted(await received.get()):
                        return
            except TimeoutError:
                continue


def _postgres_only(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY wake-ups are PostgreSQL's (SQLite's are in-process)")


async def test_a_new_schema_ignores_another_installations_version_table() -> None:
    """A version table in ``public`` (another tool's, or an older Flowplane's) is not the
    store's: a fresh schema migrates from scratch and records its version in itself."""
    import psycopg

    from conftest import POSTGRES_URL, require_postgres

    require_postgres()
    database = f"fp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)"
            )
            conn.execute("INSERT INTO public.alembic_version VALUES ('9999_not_ours')")
        store = await Store.open(url, schema="installation_b")
        try:
            assert current_revision(store) == head_revision()
        finally:
            await store.close()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
            assert row == ("9999_not_ours",)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

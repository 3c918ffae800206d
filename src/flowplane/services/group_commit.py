"""Group commit: concurrent write transactions of this process coalesced into one commit.

``RunService.start_stored`` (every ``POST /v1/runs`` and ``POST /v1/workflows/{id}/runs``
of a stored workflow) hands its dispatch transaction to :class:`GroupCommit`. While a batch
is being committed, the starts that arrive queue up; the next batch runs them one after the
other in a single transaction and commits once (one ``BEGIN``/``COMMIT``, one thread hop, on
PostgreSQL one commit round trip and one WAL flush, instead of one per run).

What does not change:

* **Accepted only once committed.** Every caller is answered after the commit of the
  transaction that holds its work (its future is resolved then), never before; a batch
  that does not commit answers nobody with a result.
* **Isolation.** An entry whose function raises a :class:`FlowplaneError` (or a
  :class:`Refused`) is answered with its error only from a
  transaction in which it ran *first*, i.e. exactly as it would have run alone. When entry
  ``k > 0`` raises one, the transaction is rolled back, the ``k`` entries before it are
  committed as a batch of their own, and the rest (``k`` first) go again. Any other failure
  (a driver error, inside an entry or at the commit) is not pinned on anyone: the store
  retries the batch if it is transient, and if it still fails every entry of the batch runs
  in a transaction of its own (where the store maps the error as it always did) — except
  :class:`DatabaseUnavailable` (the store already waited for the database), which answers
  the whole batch at once rather than making each entry wait again on its own.
* **Order.** Entries run in arrival order, each seeing the writes of those before it (an
  ``Idempotency-Key`` or ``runId`` reused within one batch is found, as across batches).

A function must be repeatable (the store retries a transaction on transient errors) and
must read what it needs from its own arguments, not from context variables (it runs in the
task that commits the batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flowplane.errors import DatabaseUnavailable, FlowplaneError
from flowplane.store.base import Store
from flowplane.store.tx import Tx

__all__ = ["MAX_BATCH", "GroupCommit", "Refused"]

T = TypeVar("T")

MAX_BATCH = 32
"""The most entries one transaction commits (bounds the time the write lock, and on SQLite
the event loop, is held: ~0.1-0.2 ms per start)."""


class Refused(Exception):
    """An entry's own refusal that is not a :class:`FlowplaneError` (raised before it wrote
    anything, isolated like one)."""


@dataclass
class _Entry(Generic[T]):
    fn: Callable[[Tx], T]
    future: asyncio.Future[T]


class _EntryFailed(Exception):
    """Entry ``index`` of a batch raised ``error`` (the transaction is rolled back)."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index)
        self.index = index
        self.error = error


@dataclass
class GroupCommit:
    """Coalesces concurrent ``store.transact`` calls of one process into batches."""

    store: Store
    max_batch: int = MAX_BATCH
    _pending: list[_Entry[Any]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _draining: bool = False
    _task: asyncio.Task[None] | None = None
    batches: int = 0
    """Transactions committed (for tests and benches: ``entries / batches`` is the mean
    batch size)."""
    entries: int = 0

    async def transact(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn(tx)`` in a transaction shared with concurrent callers; return its result
        once that transaction committed (or raise its error, as if it had run alone)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): nothing of the old one lives
            self._loop, self._pending, self._draining = loop, [], False
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Entry(fn, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain(), name="flowplane-group-commit")
        return await future

    async def _drain(self) -> None:
        """Commit what is pending, batch after batch, until nothing is."""
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                # A caller that gave up before its turn (a client gone) is not started:
                # nobody would be told of its run.
                batch = [entry for entry in batch if not entry.future.cancelled()]
                if batch:
                    await self._commit(batch)
        finally:
            self._draining = False

    async def _commit(self, batch: list[_Entry[Any]]) -> None:
        """Commit ``batch``, splitting it where an entry fails (see the module docstring)."""
        while batch:
            results: list[Any] = []

            def run(tx: Tx, batch: list[_Entry[Any]] = batch, results: list[Any] = results) -> None:
                results.clear()  # the store may run this again (transient errors)
                for index, entry in enumerate(batch):
                    try:
                        results.append(entry.fn(tx))
                    except (FlowplaneError, Refused) as exc:
                        raise _EntryFailed(index, exc) from exc

            try:
                await self.store.transact(run)
            except _EntryFailed as failed:
                if failed.index == 0:  # it ran first: as alone
                    _fail(batch[0], failed.error)
                    batch = batch[1:]
                else:  # commit those before it, then go again from it
                    await self._commit(batch[: failed.index])
                    batch = batch[failed.index :]
                continue
            except Exception as exc:
                # Unavailable: the store already waited; alone, each would wait again.
                if len(batch) == 1 or isinstance(exc, DatabaseUnavailable):
                    for entry in batch:
                        _fail(entry, exc)
                else:
                    for entry in batch:
                        await self._commit([entry])
                return
            except BaseException as exc:  # cancelled: nobody's work is known to be stored
                for entry in batch:
                    _fail(entry, exc)
                raise
            self.batches += 1
            self.entries += len(batch)
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)
            return


def _fail(entry: _Entry[Any], error: BaseException) -> None:
    if not entry.future.done():
        entry.future.set_exception(error)

"""RetentionService: delete settled runs older than the retention policy, in small batches.

The policy comes from the settings (``FLOWPLANE_RETENTION_FINISHED``,
``FLOWPLANE_RETENTION_FAILED`` and the per-namespace ``FLOWPLANE_RETENTION_NAMESPACES``).
:meth:`RetentionService.run_forever` applies it in every ``serve`` and ``worker`` process;
``flowplane db prune`` and ``POST /v1/admin/prune`` apply it once. Each batch is its own
short transaction, and the loop pauses between batches, so workers claiming and completing
node runs are never held up behind a long delete. Several processes pruning one PostgreSQL
database skip each other's locked rows; what one misses the next batch takes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from dataclasses import dataclass, field

from flowplane.services.caller import Caller
from flowplane.services.context import current_actor
from flowplane.services.run_cache import RUN_CHANGED, SettledRunCache
from flowplane.settings import Settings, parse_age_ms
from flowplane.status import RunStatus
from flowplane.store import audit, retention
from flowplane.store.base import Store
from flowplane.store.tx import Tx

_log = logging.getLogger("flowplane.retention")

STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "finished": (RunStatus.FINISHED.value,),
    "failed": (RunStatus.FAILED.value, RunStatus.TIMED_OUT.value, RunStatus.CANCELLED.value),
}
"""The run statuses each key of a retention policy covers."""
PAUSE_BETWEEN_BATCHES_SECONDS = 0.05
"""Room for other writers (SQLite has one) between two delete transactions."""


@dataclass(frozen=True)
class RetentionRule:
    """Delete runs with one of ``statuses`` settled more than ``max_age_ms`` ago, in
    ``namespaces`` (every namespace when ``None``) except ``exclude_namespaces``."""

    statuses: tuple[str, ...]
    max_age_ms: int
    namespaces: tuple[str, ...] | None = None
    exclude_namespaces: tuple[str, ...] = ()


@dataclass
class PruneReport:
    """What one pass deleted (or, dry, would delete): runs by namespace."""

    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Runs deleted (or that would be) in every namespace."""
        return sum(self.deleted.values())


def rules_of(settings: Settings) -> list[RetentionRule]:
    """The retention rules the settings describe (empty: keep everything)."""
    defaults = {"finished": settings.retention_finished, "failed": settings.retention_failed}
    overridden = tuple(sorted(settings.retention_namespaces))
    rules: list[RetentionRule] = []
    for key, age in defaults.items():
        if age is not None:
            rules.append(
                RetentionRule(
                    STATUS_GROUPS[key],
                    parse_age_ms(age),
                    exclude_namespaces=tuple(
                        ns for ns in overridden if key in settings.retention_namespaces[ns]
                    ),
                )
            )
    for namespace in overridden:
        for key, age in settings.retention_namespaces[namespace].items():
            if age is not None:
                rules.append(RetentionRule(STATUS_GROUPS[key], parse_age_ms(age), (namespace,)))
    return rules


class RetentionService:
    """Delete settled runs by the retention policy."""

    def __init__(self, store: Store, settings: Settings, settled: SettledRunCache) -> None:
        self.store = store
        self.rules = rules_of(settings)
        self.batch_size = settings.retention_batch_size
        self.interval_seconds = settings.retention_interval_seconds
        self.settled = settled

    async def prune(self, caller: Caller, *, dry_run: bool = False) -> PruneReport:
        """Apply the policy once: delete every run it lets go, batch by batch.

        Raises:
            Forbidden: the caller is not an admin.
        """
        caller.require("admin")
        who = caller.actor if caller.kind != "system" else current_actor(caller.actor)
        report = PruneReport(dry_run=dry_run)
        for rule in self.rules:
            if dry_run:
                counts = await self.store.read(functools.partial(_count, rule=rule), scan=True)
                for namespace, count in counts.items():
                    report.deleted[namespace] = report.deleted.get(namespace, 0) + count
                continue
            while True:
                delete = functools.partial(_delete_batch, rule=rule, limit=self.batch_size, who=who)
                batch = await self.store.transact(delete, scan=True)
                for run_id, namespace in batch:
                    self.settled.drop(run_id)
                    report.deleted[namespace] = report.deleted.get(namespace, 0) + 1
                if len(batch) < self.batch_size:
                    break
                await asyncio.sleep(PAUSE_BETWEEN_BATCHES_SECONDS)
        return report

    async def run_forever(self) -> None:
        """Prune every ``interval_seconds`` (with jitter, so processes spread out) until
        cancelled; a failing pass is logged and tried again next time."""
        if not self.rules:
            return
        system = Caller.system()
        while True:
            await asyncio.sleep(self.interval_seconds * random.uniform(0.5, 1.0))
            try:
                report = await self.prune(system)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("retention pass failed; trying again in %gs", self.interval_seconds)
                continue
            if report.total:
                _log.info("retention: deleted %d run(s) %s", report.total, report.deleted)


def _count(tx: Tx, *, rule: RetentionRule) -> dict[str, int]:
    return retention.count_expired(
        tx,
        statuses=rule.statuses,
        settled_before_ms=tx.now_ms - rule.max_age_ms,
        namespaces=rule.namespaces,
        exclude_namespaces=rule.exclude_namespaces,
    )


def _delete_batch(
    tx: Tx, *, rule: RetentionRule, limit: int, who: audit.Actor
) -> list[tuple[str, str]]:
    """Delete up to ``limit`` runs the rule lets go, in this transaction; return them."""
    rows = retention.expired_runs(
        tx,
        statuses=rule.statuses,
        settled_before_ms=tx.now_ms - rule.max_age_ms,
        namespaces=rule.namespaces,
        exclude_namespaces=rule.exclude_namespaces,
        limit=limit,
    )
    if not rows:
        return []
    retention.delete_runs(tx, [run_id for run_id, _namespace in rows])
    counts: dict[str, int] = {}
    for run_id, namespace in rows:
        tx.notify(RUN_CHANGED, run_id)
        counts[namespace] = counts.get(namespace, 0) + 1
    for namespace, count in sorted(counts.items()):
        audit.record(
            tx,
            actor=who,
            action="run.prune",
            namespace=namespace,
            target_type="run",
            target_id="*",
            details={"runs": count, "maxAgeMs": rule.max_age_ms, "statuses": list(rule.statuses)},
        )
    return rows

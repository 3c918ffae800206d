"""What schedules and webhook triggers share: objects that belong to a workflow.

Both live in a namespace and point at a workflow (a signal trigger may point at none). Those
created through the API have ``owner="api"``; those declared in a workflow's ``triggers:``
have ``owner="workflow"``, follow the document, and can only be partly changed (and not
deleted) through the API. Every write is audited as ``<kind>.create|update|delete``.
:class:`OwnedService` holds that life cycle; each service adds only its own fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic.alias_generators import to_camel

from flowplane.errors import Conflict, NotFound, WorkflowNotFound
from flowplane.services.caller import Caller, Role
from flowplane.services.paging import Page, visible_page
from flowplane.store import audit
from flowplane.store import workflow_queries as wq
from flowplane.store.audit import Actor
from flowplane.store.base import Store
from flowplane.store.records import OwnedRecord, WorkflowRecord
from flowplane.store.tx import Row, Tx

R = TypeVar("R", bound=OwnedRecord)

__all__ = ["OwnedKind", "OwnedService", "find_workflow"]


class ListRows(Protocol[R]):
    """A store query listing one kind of object by id (``after_id`` is the cursor)."""

    def __call__(
        self,
        tx: Tx,
        *,
        namespaces: Sequence[str] | None = ...,
        workflow_id: str | None = ...,
        after_id: str | None = ...,
        limit: int = ...,
    ) -> list[R]:
        """Return up to ``limit`` records."""
        ...


@dataclass(frozen=True)
class OwnedKind(Generic[R]):
    """One kind of workflow-owned object: its name, its record and its store queries."""

    name: str
    """``schedule``: the audit target type, the action prefix and the word in messages."""
    not_found: type[NotFound]
    record: type[R]
    get: Callable[[Tx, str], R | None]
    listing: ListRows[R]
    insert: Callable[[Tx, dict[str, Any]], None]
    update: Callable[..., bool]
    """``update(tx, id, **columns)``; it sets ``updated_at_ms`` unless given."""
    delete: Callable[[Tx, str], bool]
    summary: tuple[str, ...]
    """The columns every audit entry of this kind carries in its details (camelCased)."""
    wake: str | None = None
    """The channel notified after a create or an update (``None``: none)."""
    role: Role = "editor"
    """The role every operation on this kind needs."""

    @classmethod
    def over(
        cls,
        queries: ModuleType,
        name: str,
        record: type[R],
        not_found: type[NotFound],
        summary: tuple[str, ...],
        wake: str | None = None,
    ) -> OwnedKind[R]:
        """The kind whose store queries are ``queries.get_<name>``, ``list_<name>s``,
        ``insert_<name>``, ``update_<name>`` and ``delete_<name>``."""
        return cls(
            name=name,
            not_found=not_found,
            record=record,
            get=getattr(queries, f"get_{name}"),
            listing=getattr(queries, f"list_{name}s"),
            insert=getattr(queries, f"insert_{name}"),
            update=getattr(queries, f"update_{name}"),
            delete=getattr(queries, f"delete_{name}"),
            summary=summary,
            wake=wake,
        )

    def details(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The audit details of ``row``: its :attr:`summary` columns, camelCased."""
        return {to_camel(column): row[column] for column in self.summary}


def find_workflow(
    tx: Tx,
    values: Mapping[str, Any],
    caller: Caller,
    default_namespace: str | None = None,
) -> WorkflowRecord | None:
    """The workflow ``values`` names: ``workflow_id``, or ``workflow`` in ``namespace``.

    Returns ``None`` when ``values`` names no workflow.

    Raises:
        WorkflowNotFound: no such workflow visible to the caller.
    """
    ref = values.get("workflow_id") or values.get("workflow")
    if not ref:
        return None
    if values.get("workflow_id"):
        row = wq.get_workflow_row(tx, str(ref))
    else:
        namespace = str(values.get("namespace") or default_namespace or "default")
        row = wq.get_workflow_by_name(tx, namespace, str(ref))
    if row is None or not caller.can_see(row.namespace):
        raise WorkflowNotFound(f"workflow {ref!r} not found")
    return row


class OwnedService(Generic[R]):
    """Reading, creating, changing and deleting one kind of workflow-owned object.

    The public ``get``, ``list`` and ``delete`` serve every kind as they are; subclasses set
    :attr:`kind` and write ``create`` and their change method (``update``, ``replace``),
    which pass what is specific to them to :meth:`_create` and :meth:`_update`. Every
    method checks the caller's role (:attr:`OwnedKind.role`) and hides other namespaces'
    objects behind the kind's ``NotFound``.
    """

    kind: ClassVar[OwnedKind[Any]]
    delete_advice: ClassVar[str]
    """What the conflict of deleting a declared object advises instead."""
    store: Store

    def _visible(self, tx: Tx, object_id: str, caller: Caller) -> R:
        """The object, or its ``NotFound`` when absent or in another namespace."""
        found: R | None = self.kind.get(tx, object_id)
        if found is None or not caller.can_see(found.namespace):
            raise self.kind.not_found(f"{self.kind.name} {object_id!r} not found")
        return found

    def _audit(
        self, tx: Tx, who: Actor, action: str, row: Mapping[str, Any], **details: Any
    ) -> None:
        audit.record(
            tx,
            actor=who,
            action=f"{self.kind.name}.{action}",
            namespace=row["namespace"],
            target_type=self.kind.name,
            target_id=row["id"],
            details={**self.kind.details(row), **details},
        )

    def _declared(self, advice: str) -> Conflict:
        """The conflict of changing a declared object here; ``advice`` says what to do."""
        return Conflict(f"this {self.kind.name} is declared in its workflow's triggers; {advice}")

    def _wake(self, tx: Tx) -> None:
        if self.kind.wake is not None:
            tx.notify(self.kind.wake)

    async def get(self, caller: Caller, object_id: str) -> R:
        """Return one object (its ``NotFound`` when absent or in another namespace)."""
        caller.require(self.kind.role)
        return await self.store.read(lambda tx: self._visible(tx, object_id, caller))

    async def list(
        self,
        caller: Caller,
        *,
        namespaces: Sequence[str] | None = None,
        workflow_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[R]:
        """A page of objects ordered by id, in ``namespaces`` the caller sees (``None``: all)."""
        caller.require(self.kind.role)

        def read(tx: Tx, visible: list[str] | None, n: int) -> list[R]:
            return self.kind.listing(
                tx, namespaces=visible, workflow_id=workflow_id, after_id=cursor, limit=n
            )

        return await visible_page(self.store, caller, namespaces, limit, read)

    async def delete(self, caller: Caller, object_id: str) -> None:
        """Delete an API-owned object.

        Raises:
            NotFound: (the kind's) absent or in another namespace.
            Conflict: the object is declared by its workflow's document.
        """
        caller.require(self.kind.role)
        who = caller.actor

        def fn(tx: Tx) -> None:
            current = self._visible(tx, object_id, caller)
            if current.owner == "workflow":
                raise self._declared(self.delete_advice)
            self.kind.delete(tx, object_id)
            self._audit(tx, who, "delete", current.columns())

        await self.store.transact(fn)

    async def _create(self, caller: Caller, row: Row, place: Callable[[Tx, Row], None]) -> R:
        """Insert ``row`` once ``place`` has checked it and set its workflow columns."""
        caller.require(self.kind.role)
        who = caller.actor
        row.setdefault("created_by", caller.name)

        def fn(tx: Tx) -> R:
            place(tx, row)
            row.update(created_at_ms=tx.now_ms, updated_at_ms=tx.now_ms)
            self.kind.insert(tx, row)
            self._audit(tx, who, "create", row)
            self._wake(tx)
            created: R = self.kind.record.from_row(row)
            return created

        return await self.store.transact(fn)

    async def _update(
        self,
        caller: Caller,
        object_id: str,
        change: Callable[[Tx, R], tuple[dict[str, Any], dict[str, Any]]],
    ) -> R:
        """Write the columns ``change(tx, current)`` returns, audited with its details."""
        caller.require(self.kind.role)
        who = caller.actor

        def fn(tx: Tx) -> R:
            current = self._visible(tx, object_id, caller)
            columns, details = change(tx, current)
            self.kind.update(tx, object_id, **columns)
            updated = {**current.columns(), **columns, "updated_at_ms": tx.now_ms}
            self._audit(tx, who, "update", updated, **details)
            self._wake(tx)
            record: R = self.kind.record.from_row(updated)
            return record

        return await self.store.transact(fn)

"""Who the current request acts as, for code that is not handed a :class:`Caller`.

The HTTP layer sets both context variables for each request: the request id in its
middleware, the actor once the caller is authenticated. Read them in async code *before*
``store.transact``: transactions run on executor threads, where the request's context is
not visible. Services that take a ``Caller`` use ``caller.actor`` instead.
"""

from __future__ import annotations

import contextvars

from flowplane.store.audit import SYSTEM, Actor

__all__ = ["actor_var", "current_actor", "current_request_id", "request_id_var", "set_actor"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowplane_request_id", default=None
)
actor_var: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "flowplane_actor", default=None
)


def set_actor(name: str, kind: str, actor_id: str | None = None) -> None:
    """Record who the current request acts as (called once the caller is authenticated)."""
    actor_var.set(Actor(name=name, kind=kind, id=actor_id))


def current_request_id() -> str | None:
    """Return the current request id (``None`` outside a request)."""
    return request_id_var.get()


def current_actor(default: Actor = SYSTEM) -> Actor:
    """Return the actor of the current context (with the request id), or ``default``."""
    actor = actor_var.get() or default
    request_id = request_id_var.get()
    if request_id is not None and actor.request_id is None:
        actor = Actor(actor.name, actor.kind, actor.id, request_id)
    return actor

"""The connector registry: built-ins by autodiscovery, plugins by entry point or module.

Built-in connectors are module-level connector objects in ``flowplane.connectors.builtin.*``;
:func:`load_builtins` imports every module of that package, so adding a connector means
adding a module (or a function to one), never editing a central list. Third parties expose
connectors through the ``flowplane.connectors`` entry-point group::

    [project.entry-points."flowplane.connectors"]
    acme = "acme_flowplane.connectors"          # a module: all its connectors
    greet = "acme_flowplane.connectors:greet"   # one connector (or a list of them)

or load a module at start-up with ``flowplane serve --plugin acme_flowplane.connectors``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import logging
import pkgutil
from collections import Counter
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, TypeVar

from flowplane.connectors.base import Connector, Manifest
from flowplane.errors import ConnectorNotFound

ENTRY_POINT_GROUP = "flowplane.connectors"
BUILTIN_PACKAGE = "flowplane.connectors.builtin"

_log = logging.getLogger("flowplane.connectors.registry")

C = TypeVar("C", bound=Connector)


def is_connector(value: Any) -> bool:
    """Whether ``value`` is a connector instance (a manifest plus an async call)."""
    return (
        not isinstance(value, type)
        and isinstance(value, Connector)
        and isinstance(getattr(value, "manifest", None), Manifest)
    )


def module_connectors(module: ModuleType) -> list[Connector]:
    """Return the connector objects defined at the top level of ``module``, in order.

    An object bound to several names (an alias, or a re-export) is returned once.
    """
    found: dict[int, Connector] = {}
    for value in vars(module).values():
        if is_connector(value):
            found.setdefault(id(value), value)
    return list(found.values())


class Registry:
    """Connectors by type (``http.request``, ``util.log``, ...)."""

    def __init__(self, connectors: Iterable[Connector] = ()) -> None:
        self._connectors: dict[str, Connector] = {}
        for conn in connectors:
            self.register(conn)

    def register(self, conn: Connector, *, replace: bool = False) -> None:
        """Add ``conn`` under its manifest's type.

        Registering the very same object twice is a no-op.

        Args:
            conn: the connector.
            replace: replace a different connector already registered under that type.

        Raises:
            ValueError: another connector has that type and ``replace`` is false.
            TypeError: ``conn`` is not a connector.
        """
        if not is_connector(conn):
            raise TypeError(f"not a connector: {conn!r}")
        type_ = conn.manifest.type
        existing = self._connectors.get(type_)
        if existing is not None and existing is not conn and not replace:
            raise ValueError(f"connector type {type_!r} is already registered ({existing!r})")
        self._connectors[type_] = conn

    def unregister(self, type_: str) -> None:
        """Remove the connector registered under ``type_`` (no error when absent)."""
        self._connectors.pop(type_, None)

    def get(self, type_: str) -> Connector:
        """Return the connector for ``type_``.

        Raises:
            ConnectorNotFound: nothing is registered under ``type_``; the message names the
                closest types and ``extra["suggestions"]`` lists them.
        """
        try:
            return self._connectors[type_]
        except KeyError:
            suggestions = self.close_matches(type_)
            hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
            raise ConnectorNotFound(
                f"unknown connector type {type_!r}{hint}", type=type_, suggestions=suggestions
            ) from None

    def lookup(self, type_: str) -> Manifest | None:
        """Return the manifest for ``type_``, or ``None`` when it is not registered."""
        conn = self._connectors.get(type_)
        return conn.manifest if conn is not None else None

    def types(self) -> list[str]:
        """Return every registered type, sorted."""
        return sorted(self._connectors)

    def manifests(self) -> list[Manifest]:
        """Return every manifest, sorted by type."""
        return [self._connectors[type_].manifest for type_ in self.types()]

    def categories(self) -> dict[str, int]:
        """Return the number of connectors per category, sorted by category."""
        counts = Counter(conn.manifest.category for conn in self._connectors.values())
        return dict(sorted(counts.items()))

    def close_matches(self, type_: str, n: int = 3) -> list[str]:
        """Return up to ``n`` registered types that look like ``type_`` (best first)."""
        types = self.types()
        matches = difflib.get_close_matches(type_, types, n=n, cutoff=0.6)
        if len(matches) < n:
            # "log" should find "util.log": also compare against the part after the dot.
            suffix = type_.rsplit(".", 1)[-1]
            for candidate in types:
                if candidate.rsplit(".", 1)[-1] == suffix and candidate not in matches:
                    matches.append(candidate)
        return matches[:n]

    def __contains__(self, type_: object) -> bool:
        return type_ in self._connectors

    def __len__(self) -> int:
        return len(self._connectors)

    def __iter__(self) -> Iterator[str]:
        return iter(self.types())

    def __repr__(self) -> str:
        return f"<Registry of {len(self)} connectors>"


def _add(registry: Registry, conn: Connector) -> bool:
    """Register ``conn``; return whether it was new (the same object again is not)."""
    type_ = conn.manifest.type
    if type_ in registry and registry.get(type_) is conn:
        return False
    registry.register(conn)
    return True


def register_module(registry: Registry, module: ModuleType, *, strict: bool = True) -> list[str]:
    """Register every module-level connector of ``module``.

    Args:
        registry: the registry to fill.
        module: the module to scan.
        strict: raise on a type clash; when false, log it and skip that connector.

    Returns:
        The types registered.

    Raises:
        ValueError: a type clashes with a registered connector and ``strict`` is true.
    """
    added: list[str] = []
    for conn in module_connectors(module):
        try:
            if not _add(registry, conn):
                continue
        except ValueError:
            if strict:
                raise
            _log.error(
                "connector %s from %s clashes with a registered one; skipped",
                conn.manifest.type,
                module.__name__,
            )
            continue
        added.append(conn.manifest.type)
    return added


def load_builtins(registry: Registry) -> list[str]:
    """Import every module of ``flowplane.connectors.builtin`` and register its connectors.

    A module that fails to import (say, an optional dependency is missing) is logged and
    skipped so that the other connectors stay available.

    Returns:
        The types registered.
    """
    package = importlib.import_module(BUILTIN_PACKAGE)
    added: list[str] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        name = f"{BUILTIN_PACKAGE}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception:
            _log.exception("built-in connector module %s failed to import; skipped", name)
            continue
        added.extend(register_module(registry, module, strict=False))
    return added


def _register_loaded(registry: Registry, obj: Any, origin: str) -> list[str]:
    """Register what an entry point loaded: a connector, a list of them, or a module."""
    if isinstance(obj, ModuleType):
        return register_module(registry, obj, strict=False)
    items = list(obj) if isinstance(obj, list | tuple) else [obj]
    added: list[str] = []
    for item in items:
        if not is_connector(item):
            _log.error("plugin %s provided %r, which is not a connector; skipped", origin, item)
            continue
        try:
            if not _add(registry, item):
                continue
        except ValueError as exc:
            _log.error("plugin %s: %s; skipped", origin, exc)
            continue
        added.append(item.manifest.type)
    return added


def load_entry_points(registry: Registry, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Register the connectors every installed distribution exposes in ``group``.

    Each entry point may load a connector, a list (or tuple) of connectors, or a module
    (all its module-level connectors). A broken plugin is logged and skipped.

    Returns:
        The types registered.
    """
    added: list[str] = []
    for entry_point in importlib.metadata.entry_points(group=group):
        origin = f"{entry_point.name} = {entry_point.value}"
        try:
            obj = entry_point.load()
        except Exception:
            _log.exception("connector plugin %s failed to load; skipped", origin)
            continue
        added.extend(_register_loaded(registry, obj, origin))
    return added


def load_plugin_module(registry: Registry, module_name: str) -> list[str]:
    """Import ``module_name`` and register its module-level connectors (``--plugin``).

    Returns:
        The types registered.

    Raises:
        ImportError: the module cannot be imported.
        ValueError: one of its connectors clashes with a registered type, or it has none.
    """
    module = importlib.import_module(module_name)
    added = register_module(registry, module)
    if not added and not module_connectors(module):
        raise ValueError(f"plugin module {module_name!r} defines no connectors")
    return added


@functools.cache
def default_registry() -> Registry:
    """Return the process-wide registry: built-ins plus entry-point plugins (built once)."""
    registry = Registry()
    load_builtins(registry)
    load_entry_points(registry)
    return registry


def register(conn: C, *, replace: bool = False) -> C:
    """Add ``conn`` to :func:`default_registry` and return it (usable as a decorator).

    Example::

        @register
        @connector("acme.greet", description="Say hello")
        async def greet(params, ctx): ...
    """
    default_registry().register(conn, replace=replace)
    return conn

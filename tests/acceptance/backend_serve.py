"""A ``flowplane serve`` subprocess on SQLite or on PostgreSQL (a fresh schema, dropped after).

For module-scoped fixtures parametrized over both backends::

    @pytest.fixture(scope="module", params=BACKENDS)
    def server(request, tmp_path_factory):
        with serve_on(request.param, tmp_path_factory.mktemp("x"), root=root) as running:
            yield running
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from serve_support import Serve, serving

from conftest import POSTGRES_URL, drop_schema, require_postgres


@contextlib.contextmanager
def serve_on(
    backend: str,
    base: Path,
    *args: str,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Serve]:
    """Start ``flowplane serve`` on ``backend`` (``sqlite`` or ``postgres``) in ``base``."""
    if backend == "sqlite":
        with serving(base, f"sqlite:///{base / 'fp.db'}", *args, root=root, env=env) as running:
            yield running
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with serving(
            base, POSTGRES_URL, "--database-schema", schema, *args, root=root, env=env
        ) as running:
            yield running
    finally:
        drop_schema(schema)


def database_args(backend: str, base: Path) -> tuple[tuple[str, ...], str | None]:
    """``--database-url`` (and ``--database-schema``) arguments of a fresh database on
    ``backend`` for a command of its own (``flowplane run --serve``); the schema to drop."""
    if backend == "sqlite":
        return ("--database-url", f"sqlite:///{base / 'fp.db'}"), None
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return ("--database-url", POSTGRES_URL, "--database-schema", schema), schema

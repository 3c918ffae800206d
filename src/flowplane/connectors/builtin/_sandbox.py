"""The per-namespace file folder ``<data_dir>/files/<namespace>/`` and paths inside it.

Used by ``file.*``, and by ``email.send`` (attachments), ``sql.*`` (SQLite files) and
``system.shell`` (working folder). Absolute paths, ``..`` parts and symbolic links that
lead outside the folder are refused: the path is resolved (links followed) and must stay
inside.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from flowplane.connectors.base import NodeContext
from flowplane.connectors.builtin._settings import data_dir
from flowplane.errors import ConnectorError

_NAMESPACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def sandbox_root(ctx: NodeContext) -> Path:
    """Return (and create) the namespace's file folder ``<data_dir>/files/<namespace>``."""
    if not _NAMESPACE.match(ctx.namespace) or ctx.namespace in (".", ".."):
        raise _bad("namespace is not usable as a folder name")
    root = data_dir(ctx) / "files" / ctx.namespace
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def sandbox_path(ctx: NodeContext, relative: str, *, allow_root: bool = False) -> Path:
    """Return the absolute path of ``relative`` inside the sandbox.

    Raises:
        ConnectorError: (not retryable) the path is absolute, has ``..``, or escapes.
    """
    root = sandbox_root(ctx)
    text = relative.replace("\\", "/")
    if "\x00" in text:
        raise _bad("path contains a NUL character")
    pure = PurePosixPath(text)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise _bad("absolute paths are not allowed; give a path inside the file folder")
    if ".." in pure.parts:
        raise _bad("'..' is not allowed in paths")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts and not allow_root:
        raise _bad("path names the folder itself")
    candidate = root.joinpath(*parts)
    resolved = candidate.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise _bad("path leads outside the file folder (symbolic link?)")
    return candidate

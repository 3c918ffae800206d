"""File connectors: read, write, list, stat and delete files in a per-namespace sandbox folder.

Every path is relative to ``<data_dir>/files/<namespace>/``. Absolute paths, ``..`` parts
and symbolic links that lead outside the folder are refused: the path is resolved (links
followed) and must stay inside, and the final component is opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import fnmatch
import json
import os
import stat
from pathlib import Path
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._sandbox import sandbox_path, sandbox_root
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_LIST_ENTRIES = 10_000

PATH = prop(
    "string",
    "Path relative to the namespace's file folder, e.g. 'reports/q1.csv'.",
    minLength=1,
    maxLength=1024,
)
ENCODING = prop(
    "string",
    "text (UTF-8), base64 (binary) or json (parsed/serialised).",
    enum=["text", "base64", "json"],
    default="text",
)


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def _display(ctx: NodeContext, path: Path) -> str:
    return path.relative_to(sandbox_root(ctx)).as_posix()


def _read(path: Path, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise _bad("file not found") from exc
    except IsADirectoryError as exc:
        raise _bad("path is a folder") from exc
    except OSError as exc:
        raise _bad(f"cannot open file: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _bad("path is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _bad(f"file is larger than {limit} bytes")
    return data


@connector(
    "file.read",
    name="Read file",
    category="file",
    description="Read a file from the namespace's sandboxed file folder as text, base64 or JSON.",
    input_schema=obj(
        {
            "path": PATH,
            "encoding": ENCODING,
            "max_bytes": prop(
                "integer",
                "Refuse files larger than this.",
                minimum=1,
                maximum=MAX_FILE_BYTES,
                default=MAX_FILE_BYTES,
            ),
        },
        ["path"],
    ),
    output_schema=out(
        {
            "content": prop(None, "Text, base64 text, or the parsed JSON value."),
            "size": prop("integer", "Size in bytes."),
            "path": prop("string", "The relative path."),
        }
    ),
    examples=[{"path": "reports/latest.json", "encoding": "json"}],
)
async def file_read(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Read ``path``."""
    path = sandbox_path(ctx, params["path"])
    data = await asyncio.to_thread(_read, path, params.get("max_bytes", MAX_FILE_BYTES))
    encoding = params.get("encoding", "text")
    try:
        if encoding == "base64":
            content: Any = base64.b64encode(data).decode()
        elif encoding == "json":
            content = json.loads(data)
        else:
            content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("file is not UTF-8 text; use encoding=base64") from exc
    except json.JSONDecodeError as exc:
        raise _bad(f"file is not valid JSON: {exc}") from exc
    return {"content": content, "size": len(data), "path": _display(ctx, path)}


def _write(path: Path, data: bytes, mode: str, make_dirs: bool) -> None:
    if make_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= {"overwrite": os.O_TRUNC, "append": os.O_APPEND, "create": os.O_EXCL}[mode]
    try:
        fd = os.open(path, flags, 0o640)
    except FileExistsError as exc:
        raise _bad("file already exists (mode=create)") from exc
    except FileNotFoundError as exc:
        raise _bad("parent folder does not exist") from exc
    except OSError as exc:
        raise _bad(f"cannot write file: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@connector(
    "file.write",
    name="Write file",
    category="file",
    description="Write text, base64 bytes or a JSON value to a file in the namespace's folder.",
    input_schema=obj(
        {
            "path": PATH,
            "content": prop(None, "Text, base64 text, or any JSON value (encoding=json)."),
            "encoding": ENCODING,
            "mode": prop(
                "string",
                "overwrite, append, or create (fail if it exists).",
                enum=["overwrite", "append", "create"],
                default="overwrite",
            ),
            "make_dirs": prop("boolean", "Create missing parent folders.", default=True),
        },
        ["path", "content"],
    ),
    output_schema=out(
        {"path": prop("string", "The relative path."), "size": prop("integer", "Bytes written.")}
    ),
    examples=[
        {"path": "exports/orders.csv", "content": "id,total\n1,20\n"},
        {"path": "state.json", "content": {"cursor": 42}, "encoding": "json"},
    ],
)
async def file_write(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Write ``content`` to ``path``."""
    path = sandbox_path(ctx, params["path"])
    encoding, content = params.get("encoding", "text"), params["content"]
    if encoding == "json":
        data = json.dumps(content, ensure_ascii=False, indent=2).encode()
    elif not isinstance(content, str):
        raise _bad("content must be a string unless encoding=json")
    elif encoding == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except binascii.Error as exc:
            raise _bad("content is not valid base64") from exc
    else:
        data = content.encode()
    if len(data) > MAX_FILE_BYTES:
        raise _bad(f"content is larger than {MAX_FILE_BYTES} bytes")
    await asyncio.to_thread(
        _write, path, data, params.get("mode", "overwrite"), params.get("make_dirs", True)
    )
    # Re-check after creating folders: a racing symlink swap must not have moved us out.
    sandbox_path(ctx, params["path"])
    return {"path": _display(ctx, path), "size": len(data)}


def _entry(root: Path, path: Path) -> dict[str, Any]:
    info = path.lstat()
    kind = (
        "dir" if stat.S_ISDIR(info.st_mode) else ("link" if stat.S_ISLNK(info.st_mode) else "file")
    )
    return {
        "path": path.relative_to(root).as_posix(),
        "name": path.name,
        "type": kind,
        "size": info.st_size,
        "modified": dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).isoformat(),
    }


def _list(root: Path, folder: Path, pattern: str, recursive: bool) -> tuple[list[Any], bool]:
    if not folder.is_dir():
        raise _bad("folder not found")
    entries: list[dict[str, Any]] = []
    walker = folder.rglob("*") if recursive else folder.iterdir()
    for path in sorted(walker):
        if fnmatch.fnmatch(path.name, pattern):
            if len(entries) >= MAX_LIST_ENTRIES:
                return entries, True
            entries.append(_entry(root, path))
    return entries, False


@connector(
    "file.list",
    name="List files",
    category="file",
    description="List files and folders in the namespace's file folder, optionally recursively.",
    input_schema=obj(
        {
            "path": prop(
                "string", "Folder to list (default: the top).", default="", maxLength=1024
            ),
            "pattern": prop("string", "Glob on names, e.g. '*.csv'.", default="*", maxLength=200),
            "recursive": prop("boolean", "Include sub-folders.", default=False),
        },
    ),
    output_schema=out(
        {
            "entries": prop("array", "[{path, name, type, size, modified}]."),
            "count": prop("integer", "Number of entries."),
            "truncated": prop("boolean", "Whether the 10000-entry cap cut it."),
        }
    ),
    examples=[{"path": "exports", "pattern": "*.csv"}, {}],
)
async def file_list(params: dict[str, Any], ctx: NodeContext) -> Any:
    """List ``path``."""
    folder = sandbox_path(ctx, params.get("path", ""), allow_root=True)
    root = sandbox_root(ctx)
    entries, truncated = await asyncio.to_thread(
        _list, root, folder, params.get("pattern", "*"), bool(params.get("recursive"))
    )
    return {"entries": entries, "count": len(entries), "truncated": truncated}


@connector(
    "file.stat",
    name="File info",
    category="file",
    description="Tell whether a path exists in the file folder, with its type, size and mtime.",
    input_schema=obj({"path": PATH}, ["path"]),
    output_schema=out(
        {
            "exists": prop("boolean", "Whether it exists."),
            "type": prop(["string", "null"], "file, dir or link."),
            "size": prop(["integer", "null"], "Size in bytes."),
            "modified": prop(["string", "null"], "Last modification (ISO-8601)."),
        }
    ),
    examples=[{"path": "exports/orders.csv"}],
)
async def file_stat(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Describe ``path``."""
    path = sandbox_path(ctx, params["path"])
    if not path.exists():
        return {"exists": False, "type": None, "size": None, "modified": None}
    entry = _entry(sandbox_root(ctx), path)
    return {
        "exists": True,
        "type": entry["type"],
        "size": entry["size"],
        "modified": entry["modified"],
    }


@connector(
    "file.delete",
    name="Delete file",
    category="file",
    description="Delete a file (or an empty folder) from the namespace's file folder.",
    input_schema=obj(
        {
            "path": PATH,
            "missing_ok": prop("boolean", "Succeed when the path does not exist.", default=True),
        },
        ["path"],
    ),
    output_schema=out({"deleted": prop("boolean", "Whether something was deleted.")}),
    examples=[{"path": "tmp/old.json"}],
)
async def file_delete(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Delete ``path``."""
    path = sandbox_path(ctx, params["path"])
    try:
        if path.is_dir() and not path.is_symlink():
            await asyncio.to_thread(path.rmdir)
        else:
            await asyncio.to_thread(path.unlink)
    except FileNotFoundError as exc:
        if params.get("missing_ok", True):
            return {"deleted": False}
        raise _bad("file not found") from exc
    except OSError as exc:
        raise _bad(f"cannot delete: {exc.strerror}") from exc
    return {"deleted": True}

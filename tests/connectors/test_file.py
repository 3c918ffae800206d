"""file.*: the per-namespace sandbox and its escapes."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import file as m
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "files" / "default"


def test_manifests() -> None:
    assert_manifests(m, minimum=5)


async def test_write_read_list_stat_delete(ctx: Any, root: Path) -> None:
    out = await m.file_write({"path": "reports/q1.csv", "content": "a,b\n"}, ctx)
    assert out == {"path": "reports/q1.csv", "size": 4}
    assert (root / "reports" / "q1.csv").read_text() == "a,b\n"
    await m.file_write({"path": "reports/q1.csv", "content": "1,2\n", "mode": "append"}, ctx)
    read = await m.file_read({"path": "reports/q1.csv"}, ctx)
    assert read == {"content": "a,b\n1,2\n", "size": 8, "path": "reports/q1.csv"}
    with pytest.raises(ConnectorError, match="already exists"):
        await m.file_write({"path": "reports/q1.csv", "content": "x", "mode": "create"}, ctx)

    await m.file_write({"path": "state.json", "content": {"cursor": 42}, "encoding": "json"}, ctx)
    assert (await m.file_read({"path": "state.json", "encoding": "json"}, ctx))["content"] == {
        "cursor": 42
    }
    blob = base64.b64encode(b"\x00\xff").decode()
    await m.file_write({"path": "b.bin", "content": blob, "encoding": "base64"}, ctx)
    assert (await m.file_read({"path": "b.bin", "encoding": "base64"}, ctx))["content"] == blob
    with pytest.raises(ConnectorError, match="UTF-8"):
        await m.file_read({"path": "b.bin"}, ctx)
    with pytest.raises(ConnectorError, match="larger"):
        await m.file_read({"path": "reports/q1.csv", "max_bytes": 3}, ctx)

    listing = await m.file_list({}, ctx)
    assert [e["path"] for e in listing["entries"]] == ["b.bin", "reports", "state.json"]
    deep = await m.file_list({"recursive": True, "pattern": "*.csv"}, ctx)
    assert [e["path"] for e in deep["entries"]] == ["reports/q1.csv"]
    stat = await m.file_stat({"path": "reports/q1.csv"}, ctx)
    assert stat["exists"] and stat["type"] == "file" and stat["size"] == 8
    assert (await m.file_stat({"path": "nope"}, ctx))["exists"] is False

    assert (await m.file_delete({"path": "reports/q1.csv"}, ctx)) == {"deleted": True}
    assert (await m.file_delete({"path": "reports/q1.csv"}, ctx)) == {"deleted": False}
    with pytest.raises(ConnectorError, match="not found"):
        await m.file_delete({"path": "reports/q1.csv", "missing_ok": False}, ctx)
    assert (await m.file_delete({"path": "reports"}, ctx)) == {"deleted": True}
    with pytest.raises(ConnectorError, match="not found"):
        await m.file_read({"path": "missing.txt"}, ctx)
    with pytest.raises(ConnectorError, match="folder not found"):
        await m.file_list({"path": "missing"}, ctx)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside.txt",
        "a/../../x",
        "..",
        "a/..",
        "C:/windows",
        "a\x00b",
        "..\\..\\x",
        ".",
        "",
    ],
)
async def test_escapes_refused(ctx: Any, path: str) -> None:
    for fn, params in ((m.file_read, {}), (m.file_write, {"content": "x"}), (m.file_delete, {})):
        with pytest.raises(ConnectorError) as err:
            await fn({"path": path, **params}, ctx)
        assert not err.value.retryable


async def test_symlink_escape_refused(ctx: Any, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    root.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, root / "link.txt")
    os.symlink(tmp_path, root / "dirlink")
    for path in ("link.txt", "dirlink/secret.txt"):
        with pytest.raises(ConnectorError, match="outside"):
            await m.file_read({"path": path}, ctx)
        with pytest.raises(ConnectorError, match="outside"):
            await m.file_write({"path": path, "content": "pwned"}, ctx)
    with pytest.raises(ConnectorError, match="outside"):
        await m.file_list({"path": "dirlink"}, ctx)
    assert secret.read_text() == "top secret"


async def test_namespaces_are_separate(tmp_path: Path) -> None:
    a = make_ctx(tmp_path, namespace="team-a")
    b = make_ctx(tmp_path, namespace="team-b")
    await m.file_write({"path": "x.txt", "content": "a"}, a)
    assert (await m.file_stat({"path": "x.txt"}, b))["exists"] is False
    with pytest.raises(ConnectorError, match="namespace"):
        await m.file_read({"path": "x.txt"}, make_ctx(tmp_path, namespace="../evil"))

"""kv.* connectors against a dict-backed KVAccess (the store is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import kv as m
from flowplane.errors import ConnectorError


class DictKV:
    """A minimal in-memory KVAccess."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.ttls: dict[str, float | None] = {}

    async def get(self, key: str) -> Any:
        return self.data.get(key)

    async def set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        self.data[key] = value
        self.ttls[key] = ttl_seconds

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    async def increment(self, key: str, amount: float = 1) -> float:
        self.data[key] = float(self.data.get(key, 0)) + amount
        return float(self.data[key])


@pytest.fixture
def kv() -> DictKV:
    return DictKV()


@pytest.fixture
def ctx(tmp_path: Path, kv: DictKV) -> Any:
    return make_ctx(tmp_path, kv=kv)


def test_manifests() -> None:
    assert_manifests(m, minimum=4)


async def test_set_get_delete(ctx: Any, kv: DictKV) -> None:
    assert (await m.kv_get({"key": "a", "default": 5}, ctx)) == {"value": 5, "found": False}
    assert (await m.kv_set({"key": "a", "value": {"x": [1]}, "ttl_seconds": 60}, ctx)) == {
        "key": "a",
        "ok": True,
    }
    assert kv.ttls["a"] == 60
    assert (await m.kv_get({"key": "a"}, ctx)) == {"value": {"x": [1]}, "found": True}
    assert (await m.kv_delete({"key": "a"}, ctx)) == {"deleted": True}
    assert (await m.kv_delete({"key": "a"}, ctx)) == {"deleted": False}
    with pytest.raises(ConnectorError, match=r"kv\.delete"):
        await m.kv_set({"key": "a", "value": None}, ctx)


async def test_increment(ctx: Any) -> None:
    assert (await m.kv_increment({"key": "c"}, ctx)) == {"value": 1}
    assert (await m.kv_increment({"key": "c", "amount": 2.5}, ctx)) == {"value": 3.5}
    assert (await m.kv_increment({"key": "c", "amount": -0.5}, ctx)) == {"value": 3}


async def test_no_store(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    for fn, params in (
        (m.kv_get, {"key": "a"}),
        (m.kv_set, {"key": "a", "value": 1}),
        (m.kv_delete, {"key": "a"}),
        (m.kv_increment, {"key": "a"}),
    ):
        with pytest.raises(ConnectorError, match="no key-value store") as err:
            await fn(params, ctx)
        assert not err.value.retryable

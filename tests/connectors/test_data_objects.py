"""data_objects: JSON Patch/diff, merge, pick/omit, flatten, get/set, entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_objects as m
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=10)


async def test_json_patch_and_diff(ctx: Any) -> None:
    doc = {"a": 1, "list": [1, 2]}
    out = await m.json_patch(
        {
            "document": doc,
            "patch": [
                {"op": "add", "path": "/b", "value": {"c": 2}},
                {"op": "remove", "path": "/list/0"},
                {"op": "test", "path": "/a", "value": 1},
            ],
        },
        ctx,
    )
    assert out == {"document": {"a": 1, "list": [2], "b": {"c": 2}}}
    assert doc == {"a": 1, "list": [1, 2]}  # input untouched
    for bad in (
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/zz"}],
        [{"op": "nope", "path": "/a"}],
        [{"path": "/a"}],
    ):
        with pytest.raises(ConnectorError) as err:
            await m.json_patch({"document": doc, "patch": bad}, ctx)
        assert not err.value.retryable
    diff = await m.json_diff({"source": {"a": 1, "b": 2}, "target": {"a": 1, "c": 3}}, ctx)
    assert not diff["equal"]
    again = await m.json_patch({"document": {"a": 1, "b": 2}, "patch": diff["patch"]}, ctx)
    assert again["document"] == {"a": 1, "c": 3}
    assert (await m.json_diff({"source": [1], "target": [1]}, ctx))["equal"]


async def test_merge(ctx: Any) -> None:
    objects = [{"a": {"x": 1, "l": [1]}, "k": 1}, {"a": {"y": 2, "l": [1, 2]}, "k": None}]
    assert (await m.merge({"objects": objects}, ctx))["value"] == {
        "a": {"x": 1, "y": 2, "l": [1, 2]},
        "k": None,
    }
    assert (await m.merge({"objects": objects, "lists": "concat"}, ctx))["value"]["a"]["l"] == [
        1,
        1,
        2,
    ]
    assert (await m.merge({"objects": objects, "lists": "union"}, ctx))["value"]["a"]["l"] == [1, 2]
    assert (await m.merge({"objects": objects, "deep": False}, ctx))["value"]["a"] == {
        "y": 2,
        "l": [1, 2],
    }


async def test_pick_omit(ctx: Any) -> None:
    obj = {"id": 1, "user": {"name": "a", "pw": "x"}, "z": 0}
    assert (await m.pick({"object": obj, "fields": ["id", "user.name", "nope"]}, ctx)) == {
        "value": {"id": 1, "user": {"name": "a"}}
    }
    out = await m.omit({"items": [obj], "fields": ["user.pw", "z"]}, ctx)
    assert out == {"items": [{"id": 1, "user": {"name": "a"}}], "count": 1}
    assert obj["user"] == {"name": "a", "pw": "x"}
    with pytest.raises(ConnectorError):
        await m.pick({"fields": ["a"]}, ctx)
    with pytest.raises(ConnectorError):
        await m.pick({"items": [1], "fields": ["a"]}, ctx)


async def test_flatten_unflatten(ctx: Any) -> None:
    assert (await m.flatten({"items": [1, [2, [3, [4]]]], "depth": 2}, ctx))["items"] == [
        1,
        2,
        3,
        [4],
    ]
    flat = await m.flatten({"object": {"a": {"b": 1, "c": [1, {"d": 2}]}, "e": {}}}, ctx)
    assert flat["value"] == {"a.b": 1, "a.c.0": 1, "a.c.1.d": 2, "e": {}}
    nested = await m.unflatten({"object": {"a.b": 1, "a.c": 2, "d": 3}}, ctx)
    assert nested["value"] == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(ConnectorError):
        await m.flatten({}, ctx)


async def test_get_set_entries(ctx: Any) -> None:
    doc = {"items": [{"name": "a"}]}
    assert (await m.get_value({"document": doc, "path": "items.0.name"}, ctx)) == {
        "value": "a",
        "found": True,
    }
    assert (await m.get_value({"document": doc, "path": "items.5", "default": 0}, ctx)) == {
        "value": 0,
        "found": False,
    }
    out = await m.set_values({"object": {"a": 1}, "values": {"b.c": 2, "a": 3}}, ctx)
    assert out["value"] == {"a": 3, "b": {"c": 2}}
    with pytest.raises(ConnectorError):
        await m.set_values({"object": {"l": [1]}, "values": {"l.x": 1}}, ctx)
    pairs = await m.entries({"object": {"a": 1, "b": 2}}, ctx)
    assert pairs["entries"] == [{"key": "a", "value": 1}, {"key": "b", "value": 2}]
    assert (await m.entries({"entries": pairs["entries"]}, ctx))["value"] == {"a": 1, "b": 2}

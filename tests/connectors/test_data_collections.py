"""data_collections: filter, sort, group, dedupe, zip, chunk, slice, pluck, map, set ops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import _regex as safe_regex
from flowplane.connectors.builtin import data_collections as m
from flowplane.errors import ConnectorError

PEOPLE = [
    {"name": "ada", "age": 36, "team": {"id": 1}, "tags": ["x"]},
    {"name": "Linus", "age": 21, "team": {"id": 2}, "tags": []},
    {"name": "grace", "age": None, "team": {"id": 1}, "tags": ["y", "x"]},
]


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=10)


@pytest.mark.parametrize(
    ("conditions", "mode", "names"),
    [
        ([{"field": "age", "op": "gt", "value": 30}], "all", ["ada"]),
        ([{"field": "team.id", "op": "eq", "value": 1}], "all", ["ada", "grace"]),
        ([{"field": "tags", "op": "contains", "value": "x"}], "all", ["ada", "grace"]),
        ([{"field": "tags", "op": "empty"}], "all", ["Linus"]),
        ([{"field": "name", "op": "matches", "value": "^[A-Z]"}], "all", ["Linus"]),
        ([{"field": "name", "op": "in", "value": ["ada", "zed"]}], "all", ["ada"]),
        ([{"field": "nope", "op": "exists"}], "all", []),
        (
            [
                {"field": "age", "op": "lt", "value": 30},
                {"field": "name", "op": "eq", "value": "grace"},
            ],
            "any",
            ["Linus", "grace"],
        ),
    ],
)
async def test_filter(ctx: Any, conditions: list[Any], mode: str, names: list[str]) -> None:
    out = await m.filter_items({"items": PEOPLE, "conditions": conditions, "mode": mode}, ctx)
    assert [p["name"] for p in out["items"]] == names
    assert out["rejected"] == 3 - len(names)


async def test_filter_invert_and_type_mismatch(ctx: Any) -> None:
    out = await m.filter_items(
        {
            "items": PEOPLE,
            "conditions": [{"field": "age", "op": "gt", "value": "x"}],
            "invert": True,
        },
        ctx,
    )
    assert out["count"] == 3  # comparing int with str is simply false


async def test_filter_catastrophic_regex_times_out(
    ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safe_regex, "REGEX_TIMEOUT_SECONDS", 0.2)
    items = [{"s": "a" * 60 + "b"}]
    with pytest.raises(ConnectorError, match="longer than"):
        await m.filter_items(
            {"items": items, "conditions": [{"field": "s", "op": "matches", "value": "^(a|aa)+$"}]},
            ctx,
        )


async def test_sort(ctx: Any) -> None:
    out = await m.sort_items({"items": PEOPLE, "by": [{"field": "age", "order": "desc"}]}, ctx)
    assert [p["name"] for p in out["items"]] == ["ada", "Linus", "grace"]  # nulls last
    out = await m.sort_items(
        {"items": PEOPLE, "by": [{"field": "name", "case_insensitive": True}]}, ctx
    )
    assert [p["name"] for p in out["items"]] == ["ada", "grace", "Linus"]
    multi = await m.sort_items(
        {"items": PEOPLE, "by": [{"field": "team.id"}, {"field": "name", "order": "desc"}]}, ctx
    )
    assert [p["name"] for p in multi["items"]] == ["grace", "ada", "Linus"]
    assert (await m.sort_items({"items": [3, "a", 1, None]}, ctx))["items"] == [1, 3, "a", None]


async def test_group_dedupe(ctx: Any) -> None:
    out = await m.group_by({"items": PEOPLE, "field": "team.id"}, ctx)
    assert [(g["key"], g["count"]) for g in out["groups"]] == [(1, 2), (2, 1)]
    assert set(out["by_key"]) == {"1", "2"}
    items = [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}, {"id": 2, "v": "c"}]
    first = await m.dedupe({"items": items, "fields": ["id"]}, ctx)
    assert [i["v"] for i in first["items"]] == ["a", "c"] and first["removed"] == 1
    last = await m.dedupe({"items": items, "fields": ["id"], "keep": "last"}, ctx)
    assert [i["v"] for i in last["items"]] == ["b", "c"]
    whole = await m.dedupe({"items": [1, 1, "1", {"a": 1}, {"a": 1}]}, ctx)
    assert whole["items"] == [1, "1", {"a": 1}]


async def test_zip_chunk_slice_pluck_map(ctx: Any) -> None:
    zipped = await m.zip_lists({"lists": {"a": [1, 2, 3], "b": ["x", "y"]}}, ctx)
    assert zipped["items"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    filled = await m.zip_lists({"arrays": [[1, 2], [3]], "fill": True}, ctx)
    assert filled["items"] == [[1, 3], [2, None]]
    with pytest.raises(ConnectorError):
        await m.zip_lists({}, ctx)
    assert (await m.chunk({"items": [1, 2, 3], "size": 2}, ctx)) == {
        "chunks": [[1, 2], [3]],
        "count": 2,
    }
    assert (await m.slice_items({"items": [1, 2, 3, 4], "start": -3, "end": -1}, ctx))["items"] == [
        2,
        3,
    ]
    assert (await m.slice_items({"items": [1, 2], "reverse": True}, ctx))["items"] == [2, 1]
    plucked = await m.pluck({"items": [*PEOPLE, {}], "field": "team.id", "skip_missing": True}, ctx)
    assert plucked["values"] == [1, 2, 1]
    mapped = await m.to_map({"items": PEOPLE, "key": "name", "value": "age"}, ctx)
    assert mapped["value"] == {"ada": 36, "Linus": 21, "grace": None}


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("union", [1, 2, 3, 4]),
        ("intersection", [2, 3]),
        ("difference", [1]),
        ("symmetric_difference", [1, 4]),
    ],
)
async def test_set_ops(ctx: Any, op: str, expected: list[int]) -> None:
    out = await m.set_ops({"left": [1, 2, 2, 3], "right": [2, 3, 4], "op": op}, ctx)
    assert out["items"] == expected

"""Starting runs of a document validated before: the validation cache of RunService.start."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from engine_support import running

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.registry import Registry
from flowplane.engine.plan import ValidatedCache, plans, validated
from flowplane.errors import WorkflowInvalid
from flowplane.model.document import Workflow
from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.store.base import Store


def doc(**params: Any) -> dict[str, Any]:
    return {
        "name": "cached-doc",
        "nodes": [
            {"id": "a", "type": "test.count", "params": params},
            {"id": "b", "type": "test.count", "needs": ["a"]},
        ],
    }


def test_key_follows_the_content_and_the_namespace() -> None:
    document = doc(key="k")
    key = ValidatedCache.key(document, None)
    assert key is not None
    assert ValidatedCache.key(copy.deepcopy(document), None) == key
    assert ValidatedCache.key(document, "other") != key
    mutated = copy.deepcopy(document)
    mutated["nodes"][0]["params"]["key"] = "changed"
    assert ValidatedCache.key(mutated, None) != key
    # JSON would not tell these apart from plain values: they are never cached.
    assert ValidatedCache.key({**document, "tags": ("a",)}, None) is None
    assert ValidatedCache.key({**document, "extra": {1: "x"}}, None) is None
    # Key order is part of the document (params reach connectors in that order).
    reordered = doc(b=1, a=2)
    assert ValidatedCache.key(reordered, None) != ValidatedCache.key(doc(a=2, b=1), None)
    # 1, 1.0 and True are different documents.
    keys = {ValidatedCache.key({**document, "v": v}, None) for v in (1, 1.0, True)}
    assert len(keys) == 3


def test_cache_is_bounded() -> None:
    cache = ValidatedCache(size=2)
    registry = Registry()
    wf = Workflow.model_validate({"name": "one", "nodes": [{"id": "a", "type": "util.noop"}]})
    for name in ("k1", "k2", "k3"):
        cache.put(name.encode(), wf, wf.to_document(), registry)
    assert cache.get(b"k1", registry) is None
    assert cache.get(b"k3", registry) is not None
    assert cache.get(b"k3", Registry()) is None  # validated against another catalog


def test_cache_is_bounded_in_characters() -> None:
    registry = Registry()

    def workflow(note: str) -> Workflow:
        return Workflow.model_validate(
            {"name": "one", "nodes": [{"id": "a", "type": "util.noop", "params": {"n": note}}]}
        )

    cache = ValidatedCache(size=100, chars=1000)
    small = workflow("x")
    cache.put(b"s1", small, small.to_document(), registry)
    cache.put(b"s2", small, small.to_document(), registry)
    assert cache.get(b"s1", registry) is not None
    # Over a quarter of the bound: returned, not kept.
    large = workflow("y" * 300)
    entry = cache.put(b"big", large, large.to_document(), registry)
    assert entry.plan.node("a").params == {"n": "y" * 300}
    assert cache.get(b"big", registry) is None
    # Within a quarter, but together over the bound: the least recently used go.
    medium = workflow("z" * 120)
    for name in (b"m1", b"m2", b"m3", b"m4", b"m5"):
        cache.put(name, medium, medium.to_document(), registry)
    assert cache.get(b"s2", registry) is None
    assert cache.get(b"m5", registry) is not None


async def test_a_changed_document_is_validated_again(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        document = doc(key="k")
        first = await rt.runs.start(Caller.system(), document)
        key = ValidatedCache.key(document, None)
        assert key is not None and validated.get(key, rt.registry) is not None
        # The same content again: same plan object, its own copy of the document.
        second = await rt.runs.start(Caller.system(), copy.deepcopy(document))
        assert plans.get(second.run.id) is plans.get(first.run.id)
        assert second.run.document == first.run.document
        assert second.run.document is not first.run.document
        # The caller's document, changed after a valid start, is checked again.
        document["nodes"][0]["params"]["unknown"] = 1
        with pytest.raises(WorkflowInvalid):
            await rt.runs.start(Caller.system(), document)
        document["nodes"][0]["params"].pop("unknown")
        document["nodes"][1]["type"] = "test.nope"
        with pytest.raises(WorkflowInvalid):
            await rt.runs.start(Caller.system(), document)


async def test_a_handed_out_document_changed_does_not_change_the_cache(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        document = doc(key="k")
        first = await rt.runs.start(Caller.system(), document)
        first.run.document["nodes"][0]["params"]["key"] = "poisoned"
        first.run.document["nodes"].append({"id": "c", "type": "test.nope"})
        second = await rt.runs.start(Caller.system(), doc(key="k"))
        assert second.run.document["nodes"][0]["params"] == {"key": "k"}
        assert [n["id"] for n in second.run.document["nodes"]] == ["a", "b"]
        stored = await rt.runs.document(Caller.system(), second.run.id)
        assert stored == second.run.document


async def test_a_replaced_connector_means_validating_again(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        await rt.runs.start(Caller.system(), doc(key="k"))

        @connector(
            "test.count",
            description="A stricter test.count: no params at all.",
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        )
        async def strict(params: dict[str, Any], ctx: NodeContext) -> Any:
            return None

        rt.registry.register(strict, replace=True)
        with pytest.raises(WorkflowInvalid):
            await rt.runs.start(Caller.system(), doc(key="k"))
        # Another service over another catalog does not reuse this one's validation.
        other = RunService(store)
        with pytest.raises(WorkflowInvalid):
            await other.start(Caller.system(), doc(key="k"))


async def test_namespace_is_part_of_the_key(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        one = await rt.runs.start(Caller.system(), doc(key="k"), namespace="one")
        two = await rt.runs.start(Caller.system(), doc(key="k"), namespace="two")
        assert one.run.namespace == "one"
        assert two.run.namespace == "two"
        assert plans.get(two.run.id) is not plans.get(one.run.id)

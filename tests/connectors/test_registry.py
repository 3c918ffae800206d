"""The connector registry: lookups, suggestions, discovery, plugins and manifest hygiene."""

from __future__ import annotations

import importlib.metadata
import logging
import pkgutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flowplane.connectors.base import Manifest, NodeContext, connector
from flowplane.connectors.registry import (
    Registry,
    default_registry,
    load_builtins,
    load_entry_points,
    load_plugin_module,
    register,
)
from flowplane.errors import ConnectorNotFound

CORE_TYPES = [
    "util.log",
    "util.noop",
    "util.set",
    "util.fail",
    "data.transform",
    "data.template",
    "http.request",
    "wait.duration",
    "wait.until",
    "wait.signal",
    "control.approval",
    "flow.run",
]


def _make(type_: str) -> Any:
    @connector(type_, description=f"test connector {type_}")
    async def fn(params: dict[str, Any], ctx: NodeContext) -> Any:
        return {"type": type_}

    return fn


@pytest.fixture(scope="module")
def builtins() -> Registry:
    reg = Registry()
    load_builtins(reg)
    return reg


@pytest.fixture
def fresh_default() -> Iterator[None]:
    default_registry.cache_clear()
    yield
    default_registry.cache_clear()


# --- the Registry class ---------------------------------------------------------------------


def test_register_get_lookup_and_listing() -> None:
    reg = Registry()
    b, a = _make("acme.b"), _make("acme.a")
    reg.register(b)
    reg.register(a)
    reg.register(_make("other.c"))
    assert reg.get("acme.a") is a
    assert reg.lookup("acme.b") is b.manifest
    assert reg.lookup("acme.zzz") is None
    assert reg.types() == ["acme.a", "acme.b", "other.c"]
    assert [m.type for m in reg.manifests()] == ["acme.a", "acme.b", "other.c"]
    assert all(isinstance(m, Manifest) for m in reg.manifests())
    assert reg.categories() == {"acme": 2, "other": 1}
    assert "acme.a" in reg and "acme.x" not in reg
    assert len(reg) == 3
    assert list(reg) == reg.types()


def test_duplicate_type_needs_replace() -> None:
    reg = Registry()
    first, second = _make("acme.dup"), _make("acme.dup")
    reg.register(first)
    reg.register(first)  # the same object again is a no-op
    with pytest.raises(ValueError, match=r"acme\.dup"):
        reg.register(second)
    reg.register(second, replace=True)
    assert reg.get("acme.dup") is second


def test_register_rejects_non_connectors() -> None:
    reg = Registry()
    with pytest.raises(TypeError):
        reg.register(object())  # type: ignore[arg-type]


def test_unknown_type_suggests_close_matches(builtins: Registry) -> None:
    with pytest.raises(ConnectorNotFound) as info:
        builtins.get("util.lgo")
    assert "util.log" in str(info.value)
    assert info.value.extra["suggestions"][0] == "util.log"
    assert info.value.status == 404
    assert builtins.close_matches("http.reqest")[0] == "http.request"
    assert "util.log" in builtins.close_matches("log")
    assert builtins.close_matches("zzzzzzzz") == []


# --- discovery ------------------------------------------------------------------------------


def test_load_builtins_discovers_core_connectors(builtins: Registry) -> None:
    for type_ in CORE_TYPES:
        assert type_ in builtins, type_
    assert builtins.categories()["util"] >= 4


def test_load_builtins_skips_a_broken_module(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = pkgutil.iter_modules

    def fake_iter(path: Any) -> Iterator[pkgutil.ModuleInfo]:
        yield from real(path)
        yield pkgutil.ModuleInfo(None, "zz_missing_module", False)  # type: ignore[arg-type]

    monkeypatch.setattr(pkgutil, "iter_modules", fake_iter)
    reg = Registry()
    with caplog.at_level(logging.ERROR, logger="flowplane.connectors.registry"):
        added = load_builtins(reg)
    assert "util.log" in added
    assert "zz_missing_module" in caplog.text


def _write_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    name = f"fp_plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


PLUGIN = """
    from flowplane.connectors.base import connector

    @connector("acme.one", description="first")
    async def one(params, ctx):
        return 1

    @connector("acme.two", description="second")
    async def two(params, ctx):
        return 2

    alias = one
    BOTH = [one, two]
    NOT_A_CONNECTOR = 42
"""


def test_load_plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _write_plugin(tmp_path, monkeypatch, PLUGIN)
    reg = Registry()
    assert load_plugin_module(reg, name) == ["acme.one", "acme.two"]
    assert reg.types() == ["acme.one", "acme.two"]
    with pytest.raises(ModuleNotFoundError):
        load_plugin_module(reg, "fp_plugin_does_not_exist")
    empty = _write_plugin(tmp_path, monkeypatch, "X = 1\n")
    with pytest.raises(ValueError, match="no connectors"):
        load_plugin_module(reg, empty)


def test_load_entry_points_accepts_modules_connectors_and_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    name = _write_plugin(tmp_path, monkeypatch, PLUGIN)
    group = "flowplane.connectors"
    eps = [
        importlib.metadata.EntryPoint("mod", name, group),
        importlib.metadata.EntryPoint("single", f"{name}:one", group),
        importlib.metadata.EntryPoint("many", f"{name}:BOTH", group),
        importlib.metadata.EntryPoint("broken", "fp_plugin_missing_xyz:thing", group),
        importlib.metadata.EntryPoint("junk", f"{name}:NOT_A_CONNECTOR", group),
    ]

    def fake_entry_points(**kwargs: Any) -> list[importlib.metadata.EntryPoint]:
        assert kwargs == {"group": group}
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    reg = Registry()
    reg.register(_make("acme.two"))  # a clash: the plugin's acme.two is skipped, not fatal
    with caplog.at_level(logging.ERROR, logger="flowplane.connectors.registry"):
        added = load_entry_points(reg)
    assert added == ["acme.one"]
    assert reg.types() == ["acme.one", "acme.two"]
    assert "broken" in caplog.text
    assert "not a connector" in caplog.text
    assert "clashes" in caplog.text


def test_default_registry_is_cached_and_register_adds_to_it(fresh_default: None) -> None:
    reg = default_registry()
    assert default_registry() is reg
    assert "util.log" in reg

    @register
    @connector("acme.decorated", description="registered by decorator")
    async def decorated(params: dict[str, Any], ctx: NodeContext) -> Any:
        return None

    assert reg.get("acme.decorated") is decorated
    with pytest.raises(ValueError):
        register(_make("acme.decorated"))
    register(_make("acme.decorated"), replace=True)


# --- manifest hygiene -------------------------------------------------------------------------


def _all_builtin_types() -> list[str]:
    reg = Registry()
    load_builtins(reg)
    return reg.types()


@pytest.mark.parametrize("type_", _all_builtin_types())
def test_builtin_manifest_is_valid(builtins: Registry, type_: str) -> None:
    manifest = builtins.get(type_).manifest
    assert manifest.type == type_
    assert manifest.name and manifest.category and manifest.description
    assert manifest.kind in ("action", "transform", "control", "wait", "trigger")
    jsonschema.Draft202012Validator.check_schema(manifest.input_schema)
    jsonschema.Draft202012Validator.check_schema(manifest.output_schema)
    assert manifest.input_schema.get("type") == "object"
    validator = jsonschema.Draft202012Validator(manifest.input_schema)
    assert manifest.examples, f"{type_} has no examples"
    for example in manifest.examples:
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, f"{type_} example {example} is invalid: {errors}"
    wire = manifest.to_dict()
    assert set(wire) >= {"type", "name", "category", "description", "inputSchema", "outputSchema"}


@pytest.mark.parametrize("type_", CORE_TYPES)
def test_core_manifest_is_complete(builtins: Registry, type_: str) -> None:
    manifest = builtins.get(type_).manifest
    schema = manifest.input_schema
    if type_ == "util.noop":
        assert schema["additionalProperties"] is True
    else:
        assert schema["additionalProperties"] is False
    for prop, sub in schema["properties"].items():
        assert sub.get("description"), f"{type_}.{prop} has no description"
    output = manifest.output_schema
    assert output.get("properties") or output.get("description"), type_
    for required in schema.get("required", []):
        assert required in schema["properties"]


def test_template_param_is_marked_raw(builtins: Registry) -> None:
    schema = builtins.get("data.template").manifest.input_schema
    assert schema["properties"]["template"]["x-raw"] is True


def test_schemas_reject_bad_params(builtins: Registry) -> None:
    def valid(type_: str, params: dict[str, Any]) -> bool:
        schema = builtins.get(type_).manifest.input_schema
        return jsonschema.Draft202012Validator(schema).is_valid(params)

    assert not valid("util.log", {"message": "x", "colour": "red"})
    assert not valid("util.log", {})
    assert valid("util.noop", {"anything": [1, 2]})
    assert not valid("http.request", {"url": "http://x", "json": {}, "body": "x"})
    assert valid("http.request", {"url": "http://x", "expect_status": "2xx"})
    assert valid("http.request", {"url": "http://x", "expect_status": [200, "3xx"]})
    assert not valid("http.request", {"url": "http://x", "expect_status": "2xy"})
    assert not valid("flow.run", {"workflow": "a", "path": "b.yaml"})
    assert not valid("flow.run", {"input": {}})
    assert valid("wait.duration", {"duration": "1.5s"})
    assert not valid("wait.duration", {"duration": "soon"})
    assert not valid("control.approval", {"title": "ok?", "on_deny": "maybe"})

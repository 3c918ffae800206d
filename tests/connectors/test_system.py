"""system: shell (argv only, opt-in, sandboxed, bounded) and registered Python functions."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.base import NodeContext
from flowplane.connectors.builtin import system_python, system_shell
from flowplane.errors import ConnectorError

PY = sys.executable


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    context = make_ctx(tmp_path, enable_shell=True, credentials={"API": "tok-sekret-987"})
    (tmp_path / "files" / "default" / "work").mkdir(parents=True)
    return context


def test_manifests() -> None:
    assert_manifests(system_shell, minimum=1)
    assert_manifests(system_python, minimum=1)


async def test_shell_disabled_by_default(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="disabled") as err:
        await system_shell.shell({"command": ["echo", "hi"]}, make_ctx(tmp_path))
    assert not err.value.retryable


@pytest.mark.parametrize("payload", ["$(id)", "; rm -rf /", "`id`", "a && echo pwned", "*"])
async def test_shell_arguments_stay_data(ctx: Any, payload: str) -> None:
    out = await system_shell.shell({"command": ["echo", payload]}, ctx)
    assert out["stdout"] == payload + "\n" and out["exit_code"] == 0


async def test_shell_cwd_env_stdin(ctx: Any, tmp_path: Path) -> None:
    out = await system_shell.shell({"command": ["pwd"], "cwd": "work"}, ctx)
    assert out["stdout"].strip() == str((tmp_path / "files" / "default" / "work").resolve())
    code = (
        "import os,sys; print(os.environ.get('GREETING'), os.environ.get('TOKEN'), "
        "os.environ.get('HOME'), sys.stdin.read())"
    )
    out = await system_shell.shell(
        {
            "command": [PY, "-c", code],
            "env": {"GREETING": "hi"},
            "env_credentials": {"TOKEN": "API"},
            "stdin": "in",
        },
        ctx,
    )
    assert out["stdout"] == "hi *** None in\n"  # secrets are redacted, HOME is not inherited
    with pytest.raises(ConnectorError, match="not allowed"):
        await system_shell.shell({"command": ["true"], "env": {"LD_PRELOAD": "/x.so"}}, ctx)
    for cwd in ("../..", "/tmp"):
        with pytest.raises(ConnectorError):
            await system_shell.shell({"command": ["pwd"], "cwd": cwd}, ctx)
    with pytest.raises(ConnectorError, match="does not exist"):
        await system_shell.shell({"command": ["pwd"], "cwd": "nope"}, ctx)


async def test_shell_exit_codes_and_limits(ctx: Any) -> None:
    with pytest.raises(ConnectorError, match="code 3") as err:
        await system_shell.shell(
            {"command": [PY, "-c", "import sys; sys.stderr.write('bad'); sys.exit(3)"]}, ctx
        )
    assert err.value.extra["exit_code"] == 3 and "bad" in err.value.detail
    soft = await system_shell.shell({"command": ["false"], "check": False}, ctx)
    assert soft["exit_code"] == 1
    big = await system_shell.shell(
        {"command": [PY, "-c", "print('x' * 100000)"], "max_output_bytes": 1000}, ctx
    )
    assert len(big["stdout"]) == 1000 and big["truncated"]
    with pytest.raises(ConnectorError, match="not found"):
        await system_shell.shell({"command": ["definitely-not-a-program-xyz"]}, ctx)


async def test_shell_timeout_kills_process_group(ctx: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="killed"):
        await system_shell.shell(
            {"command": ["sh", "-c", "sleep 30 & sleep 30"], "timeout": 0.3}, ctx
        )
    assert time.monotonic() - started < 5


# --- system.python ---------------------------------------------------------------------------


def add(a: int, b: int = 1) -> int:
    return a + b


async def slow_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def with_ctx(ctx: NodeContext, x: str) -> dict[str, Any]:
    return {"run": ctx.run_id, "x": x}


def boom() -> None:
    raise RuntimeError("kaput")


def not_json() -> object:
    return object()


@pytest.fixture
def registered() -> Any:
    for name, fn in (
        ("add", add),
        ("slow", slow_async),
        ("with_ctx", with_ctx),
        ("boom", boom),
        ("not_json", not_json),
    ):
        system_python.register_function(name, fn)
    yield
    for name in ("add", "slow", "with_ctx", "boom", "not_json", "from_env"):
        system_python.unregister_function(name)


async def test_python_functions(ctx: Any, registered: Any) -> None:
    assert (
        await system_python.python_call({"function": "add", "kwargs": {"a": 2, "b": 3}}, ctx)
    ) == {"result": 5}
    assert (
        await system_python.python_call({"function": "slow", "kwargs": {"seconds": 0}}, ctx)
    ) == {"result": "done"}
    assert (
        await system_python.python_call({"function": "with_ctx", "kwargs": {"x": "$(id)"}}, ctx)
    ) == {"result": {"run": "r1", "x": "$(id)"}}
    with pytest.raises(ConnectorError, match="bad arguments"):
        await system_python.python_call({"function": "add", "kwargs": {"c": 1}}, ctx)
    with pytest.raises(ConnectorError, match="RuntimeError: kaput"):
        await system_python.python_call({"function": "boom"}, ctx)
    with pytest.raises(ConnectorError, match="not JSON"):
        await system_python.python_call({"function": "not_json"}, ctx)
    with pytest.raises(ConnectorError, match="longer than") as err:
        await system_python.python_call(
            {"function": "slow", "kwargs": {"seconds": 5}, "timeout": 0.1}, ctx
        )
    assert err.value.retryable
    with pytest.raises(ConnectorError, match="not registered"):
        await system_python.python_call({"function": "os.system", "kwargs": {"command": "id"}}, ctx)


async def test_python_functions_from_env(
    ctx: Any, registered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(system_python.FUNCTIONS_ENV, "from_env=json:dumps, broken=nope.module:fn")
    out = await system_python.python_call({"function": "from_env", "kwargs": {"obj": [1]}}, ctx)
    assert out == {"result": "[1]"}
    with pytest.raises(ConnectorError, match="cannot be loaded"):
        await system_python.python_call({"function": "broken"}, ctx)
    with pytest.raises(ValueError):
        system_python.register_function("bad name!", add)

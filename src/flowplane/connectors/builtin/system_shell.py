"""``system.shell``: run a program (opt-in, operator-enabled).

``system.shell`` runs an argv list directly (no shell, so data cannot become commands),
inside the namespace's file folder, with a timeout, capped output and an environment built
from an allow-list. It is refused unless the operator sets ``FLOWPLANE_ENABLE_SHELL=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._sandbox import sandbox_path
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.connectors.builtin._settings import settings_value
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

MAX_OUTPUT_BYTES = 10 * 1024 * 1024
DEFAULT_OUTPUT_BYTES = 1024 * 1024
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_FORBIDDEN_ENV = re.compile(r"^(LD_|DYLD_|PYTHON|BASH_ENV$|ENV$|IFS$|PATH$)")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


async def _drain(stream: asyncio.StreamReader | None, limit: int) -> tuple[bytes, bool]:
    """Read ``stream`` to its end, keeping at most ``limit`` bytes."""
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _environment(params: dict[str, Any], ctx: NodeContext) -> tuple[dict[str, str], list[str]]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    secrets: list[str] = []
    given = dict(params.get("env") or {})
    for name, cred in (params.get("env_credentials") or {}).items():
        given[name] = credential(ctx, cred)
        secrets.append(given[name])
    for name, value in given.items():
        if not _ENV_NAME.match(name) or _FORBIDDEN_ENV.match(name):
            raise _bad(f"environment variable {name!r} is not allowed")
        env[name] = str(value)
    env.update(
        {
            "FLOWPLANE_RUN_ID": ctx.run_id,
            "FLOWPLANE_NODE_ID": ctx.node_id,
            "FLOWPLANE_IDEMPOTENCY_KEY": ctx.idempotency_key,
        }
    )
    return env, secrets


@connector(
    "system.shell",
    name="Run command",
    category="system",
    description="Run a program with an argv list (no shell) in the namespace folder; opt-in only.",
    input_schema=obj(
        {
            "command": prop(
                "array",
                "Program and arguments, e.g. ['convert', 'in.png', "
                "'out.jpg']; each argument is passed verbatim.",
                items={"type": "string", "maxLength": 100_000},
                minItems=1,
                maxItems=1000,
            ),
            "cwd": prop(
                "string",
                "Working folder inside the namespace's file folder.",
                default="",
                maxLength=1024,
            ),
            "env": prop(
                "object", "Extra environment variables.", additionalProperties={"type": "string"}
            ),
            "env_credentials": prop(
                "object",
                "Environment variables filled from credentials: {VAR: credential name}.",
                additionalProperties={"type": "string"},
            ),
            "stdin": prop("string", "Text sent to standard input.", maxLength=10_000_000),
            "timeout": prop(
                "number",
                "Seconds before the process group is killed.",
                exclusiveMinimum=0,
                maximum=3600,
                default=60,
            ),
            "max_output_bytes": prop(
                "integer",
                "Bytes kept of stdout and of stderr.",
                minimum=1,
                maximum=MAX_OUTPUT_BYTES,
                default=DEFAULT_OUTPUT_BYTES,
            ),
            "check": prop("boolean", "Fail the node on a non-zero exit code.", default=True),
        },
        ["command"],
    ),
    output_schema=out(
        {
            "exit_code": prop("integer", "Exit status."),
            "stdout": prop("string", "Standard output (UTF-8, capped)."),
            "stderr": prop("string", "Standard error (UTF-8, capped)."),
            "truncated": prop("boolean", "Whether output was cut."),
            "elapsed_ms": prop("integer", "Run time."),
        }
    ),
    secrets=["env_credentials"],
    examples=[
        {"command": ["ls", "-la"], "cwd": "exports"},
        {"command": ["gzip", "-k", "report.csv"], "timeout": 120, "check": True},
    ],
)
async def shell(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Run ``command`` (an argv list) when the operator enabled the shell connector."""
    if not settings_value(ctx, "enable_shell", False):
        raise _bad("system.shell is disabled; the operator must set FLOWPLANE_ENABLE_SHELL=true")
    argv = [str(a) for a in params["command"]]
    if any("\x00" in a for a in argv):
        raise _bad("arguments must not contain NUL characters")
    cwd = sandbox_path(ctx, params.get("cwd", ""), allow_root=True)
    if not cwd.is_dir():
        raise _bad("cwd does not exist in the file folder")
    env, secrets = _environment(params, ctx)
    limit, timeout = (
        params.get("max_output_bytes", DEFAULT_OUTPUT_BYTES),
        float(params.get("timeout", 60)),
    )
    stdin = params.get("stdin")
    started = time.monotonic()
    ctx.check_cancelled()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            start_new_session=True,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise _bad(f"program {argv[0]!r} not found") from None
    except PermissionError:
        raise _bad(f"program {argv[0]!r} is not executable") from None
    except OSError as exc:
        raise _bad(f"cannot start {argv[0]!r}: {exc.strerror}") from None

    async def feed() -> None:
        if process.stdin is not None and stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(stdin.encode())
                await process.stdin.drain()
            process.stdin.close()

    try:
        async with asyncio.timeout(timeout):
            _, (out_b, out_cut), (err_b, err_cut), code = await asyncio.gather(
                feed(), _drain(process.stdout, limit), _drain(process.stderr, limit), process.wait()
            )
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        raise ConnectorError(
            f"{argv[0]!r} ran longer than {timeout:g}s and was killed", retryable=False
        ) from None
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        if process.returncode is None:
            _kill_group(process)
    stdout = mask_values(out_b.decode("utf-8", errors="replace"), secrets)
    stderr = mask_values(err_b.decode("utf-8", errors="replace"), secrets)
    if code != 0 and params.get("check", True):
        raise ConnectorError(
            f"{argv[0]!r} exited with code {code}: {stderr[-500:]}", retryable=False, exit_code=code
        )
    return {
        "exit_code": code,
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_cut or err_cut,
        "elapsed_ms": round((time.monotonic() - started) * 1000),
    }

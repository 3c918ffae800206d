"""The committed web UI bundle (``src/flowplane/ui/static``) is what its sources build to.

A pip-installed server serves the committed files and needs no Node.js; this test keeps them
honest: it rebuilds ``ui/`` with the locked toolchain (``npm ci`` from package-lock.json when
``ui/node_modules`` is missing) into a temporary folder, and compares every file byte for
byte (esbuild's output is deterministic). After changing ``ui/src``, run ``make ui``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
STATIC = ROOT / "src" / "flowplane" / "ui" / "static"


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "Node.js and npm are needed to rebuild the UI (apt-get install nodejs npm)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node, npm


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_the_committed_bundle_matches_its_sources(tmp_path: Path) -> None:
    node, npm = _tools()
    if not (UI / "node_modules" / ".package-lock.json").exists():
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=UI,
            check=True,
            capture_output=True,
        )
    out = tmp_path / "static"
    built = subprocess.run(
        [node, "build.mjs", str(out)], cwd=UI, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    fresh, committed = _files(out), _files(STATIC)
    assert sorted(fresh) == sorted(committed), "files differ: run `make ui` and commit"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from a fresh build: run `make ui` and commit"


def test_the_wheel_ships_the_built_ui(tmp_path: Path) -> None:
    """``pip install flowplane[server]`` brings the UI: the wheel holds every built file."""
    # Without setuptools in this environment, pip builds in an isolated one (from PyPI).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q"]
    subprocess.run(
        [*command, "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("flowplane-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            name.removeprefix("flowplane/ui/static/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("flowplane/ui/static/")
        }
    assert shipped == _files(STATIC)

"""The layers of docs/architecture.md are enforced: ``lint-imports`` fails on a violation.

``make lint`` runs the same contracts on the real tree; this test proves they bite, by
adding one forbidden import (the API reading the store) to a copy of the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("api/_violation.py", "import flowplane.store.tx\n", "The API reaches data only"),
        ("store/_violation.py", "import flowplane.engine.plan\n", "Layers"),
        ("client/_violation.py", "import flowplane.settings\n", "The client installs"),
    ],
)
def test_a_deliberate_violation_fails(tree: Path, module: str, source: str, contract: str) -> None:
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (tree / "src" / "flowplane" / module).write_text(source)
    broken = _lint(tree)
    assert broken.returncode != 0
    assert contract in broken.stdout
    assert "BROKEN" in broken.stdout

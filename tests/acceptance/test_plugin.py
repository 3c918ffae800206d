"""examples/plugin installs as a real package and its connector runs in a workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_plugin_installs_and_runs(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "examples" / "plugin"),
        ],
        check=True,
        capture_output=True,
    )
    workflow = tmp_path / "greet.yaml"
    workflow.write_text(
        "name: plugin-demo\n"
        "nodes:\n"
        "  - id: hello\n"
        "    type: example.greet\n"
        '    params: {name: "{{ input.who }}", language: fr}\n'
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
        "FLOWPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'fp.db'}",
    }
    listed = subprocess.run(
        [sys.executable, "-m", "flowplane", "connectors", "show", "example.greet"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert json.loads(listed.stdout)["category"] == "example"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowplane",
            "run",
            str(workflow),
            "--input",
            '{"who": "Ada"}',
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert "Bonjour, Ada!" in ran.stdout

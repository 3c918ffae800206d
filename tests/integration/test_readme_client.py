"""The Python client example in the README runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

from runs_support import ADMIN, served

ROOT = Path(__file__).resolve().parents[2]


def readme_client_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(b for b in blocks if "from flowplane.client import Client" in b)


def test_readme_client_example_runs(tmp_path: Path) -> None:
    code = readme_client_example()
    db = (f"sqlite:///{tmp_path / 'fp.db'}", "flowplane")
    with served(db, tmp_path) as (url, keys):
        code = code.replace('"http://127.0.0.1:8080"', repr(url))
        code = code.replace('token="fp_..."', f"token={keys[ADMIN]!r}")
        code = code.replace(
            '"examples/approval_gate.yaml"', repr(str(ROOT / "examples" / "approval_gate.yaml"))
        )
        printed: list[str] = []
        exec(
            compile(code, "README.md", "exec"),
            {"print": lambda *a: printed.append(" ".join(map(str, a)))},
        )
    assert printed == ["finished"]

"""Generate docs/connectors/ from the built-in connector manifests.

``python scripts/gen_connector_docs.py`` writes the files; ``--check`` exits 1 when they
are out of date (run by the test suite).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flowplane.connectors.base import Manifest
from flowplane.connectors.registry import Registry, load_builtins

OUT = Path(__file__).resolve().parents[1] / "docs" / "connectors"


def _schema_rows(schema: dict[str, object]) -> list[str]:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])  # type: ignore[call-overload]
    rows = ["| param | type | required | description |", "|---|---|---|---|"]
    assert isinstance(props, dict)
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        if isinstance(kind, list):
            kind = " \\| ".join(str(k) for k in kind)
        description = str(spec.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {kind} | {'yes' if name in required else ''} | {description} |")
    return rows if props else ["(no parameters)"]


def render(manifest: Manifest) -> str:
    """Return the Markdown section of one connector."""
    parts = [
        f"## `{manifest.type}` — {manifest.name}",
        "",
        manifest.description,
        "",
        f"Kind: `{manifest.kind}`."
        + (
            f" Secrets: {', '.join(f'`{s}`' for s in manifest.secrets)}."
            if manifest.secrets
            else ""
        ),
        "",
        *_schema_rows(manifest.input_schema),
        "",
    ]
    for example in manifest.examples[:1]:
        parts += ["Example params:", "", "```json", json.dumps(example, indent=2), "```", ""]
    return "\n".join(parts)


def generate() -> dict[str, str]:
    """Return ``{file name: content}`` for every category plus the index."""
    registry = Registry()
    load_builtins(registry)
    by_category: dict[str, list[Manifest]] = {}
    for manifest in registry.manifests():
        by_category.setdefault(manifest.category, []).append(manifest)
    files: dict[str, str] = {}
    index = [
        "# Connector reference",
        "",
        "Generated from the manifests by `scripts/gen_connector_docs.py`; do not edit.",
        f"{len(registry)} built-in connectors.",
        "",
        "| category | connectors |",
        "|---|---|",
    ]
    for category in sorted(by_category):
        manifests = sorted(by_category[category], key=lambda m: m.type)
        index.append(f"| [{category}]({category}.md) | {len(manifests)} |")
        body = [f"# `{category}` connectors", ""] + [render(m) for m in manifests]
        files[f"{category}.md"] = "\n".join(body).rstrip() + "\n"
    files["README.md"] = "\n".join(index) + "\n"
    return files


def main(argv: list[str]) -> int:
    """Write or check the reference."""
    files = generate()
    if "--check" in argv:
        existing = {p.name: p.read_text() for p in OUT.glob("*.md")} if OUT.exists() else {}
        if existing != files:
            stale = sorted(
                set(existing) ^ set(files) | {k for k in files if existing.get(k) != files[k]}
            )
            print(
                f"docs/connectors is out of date ({', '.join(stale)}); run make docs",
                file=sys.stderr,
            )
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.md"):
        if old.name not in files:
            old.unlink()
    for name, content in files.items():
        (OUT / name).write_text(content)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

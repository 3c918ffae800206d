"""docs/connectors/ is generated from the manifests and kept up to date."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flowplane.connectors.registry import Registry, load_builtins
from flowplane.services.caller import Caller
from flowplane.services.catalog import ConnectorCatalog

ROOT = Path(__file__).resolve().parents[2]

VIEWER = Caller(id="test", kind="api_key", name="test", role="viewer")


def test_generated_reference_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_connector_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_catalog_is_broad_and_its_summary_fits_a_prompt() -> None:
    registry = Registry()
    load_builtins(registry)
    assert len(registry) >= 85
    summary = json.dumps(
        [m.summary() for m in ConnectorCatalog(registry).search(VIEWER)], separators=(",", ":")
    )
    # About 4 characters a token: the whole catalogue summary stays under ~6k tokens.
    assert len(summary) < 24_000, len(summary)


def test_search_matches_every_word() -> None:
    registry = Registry()
    load_builtins(registry)
    found = {m.type for m in ConnectorCatalog(registry).search(VIEWER, q="csv parse")}
    assert "data.csv_parse" in found
    assert all(
        m.category == "http" for m in ConnectorCatalog(registry).search(VIEWER, category="http")
    )

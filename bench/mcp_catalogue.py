"""How many LLM tokens the MCP connector catalogue costs an agent's context.

Run ``python bench/mcp_catalogue.py``. It measures, with the OpenAI BPE encodings
(``o200k_base``: GPT-4o and later; ``cl100k_base``: GPT-4) of ``bpe-openai`` (a dev
dependency; its vocabularies are built in, no download), the text an agent reads:

* ``search_connectors`` with ``detail=summary``: the compact catalogue (the JSON text of
  the tool's answer, as the MCP server sends it);
* the same with ``detail=full`` (every params and output schema), for comparison;
* the tool list (names, descriptions and input schemas) that an MCP client puts in context.

The numbers are quoted in ``docs/mcp.md``; they change when connectors are added.
"""

from __future__ import annotations

import asyncio
import json

import bpe_openai

from flowplane.connectors.registry import default_registry
from flowplane.mcp import build_server
from flowplane.mcp.tools import tool_result
from flowplane.services.caller import Caller
from flowplane.services.catalog import ConnectorCatalog

ENCODINGS = ("o200k_base", "cl100k_base")


def _text(detail: str) -> str:
    catalog = ConnectorCatalog(default_registry())
    manifests = catalog.search(Caller.system("bench"))
    items = [m.summary() if detail == "summary" else m.to_dict() for m in manifests]
    content = tool_result(items).content[0]
    return str(getattr(content, "text", ""))


def _tool_list() -> str:
    tools = asyncio.run(build_server(lambda _ctx: None).list_tools())  # type: ignore[arg-type,return-value]
    return json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])


def main() -> None:
    """Print the size of each text in characters and in tokens of each encoding."""
    encodings = {name: bpe_openai.get_encoding(name) for name in ENCODINGS}
    count = len(ConnectorCatalog(default_registry()).search(Caller.system("bench")))
    texts = {
        f"catalogue, summary ({count} connectors)": _text("summary"),
        f"catalogue, full ({count} connectors)": _text("full"),
        "tool list (tools/list)": _tool_list(),
    }
    print(f"{'text':40} {'chars':>8} " + " ".join(f"{n:>12}" for n in ENCODINGS))
    for label, text in texts.items():
        tokens = " ".join(f"{len(e.encode(text)):>12}" for e in encodings.values())
        print(f"{label:40} {len(text):>8} {tokens}")


if __name__ == "__main__":
    main()

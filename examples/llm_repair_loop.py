"""An LLM repair loop over EditOps, end to end through the Python client.

A scripted "LLM" extends a workflow with a batch of edit operations that contains mistakes
(a misspelled connector type, an edge to a node that does not exist). The server applies
what it can and returns every bad op in ``skipped_items`` with a machine-readable reason;
the "LLM" reads them, fixes its batch (taking the close match the server suggests), applies
it again, and runs the repaired workflow.

Run it against a server::

    flowplane serve &            # prints an admin key on first start
    python examples/llm_repair_loop.py --server http://127.0.0.1:8080 --token fp_...

(``FLOWPLANE_URL`` and ``FLOWPLANE_TOKEN`` work too.) Swap :class:`ScriptedLLM` for a real
model: its two methods receive exactly what a model would see.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flowplane.client import Client, PatchResult, RunDetail, WorkflowExists

WORKFLOW_NAME = "llm-repair-demo"
BASE_WORKFLOW: dict[str, Any] = {
    "name": WORKFLOW_NAME,
    "description": "Fetch a customer, greet them, shout the greeting.",
    "inputs": {"type": "object", "properties": {"name": {"type": "string"}}},
    "nodes": [
        {"id": "fetch", "type": "util.set", "params": {"value": {"name": "{{ input.name }}"}}},
    ],
}


class ScriptedLLM:
    """Stands in for a model: proposes a batch, then repairs it from the server's feedback."""

    def propose(self, workflow: dict[str, Any]) -> list[dict[str, Any]]:
        """The first attempt, with two mistakes a model typically makes."""
        return [
            {
                "op": "add",
                "node_id": "greet",
                "type": "util.lgo",  # misspelled: util.log
                "params": {"message": "hello {{ nodes.fetch.output.name }}"},
                "needs": ["fetch"],
            },
            {"op": "connect", "node_id": "fetch", "target_node_id": "notify"},  # no such node
            {
                "op": "add",
                "node_id": "shout",
                "type": "util.set",
                "params": {"value": "{{ nodes.greet.output.message | upper }}"},
                "needs": ["greet"],
            },
        ]

    def repair(self, ops: list[dict[str, Any]], result: PatchResult) -> list[dict[str, Any]]:
        """Fix the skipped ops: use the suggested type, drop edges to missing nodes."""
        skipped = {item.index: item for item in result.skipped_items}
        fixed: list[dict[str, Any]] = []
        for index, op in enumerate(ops):
            item = skipped.get(index)
            if item is None:
                continue  # already applied
            details = item.details or {}
            if item.reason_code == "node_type_not_registered" and details.get("close_matches"):
                fixed.append({**op, "type": details["close_matches"][0]})
            elif item.reason_code in ("invalid_edge_target", "node_not_found") and (
                op["op"] == "connect"
            ):
                continue  # the target does not exist: leave the edge out
            else:
                fixed.append(op)  # skipped only because an earlier op was: try again
        return fixed


def reset_workflow(client: Client) -> str:
    """Store the base workflow (or reset it to the base document); return its id."""
    try:
        return client.create_workflow(BASE_WORKFLOW).id
    except WorkflowExists:
        current = client.get_workflow(WORKFLOW_NAME)
        return client.update_workflow(current.id, BASE_WORKFLOW, if_match=current.version).id


def report(label: str, result: PatchResult) -> None:
    """Print what the server said about a batch."""
    print(f"[{label}] ok={result.ok} version={result.version}: {result.summary}")
    for item in result.skipped_items:
        print(f"  skipped #{item.index} ({item.reason_code}): {item.reason}")
    for issue in result.validation_errors:
        print(f"  invalid {issue.node_id}.{issue.field}: {issue.error}")


def repair_loop(client: Client, name: str = "Ada", max_rounds: int = 3) -> RunDetail:
    """Propose, read the skips, repair until the workflow is valid; run it and wait."""
    llm = ScriptedLLM()
    workflow_id = reset_workflow(client)
    current = client.get_workflow(workflow_id)
    ops = llm.propose(current.document)
    version = current.version
    for round_no in range(1, max_rounds + 1):
        result = client.patch_workflow(workflow_id, ops, if_match=version)
        report(f"round {round_no}", result)
        version = result.version or version
        if result.ok:
            break
        ops = llm.repair(ops, result)
        if not ops:
            raise RuntimeError("the LLM gave up with ops still failing")
    else:
        raise RuntimeError(f"no valid workflow after {max_rounds} rounds")
    run = client.run_workflow(workflow_id, input={"name": name})
    print(f"started run {run.run_id}")
    done = client.wait(run.run_id, timeout=60)
    print(f"run {done.run_id} {done.status}: shout = {json.dumps(done.node('shout').output)}")
    return done


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", help="Server URL (default FLOWPLANE_URL).")
    parser.add_argument("--token", help="API key (default FLOWPLANE_TOKEN).")
    parser.add_argument("--name", default="Ada", help="Who to greet.")
    args = parser.parse_args(argv)
    with Client(args.server, token=args.token) as client:
        done = repair_loop(client, args.name)
    return 0 if done.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())

// Smithers' published Gateway client (@smithers-orchestrator/gateway-client, from the npm
// registry, unchanged) driving a `flowplane serve`. Run by
// tests/acceptance/test_smithers_gateway_client.py as
//   GATEWAY_URL=http://127.0.0.1:PORT GATEWAY_TOKEN=fp_... GATEWAY_EXECUTOR=fp_... \
//     node_modules/.bin/tsx drive.mjs
// The package ships TypeScript sources only, so it runs under `tsx`; Node 20 has no global
// WebSocket, so the `ws` package's is handed to the client (its documented `WebSocket`
// option). The stored workflows `basic`, `approval` and `github-wait` must exist.
// Prints one JSON report line; any failed assertion exits non-zero.

import assert from "node:assert/strict";
import { SmithersGatewayClient } from "@smithers-orchestrator/gateway-client/SmithersGatewayClient";
import { GatewayRpcError } from "@smithers-orchestrator/gateway-client/GatewayRpcError";
import WebSocket from "ws";

const baseUrl = process.env.GATEWAY_URL;
const token = process.env.GATEWAY_TOKEN;
const executorToken = process.env.GATEWAY_EXECUTOR;
const viewerToken = process.env.GATEWAY_VIEWER;
const report = {};

function client(key) {
  return new SmithersGatewayClient({
    baseUrl,
    token: key,
    WebSocket,
    client: { id: "flowplane-acceptance", version: "1.0.0", platform: "node" },
  });
}

async function until(read, accept, what) {
  for (let i = 0; i < 600; i += 1) {
    const value = await read();
    if (accept(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const operator = client(token);
try {
  // --- HTTP RPC: POST /v1/rpc/<method>, the client's rpc() ------------------------------
  const launched = await operator.launchRun({ workflow: "basic", input: { value: 3 } });
  assert.equal(typeof launched.runId, "string");
  assert.equal(launched.workflow, "basic");
  const finished = await until(
    () => operator.getRun({ runId: launched.runId }),
    (run) => run.status === "finished",
    "the launched run to finish",
  );
  assert.equal(finished.workflowKey, "basic");
  const runs = await operator.listRuns({ filter: { limit: 10 } });
  assert.ok(Array.isArray(runs) && runs.some((run) => run.runId === launched.runId));
  report.http = { runId: launched.runId, status: finished.status, listed: runs.length };

  const missing = await operator.getRun({ runId: "no-such-run" }).catch((error) => error);
  assert.ok(missing instanceof GatewayRpcError, String(missing));
  report.notFound = { code: missing.code, status: missing.status };

  // --- WebSocket: connect() (challenge, connect, hello), requests, events --------------
  const connection = await operator.connect();
  const health = await connection.requestRaw("health", {});
  assert.equal(health.protocol, 1);
  const created = await connection.requestRaw("runs.create", {
    workflow: "basic",
    input: { value: 4 },
  });
  const names = [];
  for await (const frame of connection.events()) {
    if (frame.payload?.runId !== created.runId) continue;
    names.push(frame.event);
    if (frame.event === "run.completed") {
      assert.equal(frame.payload.status, "finished");
      break;
    }
  }
  connection.close();
  report.ws = { runId: created.runId, events: names };

  // --- approvals: submitApproval over HTTP ---------------------------------------------
  const asking = await operator.launchRun({ workflow: "approval", input: {} });
  await until(
    () => operator.getRun({ runId: asking.runId }),
    (run) => run.status === "waiting-approval",
    "the approval run to wait",
  );
  const pending = await operator.rpcRaw("approvals.list", {});
  assert.ok(pending.some((a) => a.runId === asking.runId && a.nodeId === "pick-plan"));
  const approver = client(executorToken);
  const decided = await approver.submitApproval({
    runId: asking.runId,
    nodeId: "pick-plan",
    decision: { approved: true, note: "ship it" },
  });
  assert.equal(decided.approved, true);
  const approvedRun = await until(
    () => operator.getRun({ runId: asking.runId }),
    (run) => run.status === "finished",
    "the approved run to finish",
  );
  approver.close();
  report.approval = { runId: asking.runId, status: approvedRun.status };

  // --- a viewer cannot launch: FORBIDDEN -------------------------------------------------
  const viewer = client(viewerToken);
  const refused = await viewer.launchRun({ workflow: "basic", input: {} }).catch((e) => e);
  assert.ok(refused instanceof GatewayRpcError, String(refused));
  report.forbidden = { code: refused.code, status: refused.status };
  viewer.close();

  // --- signals: submitSignal over HTTP (correlationKey, payload) -----------------------
  const waiting = await operator.launchRun({ workflow: "github-wait", input: {} });
  await until(
    () => operator.getRun({ runId: waiting.runId }),
    (run) => run.status === "waiting-event",
    "the signal run to wait",
  );
  const signalled = await operator.submitSignal({
    runId: waiting.runId,
    signalName: "github.comment.created",
    correlationKey: "42",
    payload: { body: "ship it" },
  });
  assert.equal(signalled.delivered, true);
  await until(
    () => operator.getRun({ runId: waiting.runId }),
    (run) => run.status === "finished",
    "the signalled run to finish",
  );
  report.signal = { runId: waiting.runId, delivered: signalled.delivered };

  // --- streamRunEvents: its own socket, run.event frames until run.completed ------------
  const streamed = [];
  for await (const frame of operator.streamRunEvents({ runId: launched.runId, afterSeq: 0 })) {
    streamed.push(frame.payload.event);
    if (frame.payload.event === "run.completed") break;
  }
  report.stream = { events: streamed };
} finally {
  operator.close();
}
console.log(JSON.stringify(report));

// A Smithers HTTP client, written to the documented calls of Smithers' published client
// (`smithers-orchestrator/pi-plugin`: runWorkflow, resume, approve, deny, streamEvents,
// getStatus, getFrames, cancel, listRuns; see docs/smithers.md for the sources). Same
// signatures, same URLs, methods, bodies and headers, fetch-based, SSE parsed from the
// fetch body stream. Nothing here knows about Flowplane: if Flowplane's wire format drifts
// from Smithers', this client breaks.
//
// Run directly (`node smithers_client.mjs`), it drives the run lifecycle against the server
// at $SMITHERS_BASE_URL with $SMITHERS_API_KEY and prints a JSON report on stdout. The
// workflow files named by $SMITHERS_APPROVAL_WORKFLOW and $SMITHERS_FLAKY_WORKFLOW must
// exist under the server's root folder.

import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";

const DEFAULT_BASE = "http://127.0.0.1:7331";

export class SmithersHttpError extends Error {
  constructor(path, status) {
    super(`Smithers HTTP ${status}`);
    this.path = path;
    this.status = status;
  }
}

function buildHeaders(opts, withJson = false) {
  const headers = {};
  if (withJson) headers["Content-Type"] = "application/json";
  if (opts?.apiKey) headers["Authorization"] = `Bearer ${opts.apiKey}`;
  return headers;
}

async function post(path, body, opts = {}) {
  const base = opts.baseUrl ?? DEFAULT_BASE;
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: buildHeaders(opts, true),
    body: JSON.stringify(body ?? {}),
  });
  if (!res.ok) throw new SmithersHttpError(path, res.status);
  return res.json();
}

async function get(path, opts = {}) {
  const base = opts.baseUrl ?? DEFAULT_BASE;
  const res = await fetch(`${base}${path}`, { headers: buildHeaders(opts, false) });
  if (!res.ok) throw new SmithersHttpError(path, res.status);
  return res.json();
}

/** Start a new workflow run: POST /v1/runs {workflowPath, input, runId?} -> {runId}. */
export async function runWorkflow({ workflowPath, input, runId, baseUrl, apiKey }) {
  return post("/v1/runs", { workflowPath, input, runId }, { baseUrl, apiKey });
}

/** Resume a paused or failed run: POST /v1/runs {workflowPath, runId, resume: true}. */
export async function resume({ workflowPath, runId, baseUrl, apiKey }) {
  return post("/v1/runs", { workflowPath, runId, resume: true }, { baseUrl, apiKey });
}

/** Approve a node waiting for approval: POST /v1/runs/:runId/nodes/:nodeId/approve. */
export async function approve({ runId, nodeId, iteration, note, baseUrl, apiKey }) {
  return post(
    `/v1/runs/${runId}/nodes/${nodeId}/approve`,
    { iteration: iteration ?? 0, note },
    { baseUrl, apiKey },
  );
}

/** Deny a node waiting for approval: POST /v1/runs/:runId/nodes/:nodeId/deny. */
export async function deny({ runId, nodeId, iteration, note, baseUrl, apiKey }) {
  return post(
    `/v1/runs/${runId}/nodes/${nodeId}/deny`,
    { iteration: iteration ?? 0, note },
    { baseUrl, apiKey },
  );
}

/** The run's events: GET /v1/runs/:runId/events, SSE, each `data: ` line is one event. */
export async function* streamEvents({ runId, baseUrl, apiKey }) {
  const base = baseUrl ?? DEFAULT_BASE;
  const res = await fetch(`${base}/v1/runs/${runId}/events`, {
    headers: buildHeaders({ baseUrl, apiKey }, false),
  });
  if (!res.ok || !res.body) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parts = buffer.split("\n\n");
      buffer = parts.pop() ?? "";
      for (const part of parts) {
        const line = part.split("\n").find((l) => l.startsWith("data: "));
        if (line) yield JSON.parse(line.slice(6));
      }
    }
  } finally {
    // Leaving the loop early (break) closes the connection instead of leaving it open.
    await reader.cancel().catch(() => {});
  }
}

/** The run's status: GET /v1/runs/:runId. */
export async function getStatus({ runId, baseUrl, apiKey }) {
  return get(`/v1/runs/${runId}`, { baseUrl, apiKey });
}

/** The run's frames: GET /v1/runs/:runId/frames?limit=<tail, default 20>. */
export async function getFrames({ runId, tail, baseUrl, apiKey }) {
  return get(`/v1/runs/${runId}/frames?limit=${tail ?? 20}`, { baseUrl, apiKey });
}

/** Cancel an active run: POST /v1/runs/:runId/cancel. */
export async function cancel({ runId, baseUrl, apiKey }) {
  return post(`/v1/runs/${runId}/cancel`, {}, { baseUrl, apiKey });
}

/** List runs: GET /v1/runs?limit=&status= (a JSON array). */
export async function listRuns({ limit, status, baseUrl, apiKey } = {}) {
  const params = new URLSearchParams();
  if (limit !== undefined) params.set("limit", String(limit));
  if (status) params.set("status", status);
  const qs = params.toString();
  return get(`/v1/runs${qs ? `?${qs}` : ""}`, { baseUrl, apiKey });
}

// --- the lifecycle scenario ------------------------------------------------------------

const NODE_EVENT_FIELDS = ["type", "runId", "nodeId", "iteration", "timestampMs"];

function checkEvent(event, runId) {
  assert.equal(typeof event.type, "string");
  assert.equal(event.runId, runId);
  assert.equal(typeof event.timestampMs, "number");
  if (event.type.startsWith("Node")) {
    for (const field of NODE_EVENT_FIELDS) assert.ok(field in event, `${event.type}.${field}`);
  }
}

/** Read the run's events until one of type `until`; return every type seen. */
async function readUntil(conn, runId, until) {
  const types = [];
  let last = null;
  for await (const event of streamEvents({ runId, ...conn })) {
    checkEvent(event, runId);
    types.push(event.type);
    last = event;
    if (event.type === until) break;
  }
  assert.equal(last?.type, until, `the stream of ${runId} ended before ${until}: ${types}`);
  return { types, last };
}

function checkStatus(status, runId, expected) {
  assert.equal(status.runId, runId);
  assert.equal(typeof status.workflowName, "string");
  assert.equal(status.status, expected);
  assert.equal(typeof status.startedAtMs, "number");
  assert.ok(status.finishedAtMs === null || typeof status.finishedAtMs === "number");
  assert.equal(typeof status.summary, "object");
  return status;
}

async function main() {
  const conn = { baseUrl: process.env.SMITHERS_BASE_URL, apiKey: process.env.SMITHERS_API_KEY };
  const approvalPath = process.env.SMITHERS_APPROVAL_WORKFLOW;
  const flakyPath = process.env.SMITHERS_FLAKY_WORKFLOW;
  const report = {};

  // 1. Approve: start, wait for the approval, approve, follow to the end.
  const started = await runWorkflow({ workflowPath: approvalPath, input: { who: "ada" }, ...conn });
  const approved = started.runId;
  assert.equal(typeof approved, "string");
  const waiting = await readUntil(conn, approved, "NodeWaitingApproval");
  const nodeId = waiting.last.nodeId;
  const decision = await approve({ runId: approved, nodeId, note: "ship it", ...conn });
  assert.equal(decision.runId, approved);
  const finished = await readUntil(conn, approved, "RunFinished");
  const status = checkStatus(await getStatus({ runId: approved, ...conn }), approved, "finished");
  assert.ok(status.finishedAtMs >= status.startedAtMs);
  const frames = await getFrames({ runId: approved, tail: 5, ...conn });
  assert.ok(Array.isArray(frames) && frames.length > 0 && frames.length <= 5);
  for (const frame of frames) {
    assert.equal(frame.runId, approved);
    assert.equal(typeof frame.frameNo, "number");
    assert.equal(typeof frame.createdAtMs, "number");
  }
  report.approve = {
    runId: approved,
    nodeId,
    waitingTypes: waiting.types,
    finishedTypes: finished.types,
    status,
    frameNos: frames.map((f) => f.frameNo),
  };

  // 2. Deny: the approval node fails, and so does the run.
  const denied = (await runWorkflow({ workflowPath: approvalPath, input: {}, ...conn })).runId;
  await readUntil(conn, denied, "NodeWaitingApproval");
  assert.equal((await deny({ runId: denied, nodeId, note: "no", ...conn })).runId, denied);
  const failed = await readUntil(conn, denied, "RunFailed");
  report.deny = {
    runId: denied,
    types: failed.types,
    status: checkStatus(await getStatus({ runId: denied, ...conn }), denied, "failed"),
  };

  // 3. Cancel while waiting; cancelling again is refused (409 RUN_NOT_ACTIVE).
  const cancelled = (
    await runWorkflow({ workflowPath: approvalPath, input: {}, runId: "smithers-cancel-1", ...conn })
  ).runId;
  assert.equal(cancelled, "smithers-cancel-1");
  await readUntil(conn, cancelled, "NodeWaitingApproval");
  assert.equal((await cancel({ runId: cancelled, ...conn })).runId, cancelled);
  const end = await readUntil(conn, cancelled, "RunCancelled");
  let again = null;
  try {
    await cancel({ runId: cancelled, ...conn });
  } catch (error) {
    again = error.status;
  }
  report.cancel = {
    runId: cancelled,
    types: end.types,
    cancelAgain: again,
    status: checkStatus(await getStatus({ runId: cancelled, ...conn }), cancelled, "cancelled"),
  };

  // 4. Resume a failed run: it goes on from where it stopped.
  const flaky = (await runWorkflow({ workflowPath: flakyPath, input: {}, ...conn })).runId;
  await readUntil(conn, flaky, "RunFailed");
  const resumed = await resume({ workflowPath: flakyPath, runId: flaky, ...conn });
  assert.equal(resumed.runId, flaky);
  const after = await readUntil(conn, flaky, "RunFinished");
  report.resume = {
    runId: flaky,
    types: after.types,
    status: checkStatus(await getStatus({ runId: flaky, ...conn }), flaky, "finished"),
  };

  // 5. Listing, filtered by status, as a JSON array of runs.
  const all = await listRuns({ limit: 10, ...conn });
  const onlyFinished = await listRuns({ status: "finished", ...conn });
  assert.ok(Array.isArray(all) && Array.isArray(onlyFinished));
  report.listRuns = {
    all: all.map((r) => ({ runId: r.runId, status: r.status, workflowName: r.workflowName })),
    finished: onlyFinished.map((r) => r.runId),
  };

  // 6. Without the key, every call is refused.
  let unauthorized = null;
  try {
    await getStatus({ runId: approved, baseUrl: conn.baseUrl });
  } catch (error) {
    unauthorized = error.status;
  }
  report.unauthorized = unauthorized;

  process.stdout.write(JSON.stringify(report) + "\n");
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exit(1);
    },
  );
}

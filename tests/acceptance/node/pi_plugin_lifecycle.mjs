// Smithers' published HTTP client, `smithers-orchestrator/pi-plugin` from the npm registry
// (tests/acceptance/node/package.json pins it), driving a Flowplane server through the run
// lifecycle: approve, deny, cancel, resume, status, frames, listing. The client is imported
// as published (its TypeScript source, types stripped by ts_hooks.mjs); nothing here knows
// about Flowplane.
//
// Run as `node --import ./ts_loader.mjs pi_plugin_lifecycle.mjs` with $SMITHERS_BASE_URL,
// $SMITHERS_API_KEY, and the workflow files $SMITHERS_APPROVAL_WORKFLOW and
// $SMITHERS_FLAKY_WORKFLOW under the server's root folder; prints a JSON report on stdout.

import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import {
  approve,
  cancel,
  deny,
  getFrames,
  getStatus,
  listRuns,
  resume,
  runWorkflow,
  streamEvents,
} from "smithers-orchestrator/pi-plugin";

/** The HTTP status of the client's error (it throws `new Error("HTTP <status>")`). */
async function statusOf(call) {
  try {
    await call();
  } catch (error) {
    const found = /^HTTP (\d+)$/.exec(error.message);
    if (found) return Number(found[1]);
    throw error;
  }
  return 200;
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
  // Resuming a run that waits is accepted and changes nothing (Smithers: a live run).
  const stillWaiting = await resume({ workflowPath: approvalPath, runId: approved, ...conn });
  assert.equal(stillWaiting.runId, approved);
  assert.equal((await getStatus({ runId: approved, ...conn })).status, "waiting-approval");
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
    resumeWhileWaiting: stillWaiting.runId,
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
  // The same runId again, without resume, is refused (409 RUN_ALREADY_EXISTS).
  const reused = await statusOf(() =>
    runWorkflow({ workflowPath: approvalPath, input: {}, runId: cancelled, ...conn }),
  );
  await readUntil(conn, cancelled, "NodeWaitingApproval");
  assert.equal((await cancel({ runId: cancelled, ...conn })).runId, cancelled);
  const end = await readUntil(conn, cancelled, "RunCancelled");
  const again = await statusOf(() => cancel({ runId: cancelled, ...conn }));
  report.cancel = {
    runId: cancelled,
    types: end.types,
    reusedRunId: reused,
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
  report.unauthorized = await statusOf(() => getStatus({ runId: approved, baseUrl: conn.baseUrl }));

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

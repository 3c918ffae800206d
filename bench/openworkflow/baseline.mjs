// openworkflow's cost per step on the same PostgreSQL: the second peer baseline of
// bench/engine.py (next to DBOS, bench/dbos_baseline.py).
//
//   node bench/openworkflow/baseline.mjs <postgres-url> <runs> [--statements]
//
// Installed with `npm ci` in this folder (pinned in package.json and package-lock.json;
// `make bench` does it). bench/engine.py starts it right after its own PostgreSQL
// `sequential` workload and DBOS, so all three are measured in the same run on the same
// server. It prints one JSON line:
//
//   {"version": ..., "runs": N, "p50_ms": ..., "p99_ms": ..., "cpu_ms": ...,
//    "statements": ..., "commits": ..., "switches": ...}
//
// The workload mirrors `sequential`: a workflow of 10 no-op `step.run`s, one run at a
// time, latency per step = run latency / 10, from `workflow.run()` (the run's INSERT) to
// the run's completion being written (the `completeWorkflowRun` UPDATE has returned), one
// warm-up run first. openworkflow's default configuration (its own postgres.js pool, the
// library's defaults) in a throw-away schema, dropped afterwards.
//
// Worker and client in one process, and the worker driven by the bench: openworkflow's
// worker finds work only by polling (`claimWorkflowRun`: an UPDATE ... FOR UPDATE SKIP
// LOCKED, sleeping 50-100 ms after an empty poll, backing off to 1 s) and `handle.result()`
// polls the run row every second, so a run's latency "as deployed" is those sleeps, not the
// engine. Flowplane's dispatch hands a new run's roots to a worker of its own process
// without a poll, and its bench detects run ends without polling; the fair counterpart
// here is to call the worker's public `tick()` (one claim, the poll a worker would make)
// right after starting the run, and to detect the end by wrapping the backend's
// `completeWorkflowRun`. Every statement openworkflow runs per run is still run: the
// run's INSERT, the claim, the step-history read, two statements per step, the
// completion. The worker's concurrency is 1 (its default; one run at a time anyway).
//
// `statements` and `commits` are counted client-side (postgres.js's `debug` hook, on a pool
// built exactly as openworkflow builds its own): statements per step sent to the server,
// and of those the ones that commit on their own (autocommit; BEGIN ... COMMIT counts once).
// `switches`: the process's context switches per step (voluntary and involuntary: each
// wait for the server or for a core). `--statements` also prints one run's statements (first line of each) on stderr.

import postgres from "postgres";
import { OpenWorkflow } from "openworkflow";
import { BackendPostgres } from "openworkflow/postgres";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

const STEPS = 10;

function percentile(values, p) {
  const ordered = [...values].sort((a, b) => a - b);
  return ordered[Math.max(0, Math.ceil((p / 100) * ordered.length) - 1)];
}

function installedVersion() {
  const url = new URL("./node_modules/openworkflow/package.json", import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

/** Counts what the pool sends; `trace` (when set) collects the statements' first lines. */
class StatementCounter {
  statements = 0;
  commits = 0;
  inTransaction = false;
  trace = null;

  /** postgres.js calls this for every query it sends (connection, text, params, types). */
  hook = (_connection, text) => {
    const head = text.trimStart().slice(0, 8).toUpperCase();
    if (head.startsWith("BEGIN")) {
      this.inTransaction = true;
    } else if (head.startsWith("COMMIT") || head.startsWith("ROLLBACK")) {
      this.inTransaction = false;
      this.commits += 1;
    } else {
      this.statements += 1;
      if (!this.inTransaction) this.commits += 1;
    }
    if (this.trace) this.trace.push(text.trim().split("\n")[0].trim());
  };
}

async function main() {
  const [url, runsArg] = process.argv.slice(2);
  const runs = Number(runsArg);
  const showStatements = process.argv.includes("--statements");
  if (!url || !Number.isInteger(runs) || runs < 1) {
    throw new Error("usage: baseline.mjs <postgres-url> <runs> [--statements]");
  }
  const schema = `ow_bench_${randomBytes(4).toString("hex")}`;
  // connect() creates the schema and runs openworkflow's migrations; the bench's own pool
  // is then built as openworkflow's `newPostgres` builds it (camelCase columns), plus the
  // counting hook.
  await (await BackendPostgres.connect(url, { schema })).stop();
  const counter = new StatementCounter();
  const pool = postgres(url, {
    transform: { column: { from: postgres.toCamel } },
    debug: counter.hook,
    onnotice: () => {},
  });
  const backend = BackendPostgres.fromPool(pool, { schema });

  // Run ends without polling: resolve the waiting promise when the completion returns.
  let finished = null;
  const complete = backend.completeWorkflowRun.bind(backend);
  backend.completeWorkflowRun = async (params) => {
    const run = await complete(params);
    finished?.(run);
    return run;
  };

  const ow = new OpenWorkflow({ backend });
  const sequential = ow.defineWorkflow({ name: "sequential" }, async ({ step }) => {
    for (let i = 0; i < STEPS; i++) {
      await step.run({ name: `noop-${i}` }, async () => null);
    }
    return null;
  });
  const worker = ow.newWorker({ concurrency: 1 });

  async function once() {
    const done = new Promise((resolve) => {
      finished = resolve;
    });
    await sequential.run();
    // The previous run's execution may still be leaving the worker's slot (its `finally`
    // runs after the completion returned): tick until the claim is made.
    while ((await worker.tick()) === 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
  }

  try {
    await once(); // warm up: prepared statements, JIT, the pool's connection
    if (showStatements) {
      counter.trace = [];
      await once();
      process.stderr.write(`${counter.trace.join("\n")}\n`);
      counter.trace = null;
    }
    counter.statements = 0;
    counter.commits = 0;
    const perStep = [];
    const cpu0 = process.cpuUsage();
    const usage0 = process.resourceUsage();
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await once();
      perStep.push(Number(process.hrtime.bigint() - t0) / 1e6 / STEPS);
    }
    const cpu = process.cpuUsage(cpu0);
    const usage = process.resourceUsage();
    const steps = runs * STEPS;
    const result = {
      version: installedVersion(),
      runs,
      p50_ms: percentile(perStep, 50),
      p99_ms: percentile(perStep, 99),
      cpu_ms: (cpu.user + cpu.system) / 1000 / steps,
      statements: counter.statements / steps,
      commits: counter.commits / steps,
      switches:
        (usage.voluntaryContextSwitches - usage0.voluntaryContextSwitches +
          usage.involuntaryContextSwitches - usage0.involuntaryContextSwitches) / steps,
    };
    await worker.stop();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await pool.end();
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await admin.end();
    }
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});

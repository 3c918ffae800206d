// The runs list: filters in the URL-less form, refreshed every 2 s while the page is open.
import { useState } from "preact/hooks";
import { get, qs } from "./api";
import { duration, ErrorNote, Page, StateBadge, Table, useLoad, when } from "./common";

export interface Run {
  runId: string;
  namespace: string;
  workflowId: string | null;
  workflowName: string;
  workflowVersion: number | null;
  status: string;
  error: unknown;
  parentRunId: string | null;
  forkedFrom: string | null;
  trigger: string | null;
  triggeredBy: string | null;
  createdAtMs: number | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  durationMs: number | null;
}

const STATUSES = ["queued", "running", "waiting-approval", "waiting-event", "waiting-timer", "finished", "failed", "cancelled", "timed-out"];

function toIso(local: string): string | undefined {
  return local ? new Date(local).toISOString() : undefined;
}

/** The runs list; `initial` holds filters from the URL (`#/runs?workflow=NAME&status=...`). */
export function RunsPage({ initial }: { initial: URLSearchParams }) {
  const [status, setStatus] = useState(initial.get("status") ?? "");
  const [workflow, setWorkflow] = useState(initial.get("workflow") ?? "");
  const [namespace, setNamespace] = useState(initial.get("namespace") ?? "");
  const [after, setAfter] = useState("");
  const [before, setBefore] = useState("");
  const [search, setSearch] = useState("");
  const query = qs({ limit: 200, status, workflow, namespace, createdAfter: toIso(after), createdBefore: toIso(before) });
  const { data, error } = useLoad(() => get<Run[]>(`/v1/runs${query}`), [query], 2000);
  const needle = search.trim().toLowerCase();
  const rows = (data ?? []).filter(
    (r) => !needle || [r.runId, r.workflowName, r.namespace, r.status, r.triggeredBy ?? ""].some((v) => v.toLowerCase().includes(needle)),
  );
  return (
    <Page title="Runs">
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter runs">
        <label>
          Status
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <input value={workflow} placeholder="name or id" onInput={(e) => setWorkflow((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Namespace
          <input value={namespace} onInput={(e) => setNamespace((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Created after
          <input type="datetime-local" value={after} onInput={(e) => setAfter((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Created before
          <input type="datetime-local" value={before} onInput={(e) => setBefore((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Search
          <input type="search" value={search} placeholder="id, workflow, who…" onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorNote error={error} />
      <p class="muted" aria-live="polite">
        {data ? `${rows.length} run(s), updated ${new Date().toLocaleTimeString()}` : "Loading…"}
      </p>
      <Table
        label="Runs"
        rows={rows}
        rowKey={(r) => r.runId}
        empty="No runs match."
        columns={[
          { title: "Run", cell: (r) => <a href={`#/runs/${r.runId}`}>{r.runId.slice(-12)}</a> },
          { title: "Workflow", cell: (r) => `${r.workflowName}${r.workflowVersion ? ` v${r.workflowVersion}` : ""}` },
          { title: "Namespace", cell: (r) => r.namespace },
          { title: "Status", cell: (r) => <StateBadge state={r.status} /> },
          { title: "Created", cell: (r) => when(r.createdAtMs) },
          { title: "Duration", cell: (r) => duration(r.durationMs) },
          { title: "Trigger", cell: (r) => `${r.trigger ?? ""}${r.triggeredBy ? ` · ${r.triggeredBy}` : ""}` },
        ]}
      />
    </Page>
  );
}

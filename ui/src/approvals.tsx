// The approvals inbox across the caller's namespaces, and sending a signal to a waiting run.
import { useState } from "preact/hooks";
import { call, can, get, qs, type Session } from "./api";
import { duration, ErrorNote, Page, Table, useLoad } from "./common";

interface Approval {
  id: string;
  runId: string;
  namespace: string;
  nodeId: string;
  iteration: number;
  title: string;
  description: string | null;
  status: string;
  requestedAtMs: number;
  waitingMs: number;
  workflowName: string | null;
}

function Decide({ approval, onDone }: { approval: Approval; onDone: () => void }) {
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(null);
  const decide = async (approved: boolean) => {
    setError(null);
    try {
      await call(`/v1/runs/${approval.runId}/nodes/${approval.nodeId}/${approved ? "approve" : "deny"}`, {
        method: "POST",
        json: { iteration: approval.iteration, note: note || null },
      });
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="decide" role="group" aria-label={`Decide: ${approval.title}`}>
      <label>
        Note
        <input value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
      </label>
      <button type="button" class="primary" onClick={() => decide(true)}>
        Approve
      </button>
      <button type="button" class="danger" onClick={() => decide(false)}>
        Deny
      </button>
      <ErrorNote error={error} />
    </div>
  );
}

export function ApprovalsPage({ session }: { session: Session }) {
  const [namespace, setNamespace] = useState("");
  const { data, error, reload } = useLoad(
    () => get<{ approvals: Approval[] }>(`/v1/approvals${qs({ status: "pending", namespace, limit: 500 })}`),
    [namespace],
    3000,
  );
  const executor = can(session, "executor");
  return (
    <Page title="Approvals">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Namespace
          <input value={namespace} placeholder="all of mine" onInput={(e) => setNamespace((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorNote error={error} />
      <Table
        label="Waiting approvals"
        rows={data?.approvals ?? []}
        rowKey={(a) => a.id}
        empty="Nothing is waiting for a decision."
        columns={[
          {
            title: "Asks",
            cell: (a) => (
              <>
                <strong>{a.title}</strong>
                {a.description && <div class="muted">{a.description}</div>}
              </>
            ),
          },
          { title: "Run", cell: (a) => <a href={`#/runs/${a.runId}`}>{a.workflowName ?? a.runId.slice(-12)}</a> },
          { title: "Node", cell: (a) => `${a.nodeId}${a.iteration ? ` #${a.iteration}` : ""}` },
          { title: "Namespace", cell: (a) => a.namespace },
          { title: "Waiting", cell: (a) => duration(a.waitingMs) },
          ...(executor ? [{ title: "Decision", cell: (a: Approval) => <Decide approval={a} onDone={reload} /> }] : []),
        ]}
      />
      {executor && <SignalForm />}
    </Page>
  );
}

function SignalForm() {
  const [runId, setRunId] = useState("");
  const [name, setName] = useState("");
  const [payload, setPayload] = useState("{}");
  const [result, setResult] = useState("");
  const [error, setError] = useState<unknown>(null);
  const send = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setResult("");
    try {
      const parsed = payload.trim() ? JSON.parse(payload) : null;
      const answer = await call<{ delivered: boolean; nodeId: string | null }>(
        `/v1/runs/${encodeURIComponent(runId.trim())}/signals/${encodeURIComponent(name.trim())}`,
        { method: "POST", json: { payload: parsed } },
      );
      setResult(answer.data.delivered ? `Delivered to node ${answer.data.nodeId}.` : "Stored: no node waits for it yet.");
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={send} aria-labelledby="signal-title">
      <h2 id="signal-title">Send a signal</h2>
      <label>
        Run id
        <input value={runId} required onInput={(e) => setRunId((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Signal name
        <input value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Payload (JSON)
        <textarea rows={3} value={payload} onInput={(e) => setPayload((e.target as HTMLTextAreaElement).value)} />
      </label>
      <button type="submit">Send signal</button>
      {result && <p role="status">{result}</p>}
      <ErrorNote error={error} />
    </form>
  );
}

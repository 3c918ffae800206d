// One run: the live graph (events over SSE), node detail, timeline, frames, diff, actions.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call, can, get, post, qs, token, type Session } from "./api";
import { duration, ErrorNote, Json, navigate, Page, StateBadge, Table, when } from "./common";
import { followEvents, type RunEvent, type StreamState } from "./events";
import { combinedState, documentNodes, Graph, type GraphNode, type NodeView } from "./graph";
import type { Run } from "./runs";

interface Attempt {
  attempt: number;
  status: string;
  worker: string | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  durationMs: number | null;
  error: unknown;
}

export interface NodeState {
  nodeId: string;
  iteration: number;
  state: string;
  attempt: number;
  attempts: Attempt[];
  output: unknown;
  error: unknown;
  wait: unknown;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  durationMs: number | null;
}

interface RunDetail extends Run {
  input: unknown;
  output: unknown;
  summary: Record<string, number>;
  nodes: NodeState[];
  nodesTotal: number;
  nodeRunsTotal: number | null;
  nodesNextCursor: string | null;
}

interface Frame {
  frameNo: number;
  timestampMs: number;
  nodes: { nodeId: string; iteration: number; status: string; attempt: number }[];
}

interface LogItem {
  kind: string;
  nodeId: string;
  iteration: number;
  attempt: number;
  tsMs: number;
  level: string | null;
  message: string | null;
  status: string | null;
  error: unknown;
}

const TERMINAL_RUN = ["finished", "failed", "cancelled", "timed-out"];
const EVENT_STATE: Record<string, string> = {
  NodeReady: "ready",
  NodeStarted: "in-progress",
  NodeFinished: "finished",
  NodeFailed: "failed",
  NodeSkipped: "skipped",
  NodeRetrying: "waiting-timer",
  NodeWaitingApproval: "waiting-approval",
  NodeWaitingEvent: "waiting-event",
  NodeWaitingTimer: "waiting-timer",
};
const RUN_EVENT_STATUS: Record<string, string> = {
  RunFinished: "finished",
  RunFailed: "failed",
  RunCancelled: "cancelled",
  RunTimedOut: "timed-out",
};

const key = (nodeId: string, iteration: number) => `${nodeId}#${iteration}`;

/** Apply events to the node states (in order); true when the details should be reloaded. */
function applyEvents(states: Map<string, NodeState>, status: { current: string }, events: RunEvent[]): boolean {
  let reload = false;
  for (const e of events) {
    const next = EVENT_STATE[e.type];
    if (next && e.nodeId !== undefined) {
      const k = key(e.nodeId, e.iteration ?? 0);
      const old = states.get(k);
      states.set(k, {
        ...(old ?? { nodeId: e.nodeId, iteration: e.iteration ?? 0, attempt: 0, attempts: [], output: null, error: null, wait: null, startedAtMs: null, finishedAtMs: null, durationMs: null }),
        state: next,
        attempt: e.attempt ?? old?.attempt ?? 0,
        startedAtMs: e.type === "NodeStarted" ? e.timestampMs : old?.startedAtMs ?? null,
        finishedAtMs: ["NodeFinished", "NodeFailed", "NodeSkipped"].includes(e.type) ? e.timestampMs : old?.finishedAtMs ?? null,
        output: e.type === "NodeFinished" ? e.output : old?.output ?? null,
      });
    }
    if (e.type === "RunStatusChanged" && typeof e.status === "string") status.current = e.status;
    if (RUN_EVENT_STATUS[e.type]) {
      status.current = RUN_EVENT_STATUS[e.type];
      reload = true;
    }
    if (e.type === "ApprovalDecided" || e.type === "RunResumed" || e.type === "NodeFailed") reload = true;
  }
  return reload;
}

async function loadDetail(id: string): Promise<RunDetail> {
  const detail = await get<RunDetail>(`/v1/runs/${id}`);
  let cursor = detail.nodesNextCursor;
  const nodes = [...detail.nodes];
  for (let pages = 0; cursor && pages < 20; pages++) {
    const page = await get<{ items: NodeState[]; nextCursor: string | null }>(`/v1/runs/${id}/nodes${qs({ cursor, limit: 1000 })}`);
    nodes.push(...page.items);
    cursor = page.nextCursor;
  }
  if (detail.nodesNextCursor) {
    const seen = new Map(nodes.map((n) => [key(n.nodeId, n.iteration), n]));
    detail.nodes = [...seen.values()];
  }
  return detail;
}

async function loadShape(detail: RunDetail): Promise<GraphNode[]> {
  if (detail.workflowId) {
    try {
      const path = detail.workflowVersion
        ? `/v1/workflows/${detail.workflowId}/revisions/${detail.workflowVersion}`
        : `/v1/workflows/${detail.workflowId}`;
      const found = documentNodes((await get<{ document: unknown }>(path)).document);
      if (found.length) return found;
    } catch {
      /* the workflow was deleted: draw the nodes without edges */
    }
  }
  const ids = [...new Set(detail.nodes.map((n) => n.nodeId))];
  return ids.map((id) => ({ id, needs: [] }));
}

function viewsOf(shape: GraphNode[], states: Map<string, NodeState>, frame: Frame | null): Map<string, NodeView> {
  // Every row of a node counts for its state; a foreach node also has its own row at
  // iteration -1, which is not one of its items.
  const byNode = new Map<string, string[]>();
  const itemsOf = new Map<string, string[]>();
  const foreach = new Set<string>();
  const add = (nodeId: string, iteration: number, state: string) => {
    (byNode.get(nodeId) ?? byNode.set(nodeId, []).get(nodeId)!).push(state);
    if (iteration < 0) foreach.add(nodeId);
    else (itemsOf.get(nodeId) ?? itemsOf.set(nodeId, []).get(nodeId)!).push(state);
  };
  if (frame) for (const n of frame.nodes) add(n.nodeId, n.iteration, n.status);
  else for (const n of states.values()) add(n.nodeId, n.iteration, n.state);
  const views = new Map<string, NodeView>();
  for (const node of shape) {
    const list = byNode.get(node.id) ?? [];
    const items = itemsOf.get(node.id) ?? [];
    const state = combinedState(list);
    const done = items.filter((s) => s === "finished" || s === "skipped").length;
    views.set(node.id, { state, text: items.length > 1 || foreach.has(node.id) ? `${state} · ${done}/${items.length} done` : state });
  }
  return views;
}

export function RunPage({ id, session }: { id: string; session: Session }) {
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [shape, setShape] = useState<GraphNode[]>([]);
  const [version, setVersion] = useState(0);
  const [stream, setStream] = useState<StreamState>("connecting");
  const [selected, setSelected] = useState<string | null>(null);
  const [tab, setTab] = useState<"graph" | "timeline" | "frames" | "diff">("graph");
  const [frame, setFrame] = useState<Frame | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [follow, setFollow] = useState(0);
  const states = useRef(new Map<string, NodeState>());
  const status = useRef("");
  const executor = can(session, "executor");

  // Events that arrive while a snapshot is in flight may be newer than it: they are applied
  // again over the snapshot (in order, so the states converge to the newest).
  const inFlight = useRef<RunEvent[][]>([]);
  const refresh = async () => {
    const seen: RunEvent[] = [];
    inFlight.current.push(seen);
    try {
      const d = await loadDetail(id);
      const map = new Map<string, NodeState>();
      for (const n of d.nodes) map.set(key(n.nodeId, n.iteration), n);
      status.current = d.status;
      applyEvents(map, status, seen);
      states.current = map;
      setDetail(d);
      setVersion((v) => v + 1);
      return d;
    } catch (e) {
      setError(e);
      return null;
    } finally {
      inFlight.current = inFlight.current.filter((list) => list !== seen);
    }
  };

  useEffect(() => {
    let live = true;
    setDetail(null);
    setSelected(null);
    setFrame(null);
    refresh().then(async (d) => {
      if (d && live) setShape(await loadShape(d));
    });
    return () => {
      live = false;
    };
  }, [id]);

  // Live: every event updates the node's state at once (batched per animation frame);
  // a settled run, a decision or a resume reloads the details (outputs, attempts).
  useEffect(() => {
    let queued: RunEvent[] = [];
    let frameRequest = 0;
    let reloadTimer = 0;
    const reloadSoon = () => {
      if (!reloadTimer) reloadTimer = window.setTimeout(() => ((reloadTimer = 0), refresh()), 300);
    };
    const flush = () => {
      frameRequest = 0;
      const events = queued;
      queued = [];
      for (const list of inFlight.current) list.push(...events);
      const reload = applyEvents(states.current, status, events);
      setVersion((v) => v + 1);
      if (reload) reloadSoon();
    };
    const stop = followEvents({
      url: `/v1/runs/${id}/events`,
      token: token(),
      onState: setStream,
      onEvents: (events) => {
        queued.push(...events);
        if (!frameRequest) frameRequest = requestAnimationFrame(flush);
      },
    });
    return () => {
      stop();
      cancelAnimationFrame(frameRequest);
      clearTimeout(reloadTimer);
    };
  }, [id, follow]);

  const views = useMemo(() => viewsOf(shape, states.current, frame), [shape, version, frame]);
  const runStatus = status.current || detail?.status || "";

  const act = async (label: string, fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      setNotice(`${label}: done`);
    } catch (e) {
      setError(e);
    }
  };
  const cancel = () => act("Cancel", () => post(`/v1/runs/${id}/cancel`));
  const resume = () =>
    act("Resume", async () => {
      await post(`/v1/runs/${id}/resume`);
      await refresh();
      setFollow((f) => f + 1);
    });
  const retry = () =>
    act("Retry", async () => {
      const run = await post<Run>(`/v1/runs/${id}/retry`);
      navigate(`/runs/${run.runId}`);
    });

  const terminal = TERMINAL_RUN.includes(runStatus);
  return (
    <Page
      title={detail ? `Run of ${detail.workflowName}` : "Run"}
      actions={
        executor && detail ? (
          <>
            {!terminal && (
              <button type="button" class="danger" onClick={cancel}>
                Cancel run
              </button>
            )}
            {["failed", "cancelled", "timed-out"].includes(runStatus) && (
              <button type="button" onClick={resume}>
                Resume
              </button>
            )}
            {terminal && (
              <button type="button" onClick={retry}>
                Retry as new run
              </button>
            )}
          </>
        ) : null
      }
    >
      <ErrorNote error={error} />
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {detail && (
        <dl class="facts">
          <dt>Run</dt>
          <dd>
            <code>{detail.runId}</code>
          </dd>
          <dt>Status</dt>
          <dd>
            <span data-testid="run-status">
              <StateBadge state={runStatus} />
            </span>
          </dd>
          <dt>Namespace</dt>
          <dd>{detail.namespace}</dd>
          <dt>Version</dt>
          <dd>{detail.workflowVersion ?? "file"}</dd>
          <dt>Started</dt>
          <dd>{when(detail.startedAtMs ?? detail.createdAtMs)}</dd>
          <dt>Duration</dt>
          <dd>{duration(detail.durationMs)}</dd>
          <dt>Live</dt>
          <dd data-testid="stream-state">{stream}</dd>
          {detail.forkedFrom && (
            <>
              <dt>Forked from</dt>
              <dd>
                <a href={`#/runs/${detail.forkedFrom}`}>{detail.forkedFrom}</a>
              </dd>
            </>
          )}
          {detail.parentRunId && (
            <>
              <dt>Parent</dt>
              <dd>
                <a href={`#/runs/${detail.parentRunId}`}>{detail.parentRunId}</a>
              </dd>
            </>
          )}
        </dl>
      )}
      <div class="tabs" role="tablist" aria-label="Run views">
        {(["graph", "timeline", "frames", "diff"] as const).map((t) => (
          <button
            type="button"
            role="tab"
            key={t}
            aria-selected={tab === t}
            class={tab === t ? "tab active" : "tab"}
            onClick={() => {
              setTab(t);
              if (t !== "frames") setFrame(null);
            }}
          >
            {t === "graph" ? "Graph" : t === "timeline" ? "Timeline" : t === "frames" ? "Frames (rewind)" : "Diff"}
          </button>
        ))}
      </div>
      {tab === "timeline" && detail && <Timeline states={states.current} version={version} />}
      {tab === "diff" && <DiffView id={id} />}
      {tab === "frames" && (
        <Frames id={id} executor={executor} onFrame={setFrame} onRewound={() => (refresh(), setFollow((f) => f + 1))} />
      )}
      {tab !== "timeline" && tab !== "diff" && (
        <div class="run-body">
          <Graph nodes={shape} views={views} selected={selected} onSelect={setSelected} label="Run graph" />
          {selected && (
            <NodeDetail
              runId={id}
              nodeId={selected}
              node={shape.find((n) => n.id === selected) ?? null}
              states={states.current}
              version={version}
              executor={executor}
              onClose={() => setSelected(null)}
              onChanged={() => refresh()}
            />
          )}
        </div>
      )}
      {detail && tab === "graph" && (
        <details>
          <summary>Run input and output</summary>
          <h2>Input</h2>
          <Json value={detail.input} />
          <h2>Output</h2>
          <Json value={detail.output} />
          {detail.error != null && (
            <>
              <h2>Error</h2>
              <Json value={detail.error} />
            </>
          )}
        </details>
      )}
    </Page>
  );
}

function NodeDetail(props: {
  runId: string;
  nodeId: string;
  node: GraphNode | null;
  states: Map<string, NodeState>;
  version: number;
  executor: boolean;
  onClose: () => void;
  onChanged: () => void;
}) {
  const iterations = useMemo(
    () => [...props.states.values()].filter((n) => n.nodeId === props.nodeId).sort((a, b) => a.iteration - b.iteration),
    [props.nodeId, props.version],
  );
  const [iteration, setIteration] = useState(0);
  const [note, setNote] = useState("");
  const [logs, setLogs] = useState<LogItem[]>([]);
  const [error, setError] = useState<unknown>(null);
  const current = iterations.find((n) => n.iteration === iteration) ?? iterations[0];
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    setIteration(0);
    heading.current?.focus();
  }, [props.nodeId]);
  useEffect(() => {
    let live = true;
    get<{ items: LogItem[] }>(`/v1/runs/${props.runId}/logs${qs({ limit: 1000 })}`).then(
      (page) => live && setLogs(page.items.filter((l) => l.nodeId === props.nodeId)),
      () => live && setLogs([]),
    );
    return () => {
      live = false;
    };
  }, [props.runId, props.nodeId, current?.state]);

  const decide = async (approved: boolean) => {
    setError(null);
    try {
      await call(`/v1/runs/${props.runId}/nodes/${props.nodeId}/${approved ? "approve" : "deny"}`, {
        method: "POST",
        json: { iteration: current?.iteration ?? 0, note: note || null },
      });
      setNote("");
      props.onChanged();
    } catch (e) {
      setError(e);
    }
  };
  const fork = async () => {
    setError(null);
    try {
      const run = await post<Run>(`/v1/runs/${props.runId}/fork`, { fromNode: props.nodeId });
      navigate(`/runs/${run.runId}`);
    } catch (e) {
      setError(e);
    }
  };
  // A foreach node has one row per item, and its own row at iteration -1.
  const items = iterations.filter((n) => n.iteration >= 0);
  const counts: Record<string, number> = {};
  for (const n of items) counts[n.state] = (counts[n.state] ?? 0) + 1;
  return (
    <aside class="node-detail" aria-labelledby="node-title">
      <header class="page-head">
        <h2 id="node-title" tabIndex={-1} ref={heading}>
          Node {props.nodeId}
        </h2>
        <button type="button" onClick={props.onClose} aria-label="Close node detail">
          Close
        </button>
      </header>
      {props.node?.type && (
        <p class="muted">
          type <code>{props.node.type}</code>
        </p>
      )}
      <ErrorNote error={error} />
      {items.length > 1 && (
        <div class="iterations">
          <p data-testid="iteration-counts">
            {items.length} items: {Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ")}
          </p>
          <label>
            Item (0 to {items.length - 1})
            <input
              type="number"
              min={0}
              max={items.length - 1}
              value={iteration}
              onInput={(e) => {
                const value = Number((e.target as HTMLInputElement).value);
                if (Number.isInteger(value)) setIteration(value);
              }}
            />
          </label>
        </div>
      )}
      {current ? (
        <>
          <p>
            <StateBadge state={current.state} /> attempt {current.attempt} · {duration(current.durationMs ?? (current.finishedAtMs && current.startedAtMs ? current.finishedAtMs - current.startedAtMs : null))}
          </p>
          {props.executor && current.state === "waiting-approval" && (
            <div class="decide" role="group" aria-label="Decide this approval">
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
            </div>
          )}
          {current.wait != null && (
            <>
              <h3>Waiting for</h3>
              <Json value={current.wait} />
            </>
          )}
          <h3>Output</h3>
          <Json value={current.output} />
          {current.error != null && (
            <>
              <h3>Error</h3>
              <Json value={current.error} />
            </>
          )}
          <h3>Attempts</h3>
          <Table
            label="Attempts"
            rows={current.attempts}
            rowKey={(a) => String(a.attempt)}
            empty="No attempt finished yet."
            columns={[
              { title: "#", cell: (a) => a.attempt },
              { title: "Status", cell: (a) => <StateBadge state={a.status} /> },
              { title: "Started", cell: (a) => when(a.startedAtMs) },
              { title: "Took", cell: (a) => duration(a.durationMs) },
              { title: "Worker", cell: (a) => a.worker ?? "" },
              { title: "Error", cell: (a) => (a.error ? <code>{JSON.stringify(a.error)}</code> : "") },
            ]}
          />
        </>
      ) : (
        <p class="muted">This node has not been reached.</p>
      )}
      <h3>Logs</h3>
      {logs.length ? (
        <ul class="logs">
          {logs.slice(-200).map((l, i) => (
            <li key={i}>
              <time>{new Date(l.tsMs).toLocaleTimeString()}</time> #{l.iteration} {l.kind === "attempt" ? `attempt ${l.attempt} ${l.status}` : `${l.level ?? ""} ${l.message ?? ""}`}
              {l.error ? ` ${JSON.stringify(l.error)}` : ""}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No log lines.</p>
      )}
      <details>
        <summary>Input (the node as written in the workflow)</summary>
        <NodeParams runId={props.runId} nodeId={props.nodeId} />
      </details>
      {props.executor && (
        <p>
          <button type="button" onClick={fork}>
            Fork from this node
          </button>{" "}
          <span class="muted">a new run that keeps the outputs before this node and runs again from it</span>
        </p>
      )}
    </aside>
  );
}

function NodeParams({ runId, nodeId }: { runId: string; nodeId: string }) {
  const [node, setNode] = useState<unknown>(undefined);
  useEffect(() => {
    get<RunDetail>(`/v1/runs/${runId}`)
      .then((d) =>
        d.workflowId
          ? get<{ document: { nodes?: { id: string }[] } }>(
              d.workflowVersion ? `/v1/workflows/${d.workflowId}/revisions/${d.workflowVersion}` : `/v1/workflows/${d.workflowId}`,
            )
          : null,
      )
      .then((w) => setNode(w?.document.nodes?.find((n) => n.id === nodeId) ?? null))
      .catch(() => setNode(null));
  }, [runId, nodeId]);
  return node === undefined ? <p class="muted">Loading…</p> : <Json value={node} />;
}

function Timeline({ states, version }: { states: Map<string, NodeState>; version: number }) {
  const rows = useMemo(
    () =>
      [...states.values()]
        .filter((n) => n.startedAtMs)
        .sort((a, b) => (a.startedAtMs ?? 0) - (b.startedAtMs ?? 0) || a.iteration - b.iteration)
        .slice(0, 2000),
    [version],
  );
  if (!rows.length) return <p class="muted">No node has started yet.</p>;
  const foreach = new Set([...states.values()].filter((n) => n.iteration !== 0).map((n) => n.nodeId));
  const start = Math.min(...rows.map((r) => r.startedAtMs ?? 0));
  const end = Math.max(Date.now() > start ? Math.max(...rows.map((r) => r.finishedAtMs ?? Date.now())) : start + 1, start + 1);
  const span = end - start;
  const width = 640;
  const rowHeight = 18;
  return (
    <div class="timeline-scroll">
      <svg class="timeline" role="img" aria-label={`Timeline of ${rows.length} node runs over ${duration(span)}`} width={width + 220} height={rows.length * rowHeight + 24}>
        <text x="220" y="14" class="axis">
          0
        </text>
        <text x={220 + width} y="14" text-anchor="end" class="axis">
          {duration(span)}
        </text>
        {rows.map((r, i) => {
          const x = 220 + ((r.startedAtMs! - start) / span) * width;
          const w = Math.max(2, (((r.finishedAtMs ?? end) - r.startedAtMs!) / span) * width);
          const y = 20 + i * rowHeight;
          return (
            <g key={key(r.nodeId, r.iteration)} class={`bar st-${r.state}`}>
              <text x="0" y={y + 12}>
                {r.nodeId}
                {r.iteration < 0 ? " (all items)" : foreach.has(r.nodeId) ? ` #${r.iteration}` : ""} · {r.state}
                {r.attempt > 1 ? ` · ${r.attempt} attempts` : ""}
              </text>
              <rect x={x} y={y + 2} width={w} height={rowHeight - 5} rx="3">
                <title>
                  {r.nodeId} #{r.iteration}: {r.state}, {duration((r.finishedAtMs ?? end) - r.startedAtMs!)}
                </title>
              </rect>
              {r.attempts.length > 1 &&
                r.attempts
                  .filter((a) => a.startedAtMs)
                  .map((a) => (
                    // Each attempt (retries included) as a strip along the bottom of the bar.
                    <rect
                      key={a.attempt}
                      class={`attempt st-${a.status}`}
                      x={220 + ((a.startedAtMs! - start) / span) * width}
                      y={y + rowHeight - 6}
                      width={Math.max(2, (((a.finishedAtMs ?? end) - a.startedAtMs!) / span) * width)}
                      height={3}
                    >
                      <title>
                        attempt {a.attempt}: {a.status}, {duration(a.durationMs)}
                      </title>
                    </rect>
                  ))}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

function Frames(props: { id: string; executor: boolean; onFrame: (f: Frame | null) => void; onRewound: () => void }) {
  // Frames are fetched one at a time as the scrubber moves (a big run has thousands, each a
  // snapshot of every node run), and cached.
  const [last, setLast] = useState(0);
  const [frameNo, setFrameNo] = useState(0);
  const [frame, setFrame] = useState<Frame | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [rewound, setRewound] = useState(0);
  const cache = useRef(new Map<number, Frame>());
  useEffect(() => {
    cache.current.clear();
    get<Frame[]>(`/v1/runs/${props.id}/frames${qs({ order: "desc", limit: 1 })}`).then((f) => {
      if (f[0]) {
        cache.current.set(f[0].frameNo, f[0]);
        setLast(f[0].frameNo);
        setFrameNo(f[0].frameNo);
      }
    }, setError);
    return () => props.onFrame(null);
  }, [props.id]);
  useEffect(() => {
    if (!frameNo) return;
    const cached = cache.current.get(frameNo);
    if (cached) {
      setFrame(cached);
      props.onFrame(cached);
      return;
    }
    const timer = setTimeout(() => {
      get<Frame[]>(`/v1/runs/${props.id}/frames${qs({ afterFrameNo: frameNo - 1, limit: 1 })}`).then((f) => {
        if (f[0]) {
          cache.current.set(f[0].frameNo, f[0]);
          setFrame(f[0]);
          props.onFrame(f[0]);
        }
      }, setError);
    }, 120);
    return () => clearTimeout(timer);
  }, [frameNo]);
  if (!last) return error ? <ErrorNote error={error} /> : <p class="muted">No frames yet.</p>;
  const rewind = async () => {
    setError(null);
    try {
      await post(`/v1/runs/${props.id}/rewind`, { frameNo });
      setRewound(frameNo);
      props.onRewound();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="frames">
      <label>
        <span data-testid="frame-label">
          Frame {frameNo} of {last}
          {frame && frame.frameNo === frameNo ? ` · ${new Date(frame.timestampMs).toLocaleTimeString()}` : ""}
        </span>
        <input
          type="range"
          aria-label="Frame"
          min={1}
          max={last}
          value={frameNo}
          onInput={(e) => setFrameNo(Number((e.target as HTMLInputElement).value))}
        />
      </label>
      {props.executor && (
        <button type="button" class="danger" onClick={rewind}>
          Rewind the run to frame {frameNo}
        </button>
      )}
      <ErrorNote error={error} />
      {rewound > 0 && (
        <p class="notice" role="status">
          Rewound to frame {rewound}: the run goes on from there (pick the Graph tab to follow it).
        </p>
      )}
      <p class="muted">The graph below shows the run as it was at this frame.</p>
    </div>
  );
}

interface DiffNode {
  nodeId: string;
  iteration: number;
  original: { status: string; output: unknown } | null;
  other: { status: string; output: unknown } | null;
  changed: boolean;
}

function DiffView({ id }: { id: string }) {
  const [other, setOther] = useState("");
  const [diff, setDiff] = useState<{ inputChanged: boolean; versionChanged: boolean; statusChanged: boolean; nodes: DiffNode[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const compare = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      setDiff(await get(`/v1/runs/${id}/diff/${encodeURIComponent(other.trim())}`));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div>
      <form class="inline" onSubmit={compare}>
        <label>
          Other run id
          <input value={other} required onInput={(e) => setOther((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Compare</button>
      </form>
      <ErrorNote error={error} />
      {diff && (
        <>
          <p>
            Input {diff.inputChanged ? "changed" : "same"} · version {diff.versionChanged ? "changed" : "same"} · status{" "}
            {diff.statusChanged ? "changed" : "same"}
          </p>
          <Table
            label="Node differences"
            rows={diff.nodes}
            rowKey={(n) => key(n.nodeId, n.iteration)}
            columns={[
              { title: "Node", cell: (n) => `${n.nodeId}${n.iteration ? ` #${n.iteration}` : ""}` },
              { title: "This run", cell: (n) => (n.original ? <StateBadge state={n.original.status} /> : "absent") },
              { title: "Other run", cell: (n) => (n.other ? <StateBadge state={n.other.status} /> : "absent") },
              { title: "Changed", cell: (n) => (n.changed ? <strong>changed</strong> : "same") },
              {
                title: "Outputs",
                cell: (n) =>
                  n.changed ? (
                    <div class="diff-pair">
                      <Json value={n.original?.output} />
                      <Json value={n.other?.output} />
                    </div>
                  ) : (
                    ""
                  ),
              },
            ]}
          />
        </>
      )}
    </div>
  );
}

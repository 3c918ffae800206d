// Workflows: the list, and the editor (YAML with validation at its lines as you type, the
// graph beside it, save with If-Match, revisions with a diff and restore, run with a form).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, call, can, get, type Session } from "./api";
import { ErrorNote, navigate, Page, Table, useLoad, when } from "./common";
import { documentNodes, Graph, type GraphNode, type NodeView } from "./graph";
import { InputForm } from "./inputform";

interface Workflow {
  id: string;
  name: string;
  namespace: string;
  version: number;
  description: string;
  document: Record<string, unknown>;
  updatedAtMs: number;
}

interface Problem {
  node_id: string | null;
  field: string | null;
  error: string;
  code: string | null;
  line: number | null;
}

interface Revision {
  version: number;
  createdAtMs: number;
  createdBy: string | null;
  message: string | null;
}

export function WorkflowsPage({ session }: { session: Session }) {
  const { data, error } = useLoad(() => get<{ items: Workflow[] }>("/v1/workflows?limit=200"), []);
  return (
    <Page
      title="Workflows"
      actions={
        can(session, "editor") ? (
          <a class="button" href="#/workflows/new">
            New workflow
          </a>
        ) : null
      }
    >
      <ErrorNote error={error} />
      <Table
        label="Workflows"
        rows={data?.items ?? []}
        rowKey={(w) => w.id}
        empty="No workflows yet."
        columns={[
          { title: "Name", cell: (w) => <a href={`#/workflows/${w.id}`}>{w.name}</a> },
          { title: "Namespace", cell: (w) => w.namespace },
          { title: "Version", cell: (w) => w.version },
          { title: "Description", cell: (w) => w.description },
          { title: "Updated", cell: (w) => when(w.updatedAtMs) },
          { title: "Runs", cell: (w) => <a href={`#/runs?workflow=${encodeURIComponent(w.name)}`}>runs</a> },
        ]}
      />
    </Page>
  );
}

const NEW_DOCUMENT = `name: my-workflow
description: What this workflow does.
inputs:
  type: object
  properties:
    name: {type: string, default: world}
nodes:
  - id: greet
    type: util.set
    params:
      value: "hello {{ input.name }}"
`;

const STATIC_VIEW: NodeView = { state: "static", text: "" };

export function EditorPage({ id, session }: { id: string | null; session: Session }) {
  const editor = can(session, "editor");
  const [text, setText] = useState(id ? "" : NEW_DOCUMENT);
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [valid, setValid] = useState<boolean | null>(null);
  const [shape, setShape] = useState<GraphNode[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [conflict, setConflict] = useState<{ theirs: string; version: number } | null>(null);
  const [panel, setPanel] = useState<"graph" | "revisions" | "run">("graph");
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);

  const load = async () => {
    if (!id) return;
    const wf = await get<Workflow>(`/v1/workflows/${id}`);
    const yaml = (await call<string>(`/v1/workflows/${id}/export?format=yaml`, { headers: { Accept: "application/yaml" } })).data;
    setWorkflow(wf);
    setText(typeof yaml === "string" ? yaml : JSON.stringify(yaml, null, 2));
    setShape(documentNodes(wf.document));
  };
  useEffect(() => {
    load().catch(setError);
  }, [id]);

  // Validate as you type (debounced): the API's answer carries each problem's line.
  useEffect(() => {
    if (!text) return;
    const timer = setTimeout(async () => {
      try {
        const report = (await call<{ valid: boolean; errors: Problem[]; document: unknown }>("/v1/workflows/validate", { method: "POST", text })).data;
        setValid(report.valid);
        setProblems(report.errors);
        if (report.document) setShape(documentNodes(report.document));
      } catch (e) {
        setError(e);
      }
    }, 350);
    return () => clearTimeout(timer);
  }, [text]);

  const lines = text.split("\n").length;
  const byLine = useMemo(() => {
    const map = new Map<number, string[]>();
    for (const p of problems) if (p.line) (map.get(p.line) ?? map.set(p.line, []).get(p.line)!).push(p.error);
    return map;
  }, [problems]);

  const goToLine = (line: number) => {
    const el = area.current;
    if (!el) return;
    const offset = text.split("\n").slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
    el.focus();
    el.setSelectionRange(offset, offset);
  };

  const save = async (version?: number) => {
    setError(null);
    setNotice("");
    try {
      if (!id) {
        const created = (await call<Workflow>("/v1/workflows", { method: "POST", text })).data;
        navigate(`/workflows/${created.id}`);
        return;
      }
      const saved = (
        await call<Workflow>(`/v1/workflows/${id}`, {
          method: "PUT",
          text,
          headers: { "If-Match": `"${version ?? workflow?.version}"` },
        })
      ).data;
      setWorkflow(saved);
      setConflict(null);
      setNotice(`Saved as version ${saved.version}.`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 412 && id) {
        const theirs = (await call<string>(`/v1/workflows/${id}/export?format=yaml`, { headers: { Accept: "application/yaml" } })).data;
        const current = await get<Workflow>(`/v1/workflows/${id}`);
        setConflict({ theirs: String(theirs), version: current.version });
      } else setError(e);
    }
  };

  return (
    <Page
      title={id ? `Workflow ${workflow?.name ?? ""}` : "New workflow"}
      actions={
        <>
          {workflow && <span class="muted">version {workflow.version}</span>}
          {editor && (
            <button type="button" class="primary" onClick={() => save()} disabled={valid === false}>
              {id ? "Save" : "Create"}
            </button>
          )}
        </>
      }
    >
      <ErrorNote error={error} />
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {conflict && (
        <div class="conflict" role="alert">
          <h2>Someone saved version {conflict.version} meanwhile</h2>
          <div class="diff-pair">
            <div>
              <h3>Theirs (version {conflict.version})</h3>
              <pre class="json">{conflict.theirs}</pre>
            </div>
            <div>
              <h3>Yours</h3>
              <pre class="json">{text}</pre>
            </div>
          </div>
          <button type="button" class="danger" onClick={() => save(conflict.version)}>
            Overwrite with mine
          </button>{" "}
          <button type="button" onClick={() => (setConflict(null), load())}>
            Take theirs
          </button>
        </div>
      )}
      <div class="editor-layout">
        <div class="editor">
          <div class="editor-frame">
            <div class="gutter" ref={gutter} aria-hidden="true">
              {Array.from({ length: lines }, (_, i) => {
                const errs = byLine.get(i + 1);
                return (
                  <div key={i} class={errs ? "line-no has-error" : "line-no"} data-line={i + 1} title={errs?.join("\n")}>
                    {errs ? "● " : ""}
                    {i + 1}
                  </div>
                );
              })}
            </div>
            <textarea
              ref={area}
              class="code"
              aria-label="Workflow document (YAML)"
              aria-describedby="problems"
              spellcheck={false}
              readOnly={!editor}
              value={text}
              wrap="off"
              onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
              onScroll={(e) => {
                if (gutter.current) gutter.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop;
              }}
              onKeyDown={(e) => {
                if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && editor) {
                  // Two spaces; Escape then Tab leaves the editor (keyboard users are not trapped).
                  e.preventDefault();
                  const el = e.target as HTMLTextAreaElement;
                  const at = el.selectionStart;
                  setText(text.slice(0, at) + "  " + text.slice(el.selectionEnd));
                  requestAnimationFrame(() => el.setSelectionRange(at + 2, at + 2));
                } else if (e.key === "Escape") (e.target as HTMLTextAreaElement).blur();
              }}
            />
          </div>
          <div id="problems" class="problems" aria-live="polite">
            {valid === null ? (
              <p class="muted">Checking…</p>
            ) : valid ? (
              <p class="ok">Valid.</p>
            ) : (
              <ul aria-label="Problems">
                {problems.map((p, i) => (
                  <li key={i} class="problem" data-line={p.line ?? ""}>
                    {p.line ? (
                      <button type="button" class="link" onClick={() => goToLine(p.line!)}>
                        line {p.line}
                      </button>
                    ) : (
                      <span>document</span>
                    )}
                    : {p.error}
                  </li>
                ))}
              </ul>
            )}
          </div>
        </div>
        <div class="side">
          <div class="tabs" role="tablist" aria-label="Workflow views">
            {(["graph", "revisions", "run"] as const).map((p) => (
              <button type="button" role="tab" key={p} aria-selected={panel === p} class={panel === p ? "tab active" : "tab"} onClick={() => setPanel(p)} disabled={!id && p !== "graph"}>
                {p === "graph" ? "Graph" : p === "revisions" ? "Revisions" : "Run"}
              </button>
            ))}
          </div>
          {panel === "graph" && <Graph nodes={shape} views={new Map(shape.map((n) => [n.id, { ...STATIC_VIEW, text: n.type ?? "" }]))} label="Workflow graph" />}
          {panel === "revisions" && id && workflow && <Revisions id={id} current={workflow} editor={editor} onRestored={() => load()} />}
          {panel === "run" && id && workflow && <RunForm workflow={workflow} session={session} />}
        </div>
      </div>
    </Page>
  );
}

function lineDiff(a: string[], b: string[]): { sign: " " | "-" | "+"; text: string }[] {
  // Longest common subsequence over lines (documents are small).
  const n = a.length;
  const m = b.length;
  const table: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  const out: { sign: " " | "-" | "+"; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) out.push({ sign: " ", text: a[i++] }), j++;
    else if (table[i + 1][j] >= table[i][j + 1]) out.push({ sign: "-", text: a[i++] });
    else out.push({ sign: "+", text: b[j++] });
  }
  while (i < n) out.push({ sign: "-", text: a[i++] });
  while (j < m) out.push({ sign: "+", text: b[j++] });
  return out;
}

function Revisions(props: { id: string; current: Workflow; editor: boolean; onRestored: () => void }) {
  const { data, error, reload } = useLoad(() => get<{ items: Revision[] }>(`/v1/workflows/${props.id}/revisions`), [props.id, props.current.version]);
  const [diff, setDiff] = useState<{ version: number; lines: ReturnType<typeof lineDiff> } | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const show = async (version: number) => {
    const rev = await get<{ document: unknown }>(`/v1/workflows/${props.id}/revisions/${version}`);
    const before = JSON.stringify(rev.document, null, 2).split("\n");
    const after = JSON.stringify(props.current.document, null, 2).split("\n");
    setDiff({ version, lines: lineDiff(before, after) });
  };
  const restore = async (version: number) => {
    setFailure(null);
    try {
      await call(`/v1/workflows/${props.id}/revisions/${version}/restore`, { method: "POST", json: {}, headers: { "If-Match": `"${props.current.version}"` } });
      props.onRestored();
      reload();
    } catch (e) {
      setFailure(e);
    }
  };
  return (
    <div>
      <ErrorNote error={error ?? failure} />
      <Table
        label="Revisions"
        rows={[...(data?.items ?? [])].sort((a, b) => b.version - a.version)}
        rowKey={(r) => String(r.version)}
        columns={[
          { title: "Version", cell: (r) => r.version },
          { title: "Saved", cell: (r) => when(r.createdAtMs) },
          { title: "By", cell: (r) => r.createdBy ?? "" },
          {
            title: "",
            cell: (r) => (
              <>
                <button type="button" onClick={() => show(r.version)}>
                  Diff with current
                </button>
                {props.editor && r.version !== props.current.version && (
                  <button type="button" onClick={() => restore(r.version)}>
                    Restore
                  </button>
                )}
              </>
            ),
          },
        ]}
      />
      {diff && (
        <div>
          <h3>
            Version {diff.version} → current ({props.current.version})
          </h3>
          <pre class="json diff">
            {diff.lines.map((l, i) => (
              <div key={i} class={l.sign === "+" ? "add" : l.sign === "-" ? "del" : ""}>
                {l.sign} {l.text}
              </div>
            ))}
          </pre>
        </div>
      )}
    </div>
  );
}

function RunForm({ workflow, session }: { workflow: Workflow; session: Session }) {
  const [error, setError] = useState<unknown>(null);
  if (!can(session, "executor")) return <p class="muted">Your role cannot start runs.</p>;
  const start = async (input: unknown) => {
    setError(null);
    try {
      const run = (await call<{ runId: string }>(`/v1/workflows/${workflow.id}/runs`, { method: "POST", json: { input } })).data;
      navigate(`/runs/${run.runId}`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <ErrorNote error={error} />
      <InputForm schema={workflow.document.inputs} onSubmit={start} submitLabel="Start run" />
    </div>
  );
}

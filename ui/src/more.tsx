// The reference pages: connector catalogue, schedules, triggers, credentials (write-only),
// KV and the audit log. Each is a thin view of one /v1 listing.
import { useState } from "preact/hooks";
import { call, can, get, qs, type Session } from "./api";
import { ErrorNote, Json, Page, StateBadge, Table, useLoad, when } from "./common";

interface Connector {
  type: string;
  name: string;
  category: string;
  description: string;
}

export function CataloguePage() {
  const [q, setQ] = useState("");
  const { data, error } = useLoad(() => get<{ items: Connector[] }>(`/v1/connectors${qs({ q })}`), [q]);
  const [open, setOpen] = useState<string | null>(null);
  const detail = useLoad(() => (open ? get<unknown>(`/v1/connectors/${open}`) : Promise.resolve(null)), [open]);
  return (
    <Page title="Connector catalogue">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorNote error={error} />
      <Table
        label="Connectors"
        rows={data?.items ?? []}
        rowKey={(c) => c.type}
        columns={[
          {
            title: "Type",
            cell: (c) => (
              <button type="button" class="link" onClick={() => setOpen(open === c.type ? null : c.type)} aria-expanded={open === c.type}>
                {c.type}
              </button>
            ),
          },
          { title: "Category", cell: (c) => c.category },
          { title: "Description", cell: (c) => c.description },
        ]}
      />
      {open && detail.data != null && (
        <section class="card" aria-label={`Connector ${open}`}>
          <h2>{open}</h2>
          <Json value={detail.data} />
        </section>
      )}
    </Page>
  );
}

interface Schedule {
  id: string;
  namespace: string;
  workflowId: string;
  name: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  nextFireAtMs: number | null;
  lastFiredSlotMs: number | null;
}

export function SchedulesPage({ session }: { session: Session }) {
  const { data, error, reload } = useLoad(() => get<{ items: Schedule[] }>("/v1/schedules?limit=200"), []);
  const [failure, setFailure] = useState<unknown>(null);
  const act = async (path: string, method: string, json?: unknown) => {
    setFailure(null);
    try {
      await call(path, { method, json });
      reload();
    } catch (e) {
      setFailure(e);
    }
  };
  if (!can(session, "editor")) return <Page title="Schedules"><p class="muted">Schedules need the editor role.</p></Page>;
  return (
    <Page title="Schedules">
      <ErrorNote error={error ?? failure} />
      <Table
        label="Schedules"
        rows={data?.items ?? []}
        rowKey={(s) => s.id}
        empty="No schedules."
        columns={[
          { title: "Name", cell: (s) => s.name },
          { title: "Workflow", cell: (s) => <a href={`#/workflows/${s.workflowId}`}>{s.workflowId.slice(-12)}</a> },
          { title: "Cron", cell: (s) => <code>{s.cron}</code> },
          { title: "Zone", cell: (s) => s.timezone },
          { title: "Enabled", cell: (s) => (s.enabled ? "yes" : "no") },
          { title: "Next", cell: (s) => when(s.nextFireAtMs) },
          {
            title: "",
            cell: (s) => (
              <>
                <button type="button" onClick={() => act(`/v1/schedules/${s.id}/trigger`, "POST", {})}>
                  Run now
                </button>
                <button type="button" onClick={() => act(`/v1/schedules/${s.id}`, "PATCH", { enabled: !s.enabled })}>
                  {s.enabled ? "Pause" : "Enable"}
                </button>
              </>
            ),
          },
        ]}
      />
    </Page>
  );
}

interface Trigger {
  id: string;
  namespace: string;
  workflowId: string | null;
  key: string;
  url: string;
  kind: string;
  enabled: boolean;
  hasSecret: boolean;
}

export function TriggersPage({ session }: { session: Session }) {
  const { data, error } = useLoad(() => (can(session, "editor") ? get<{ items: Trigger[] }>("/v1/triggers?limit=200") : Promise.resolve({ items: [] })), []);
  if (!can(session, "editor")) return <Page title="Triggers"><p class="muted">Triggers need the editor role.</p></Page>;
  return (
    <Page title="Webhook triggers">
      <ErrorNote error={error} />
      <Table
        label="Triggers"
        rows={data?.items ?? []}
        rowKey={(t) => t.id}
        empty="No triggers."
        columns={[
          { title: "Key", cell: (t) => <code>{t.key}</code> },
          { title: "Kind", cell: (t) => t.kind },
          { title: "Namespace", cell: (t) => t.namespace },
          { title: "URL", cell: (t) => <code>{t.url}</code> },
          { title: "Signed", cell: (t) => (t.hasSecret ? "yes" : "no") },
          { title: "Enabled", cell: (t) => (t.enabled ? "yes" : "no") },
        ]}
      />
    </Page>
  );
}

interface Credential {
  id: string;
  namespace: string;
  name: string;
  type: string;
  description: string | null;
  version: number;
  updatedAtMs: number;
}

export function CredentialsPage({ session }: { session: Session }) {
  const admin = can(session, "admin");
  const { data, error, reload } = useLoad(() => (admin ? get<{ items: Credential[] }>("/v1/credentials?limit=200") : Promise.resolve({ items: [] })), []);
  const [form, setForm] = useState({ namespace: "default", name: "", type: "secret", value: "" });
  const [failure, setFailure] = useState<unknown>(null);
  if (!admin) return <Page title="Credentials"><p class="muted">Credentials need the admin role.</p></Page>;
  const create = async (e: Event) => {
    e.preventDefault();
    setFailure(null);
    try {
      await call("/v1/credentials", { method: "POST", json: form });
      setForm({ ...form, name: "", value: "" });
      reload();
    } catch (err) {
      setFailure(err);
    }
  };
  const field = (name: keyof typeof form, label: string, type: "text" | "password" = "text") => (
    <label>
      {label}
      {type === "password" ? (
        <input type="password" value={form[name]} required autoComplete="new-password" onInput={(e) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value })} />
      ) : (
        <input type="text" value={form[name]} required autoComplete="off" onInput={(e) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value })} />
      )}
    </label>
  );
  return (
    <Page title="Credentials">
      <p class="muted">Values are write-only: the API never returns them.</p>
      <ErrorNote error={error ?? failure} />
      <Table
        label="Credentials"
        rows={data?.items ?? []}
        rowKey={(c) => c.id}
        empty="No credentials."
        columns={[
          { title: "Name", cell: (c) => c.name },
          { title: "Namespace", cell: (c) => c.namespace },
          { title: "Type", cell: (c) => c.type },
          { title: "Version", cell: (c) => c.version },
          { title: "Updated", cell: (c) => when(c.updatedAtMs) },
        ]}
      />
      <form class="card" onSubmit={create} aria-labelledby="new-credential">
        <h2 id="new-credential">New credential</h2>
        {field("namespace", "Namespace")}
        {field("name", "Name")}
        {field("type", "Type")}
        {field("value", "Value (write-only)", "password")}
        <button type="submit">Store credential</button>
      </form>
    </Page>
  );
}

interface KVEntry {
  key: string;
  value: unknown;
  version: number;
  updatedAtMs: number;
}

export function KVPage({ session }: { session: Session }) {
  const [namespace, setNamespace] = useState(session.me.namespaces?.[0] ?? "default");
  const [prefix, setPrefix] = useState("");
  const { data, error } = useLoad(() => get<{ items: KVEntry[] }>(`/v1/kv/${encodeURIComponent(namespace || "default")}${qs({ prefix, limit: 200 })}`), [namespace, prefix]);
  return (
    <Page title="Key-value store">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Namespace
          <input value={namespace} onInput={(e) => setNamespace((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Prefix
          <input value={prefix} onInput={(e) => setPrefix((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorNote error={error} />
      <Table
        label="Keys"
        rows={data?.items ?? []}
        rowKey={(k) => k.key}
        empty="No keys."
        columns={[
          { title: "Key", cell: (k) => <code>{k.key}</code> },
          { title: "Value", cell: (k) => <code>{JSON.stringify(k.value)}</code> },
          { title: "Version", cell: (k) => k.version },
          { title: "Updated", cell: (k) => when(k.updatedAtMs) },
        ]}
      />
    </Page>
  );
}

interface AuditEntry {
  id: number;
  tsMs: number;
  actor: string;
  action: string;
  namespace: string | null;
  targetType: string;
  targetId: string;
  details: unknown;
}

export function AuditPage({ session }: { session: Session }) {
  const admin = can(session, "admin");
  const [action, setAction] = useState("");
  const { data, error } = useLoad(() => (admin ? get<{ items: AuditEntry[] }>(`/v1/audit${qs({ action, limit: 200 })}`) : Promise.resolve({ items: [] })), [action]);
  if (!admin) return <Page title="Audit log"><p class="muted">The audit log needs the admin role.</p></Page>;
  return (
    <Page title="Audit log">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Action
          <input value={action} placeholder="e.g. workflow.update" onInput={(e) => setAction((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorNote error={error} />
      <Table
        label="Audit entries"
        rows={data?.items ?? []}
        rowKey={(a) => String(a.id)}
        columns={[
          { title: "When", cell: (a) => when(a.tsMs) },
          { title: "Who", cell: (a) => a.actor },
          { title: "Action", cell: (a) => <StateBadge state={a.action} /> },
          { title: "Target", cell: (a) => `${a.targetType} ${a.targetId}` },
          { title: "Namespace", cell: (a) => a.namespace ?? "" },
        ]}
      />
    </Page>
  );
}

// The shell: sign-in, navigation and the fragment router (#/runs, #/runs/ID, ...).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { can, errorText, loadSession, saveSession, setToken, setUnauthorizedHandler, signIn, type Session } from "./api";
import { ApprovalsPage } from "./approvals";
import { AuditPage, CataloguePage, CredentialsPage, KVPage, SchedulesPage, TriggersPage } from "./more";
import { RunPage } from "./run";
import { RunsPage } from "./runs";
import { EditorPage, WorkflowsPage } from "./workflows";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const update = () => setHash(location.hash);
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return hash;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<"key" | "password">("key");
  const [key, setKey] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      onSignedIn(await signIn(mode === "key" ? { key } : { username, password }));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Flowplane</h1>
        <fieldset>
          <legend>With</legend>
          <label class="choice">
            <input type="radio" name="mode" checked={mode === "key"} onChange={() => setMode("key")} /> an API key
          </label>
          <label class="choice">
            <input type="radio" name="mode" checked={mode === "password"} onChange={() => setMode("password")} /> a username and password
          </label>
        </fieldset>
        {mode === "key" ? (
          <label>
            API key
            <input type="password" autoComplete="off" value={key} required placeholder="fp_…" onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
          </label>
        ) : (
          <>
            <label>
              Username
              <input autoComplete="username" value={username} required onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Password
              <input type="password" autoComplete="current-password" value={password} required onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
            </label>
          </>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        <p class="muted">
          The API itself is described at <a href="/docs">/docs</a>.
        </p>
      </form>
    </main>
  );
}

const NAV: { hash: string; label: string; role?: "editor" | "admin" }[] = [
  { hash: "#/runs", label: "Runs" },
  { hash: "#/approvals", label: "Approvals" },
  { hash: "#/workflows", label: "Workflows" },
  { hash: "#/catalogue", label: "Catalogue" },
  { hash: "#/schedules", label: "Schedules", role: "editor" },
  { hash: "#/triggers", label: "Triggers", role: "editor" },
  { hash: "#/credentials", label: "Credentials", role: "admin" },
  { hash: "#/kv", label: "KV" },
  { hash: "#/audit", label: "Audit", role: "admin" },
];

function Route({ hash, session }: { hash: string; session: Session }) {
  const [path] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  switch (parts[0] ?? "runs") {
    case "runs":
      return parts[1] ? <RunPage id={decodeURIComponent(parts[1])} session={session} /> : <RunsPage key={hash} initial={new URLSearchParams(hash.split("?")[1] ?? "")} />;
    case "approvals":
      return <ApprovalsPage session={session} />;
    case "workflows":
      if (!parts[1]) return <WorkflowsPage session={session} />;
      return <EditorPage id={parts[1] === "new" ? null : decodeURIComponent(parts[1])} session={session} />;
    case "catalogue":
      return <CataloguePage />;
    case "schedules":
      return <SchedulesPage session={session} />;
    case "triggers":
      return <TriggersPage session={session} />;
    case "credentials":
      return <CredentialsPage session={session} />;
    case "kv":
      return <KVPage session={session} />;
    case "audit":
      return <AuditPage session={session} />;
    default:
      return <p>Nothing at {hash}.</p>;
  }
}

function App() {
  const [session, setSession] = useState<Session | null>(() => {
    const s = loadSession();
    if (s) setToken(s.token);
    return s;
  });
  const hash = useHash();
  const signOut = () => {
    saveSession(null);
    setToken("");
    setSession(null);
  };
  useEffect(() => setUnauthorizedHandler(signOut), []);
  if (!session) {
    return (
      <SignIn
        onSignedIn={(s) => {
          saveSession(s);
          setToken(s.token);
          setSession(s);
        }}
      />
    );
  }
  const section = `#/${hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "runs"}`;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/runs">
          Flowplane
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.role || can(session, n.role)).map((n) => (
              <li key={n.hash}>
                <a href={n.hash} aria-current={section === n.hash ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
            <li>
              <a href="/docs">API</a>
            </li>
          </ul>
        </nav>
        <div class="who" data-testid="who">
          <span class="name" title={session.me.name}>
            {session.me.name}
          </span>{" "}
          · <span data-testid="role">{session.me.role}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Route hash={hash} session={session} />
      </main>
    </>
  );
}

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading" line of index.html
render(<App />, root);

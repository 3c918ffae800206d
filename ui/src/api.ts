// The /v1 API with the signed-in user's token: the UI's only way to the server.

export type Role = "viewer" | "executor" | "editor" | "admin";
const RANK: Record<Role, number> = { viewer: 0, executor: 1, editor: 2, admin: 3 };

export interface Me {
  id: string;
  kind: string;
  name: string;
  role: Role;
  namespaces: string[] | null;
}

export interface Session {
  token: string;
  me: Me;
}

const STORE_KEY = "flowplane.session";

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORE_KEY);
}

/** Whether the session's role is at least `role` (the API checks again). */
export function can(session: Session | null, role: Role): boolean {
  return !!session && RANK[session.me.role] >= RANK[role];
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body: unknown,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

let currentToken = "";
export function setToken(token: string): void {
  currentToken = token;
}
export function token(): string {
  return currentToken;
}

export interface CallOptions {
  method?: string;
  json?: unknown;
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
  auth?: string | null;
}

export interface Answer<T> {
  data: T;
  headers: Headers;
  status: number;
}

export async function call<T = unknown>(path: string, options: CallOptions = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = { Accept: "application/json", ...(options.headers ?? {}) };
  const auth = options.auth === undefined ? currentToken : options.auth;
  if (auth) headers.Authorization = `Bearer ${auth}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["Content-Type"] = "application/json";
  } else if (options.text !== undefined) {
    body = options.text;
    headers["Content-Type"] = options.contentType ?? "application/yaml";
  }
  const response = await fetch(path, { method: options.method ?? (body ? "POST" : "GET"), headers, body });
  const type = response.headers.get("content-type") ?? "";
  const data = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const problem = (data ?? {}) as { code?: string; detail?: string; title?: string };
    if (response.status === 401 && auth) onUnauthorized();
    throw new ApiError(
      response.status,
      problem.code ?? String(response.status),
      problem.detail ?? problem.title ?? response.statusText,
      data,
    );
  }
  return { data: data as T, headers: response.headers, status: response.status };
}

export async function get<T = unknown>(path: string): Promise<T> {
  return (await call<T>(path)).data;
}

export async function post<T = unknown>(path: string, json: unknown = {}): Promise<T> {
  return (await call<T>(path, { method: "POST", json })).data;
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") search.set(k, String(v));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Sign in with an API key (checked with /v1/auth/me) or a username and password. */
export async function signIn(credential: { key: string } | { username: string; password: string }): Promise<Session> {
  let tokenValue: string;
  if ("key" in credential) {
    tokenValue = credential.key.trim();
  } else {
    const login = await call<{ accessToken: string }>("/v1/auth/login", {
      method: "POST",
      json: { username: credential.username, password: credential.password },
      auth: null,
    });
    tokenValue = login.data.accessToken;
  }
  const me = await call<Me>("/v1/auth/me", { auth: tokenValue });
  return { token: tokenValue, me: me.data };
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

// A run's server-sent events over fetch (EventSource cannot send the Authorization header),
// resuming after a dropped connection with Last-Event-ID, as the API documents.

export interface RunEvent {
  type: string;
  runId: string;
  seq: number;
  timestampMs: number;
  nodeId?: string;
  iteration?: number;
  status?: string;
  attempt?: number;
  [key: string]: unknown;
}

const TERMINAL = new Set(["RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"]);

export type StreamState = "connecting" | "live" | "reconnecting" | "ended";

export interface FollowOptions {
  url: string;
  token: string;
  afterSeq?: number;
  onEvents: (events: RunEvent[]) => void;
  onState: (state: StreamState) => void;
}

/** Follow `url` until the server ends the stream after the run's terminal event (or stop()). */
export function followEvents(options: FollowOptions): () => void {
  const controller = new AbortController();
  let lastId = options.afterSeq ? String(options.afterSeq) : "";
  let retryMs = 1000;
  let stopped = false;

  async function once(): Promise<boolean> {
    const headers: Record<string, string> = { Authorization: `Bearer ${options.token}`, Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(options.url, { headers, signal: controller.signal });
    if (response.status === 401 || response.status === 403 || response.status === 404) return true;
    if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
    options.onState("live");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let id = "";
    let data: string[] = [];
    let sawTerminal = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return sawTerminal; // the server closes after the terminal event
      buffer += decoder.decode(value, { stream: true });
      const batch: RunEvent[] = [];
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (data.length) {
            try {
              batch.push(JSON.parse(data.join("\n")) as RunEvent);
            } catch {
              /* not an event */
            }
            if (id) lastId = id;
          }
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") id = text;
        else if (field === "data") data.push(text);
        else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
      }
      if (batch.some((e) => TERMINAL.has(e.type))) sawTerminal = true;
      if (batch.length) options.onEvents(batch);
    }
  }

  (async () => {
    options.onState("connecting");
    while (!stopped) {
      try {
        if (await once()) break;
      } catch {
        if (stopped) break;
      }
      options.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
    if (!stopped) options.onState("ended");
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}

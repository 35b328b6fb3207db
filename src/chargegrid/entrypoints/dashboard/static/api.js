// The REST API with the operator's bearer token, and the live event stream.

const API = "/api/v1";
const KEY = "chargegrid.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

export async function api(path, { method = "GET", json, body, headers = {}, signal } = {}) {
  if (!session.token) throw new ApiError(401, { detail: "logged out" });  // e.g. a late refresh
  const init = { method, headers: { ...headers, Authorization: `Bearer ${session.token}` }, signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(API + path, init);
  const type = response.headers.get("content-type") || "";
  const data = response.status === 204 ? null
    : type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("chargegrid:unauthorized"));
    throw new ApiError(response.status, typeof data === "object" ? data : { detail: data });
  }
  return data;
}

export const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, v);
  const text = s.toString();
  return text ? `?${text}` : "";
};

/**
 * Read a Server-Sent Events stream with fetch (EventSource cannot send the Authorization
 * header) and call onEvent({type, id, data}) for each event. Reconnects after a drop with
 * Last-Event-ID, so nothing still kept by the node is missed; the node answers `event: reset`
 * when it no longer has what was missed. Returns a function that stops it.
 */
export function stream(path, { onEvent, onState = () => {}, retryMs = 2000 }) {
  let stopped = false;
  let lastId = null;
  let controller = null;

  async function once() {
    if (!session.token) throw new ApiError(401, null);
    controller = new AbortController();
    const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(API + path, { headers, signal: controller.signal });
    if (!response.ok) {
      if (response.status === 401) window.dispatchEvent(new CustomEvent("chargegrid:unauthorized"));
      throw new ApiError(response.status, null);
    }
    onState("on");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {  // blank line: dispatch (WHATWG HTML 9.2.6)
          if (event.id !== null) lastId = event.id;
          if (event.data.length) {
            let data = event.data.join("\n");
            try { data = JSON.parse(data); } catch { /* not JSON: keep the text */ }
            onEvent({ type: event.type, id: event.id, data });
          }
          event = { type: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue;  // a comment (keep-alive)
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (name === "event") event.type = val;
        else if (name === "data") event.data.push(val);
        else if (name === "id") event.id = val;
        else if (name === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
          onState("off", err);
          return;
        }
      }
      if (stopped) return;
      onState("retry");
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return () => { stopped = true; controller?.abort(); onState("off"); };
}

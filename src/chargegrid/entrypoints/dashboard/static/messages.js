// The OCPP message log of a station: the latest frames, then new ones as they pass
// (GET .../messages, newest first, and the SSE stream .../messages/stream). A node without
// the log answers 404: the panel says so and stays quiet.

import { api, ApiError, q, stream } from "./api.js";
import { clear, h, time } from "./ui.js";

const KEEP = 500;

function line(m) {
  const dir = m.direction === "in" || m.direction === "received" ? "in" : "out";
  let payload = m.payload;
  if (typeof payload !== "string") payload = JSON.stringify(payload);
  return h(`div.${dir}`, { "data-id": m.id },
    `${time(m.at)} ${dir === "in" ? "←" : "→"} ${m.action || m.message_type || ""} `,
    m.unique_id ? `[${m.unique_id}] ` : "", payload ?? "", m.truncated ? " …(truncated)" : "");
}

export async function logPanel(el, path) {
  const log = h("div.log", { role: "log", "aria-label": "OCPP messages", "data-testid": "message-log" });
  clear(el, h("h2", {}, "OCPP message log"), log);
  let page;
  try {
    page = await api(`${path}/messages${q({ limit: 100 })}`);
  } catch (err) {
    clear(log, err instanceof ApiError && err.status === 404
      ? "message log not available" : `message log not available (${err.message})`);
    log.dataset.available = "false";
    return null;
  }
  log.dataset.available = "true";
  const items = Array.isArray(page) ? page : page.items || [];
  clear(log, items.slice().reverse().map(line));
  log.scrollTop = log.scrollHeight;
  return stream(`${path.replace("/api/v1", "")}/messages/stream`, {
    onEvent: ({ type, data }) => {
      if (type !== "message" || typeof data !== "object") return;
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(line(data));
      while (log.childElementCount > KEEP) log.firstElementChild.remove();
      if (atEnd) log.scrollTop = log.scrollHeight;
    },
  });
}

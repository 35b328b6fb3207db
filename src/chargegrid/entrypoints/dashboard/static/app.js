// The dashboard's shell: log in, the live event stream, and a view per route (#/...).

import { api, session, stream } from "./api.js";
import { clear, h } from "./ui.js";
import * as overview from "./overview.js";
import * as station from "./station.js";
import * as transactions from "./transactions.js";
import * as tokens from "./tokens.js";
import * as map from "./map.js";
import * as settings from "./settings.js";

const RANK = { viewer: 0, operator: 1, admin: 2 };
const $ = (id) => document.getElementById(id);

const routes = [
  [/^#?\/?$/, overview.renderOverview],
  [/^#\/stations$/, overview.renderStations],
  [/^#\/stations\/(.+)$/, station.render],
  [/^#\/map$/, map.render],
  [/^#\/transactions$/, transactions.renderList],
  [/^#\/transactions\/(\d+)$/, transactions.renderDetail],
  [/^#\/tokens$/, tokens.render],
  [/^#\/settings$/, settings.render],
];

/** What every view gets: who is logged in, and the live events. */
const ctx = {
  me: null,
  listeners: new Set(),
  can(role) { return RANK[this.me?.role] >= RANK[role]; },
  /** Call fn(event) for each live event of the given types ("*": all; "reset": reload). */
  on(types, fn) {
    const wanted = new Set([].concat(types));
    const listener = (e) => { if (wanted.has("*") || wanted.has(e.type)) fn(e); };
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  },
  emit(event) {
    for (const listener of [...this.listeners]) {
      try { listener(event); } catch (err) { console.error(err); }
    }
  },
};

let stopStream = null;
let cleanup = null;

function liveState(state) {
  const el = $("live");
  el.dataset.state = state;
  el.textContent = state === "on" ? "live" : state === "retry" ? "reconnecting" : "offline";
}

let generation = 0;  // which show() is current: a slower, older render is undone when it ends

async function show() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  ctx.listeners.clear();
  const view = h("div");
  $("view").replaceChildren(view);
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("#nav a")) {
    const href = a.getAttribute("href");
    a.classList.toggle("active", href === hash || (href !== "#/" && hash.startsWith(href + "/")));
  }
  for (const [pattern, renderView] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    const params = match.slice(1).map(decodeURIComponent);
    let done = null;
    try {
      done = (await renderView(view, params, ctx)) || null;
    } catch (err) {
      view.append(h("p.error", { role: "alert" }, `Could not load this page: ${err.message}`));
    }
    if (mine === generation) cleanup = done;
    else if (done) done();
    return;
  }
  view.append(h("p", {}, "No such page. ", h("a", { href: "#/" }, "Overview")));
}

async function start() {
  ctx.me = await api("/me");
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${ctx.me.name} (${ctx.me.role})`;
  document.body.dataset.role = ctx.me.role;
  stopStream = stream("/events", { onEvent: (e) => ctx.emit(e), onState: liveState });
  window.addEventListener("hashchange", show);
  await show();
}

function logout(message = "") {
  session.token = null;
  generation += 1;  // a render still loading is undone when it ends
  if (stopStream) stopStream();
  if (cleanup) { try { cleanup(); } catch { /* leaving anyway */ } cleanup = null; }
  window.removeEventListener("hashchange", show);
  ctx.me = null;
  ctx.listeners.clear();
  clear($("view"));
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  session.token = $("token").value.trim();
  try {
    await start();
  } catch (err) {
    logout(err.status === 401 ? "This token is not valid." : `Cannot log in: ${err.message}`);
  }
});
$("logout").addEventListener("click", () => logout());
window.addEventListener("chargegrid:unauthorized", () => {
  if (ctx.me) logout("Your token is no longer valid: log in again.");
});

if (session.token) {
  start().catch(() => logout("Log in again."));
} else {
  logout();
}

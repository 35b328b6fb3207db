// The network at a glance, and the station list kept up to date by the live events.

import { api, q } from "./api.js";
import { badge, clear, field, h, kw, kwh, select, throttle, time } from "./ui.js";

function localMidnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}

function tile(label, id, sub = "") {
  return h("div.tile", {},
    h("div.label", {}, label),
    h("div.value", { "data-testid": id }, "…"),
    h("div.sub", { "data-testid": `${id}-sub` }, sub));
}

export async function renderOverview(view, _params, ctx) {
  const tiles = h("section.tiles", { "aria-label": "Network at a glance" },
    tile("Stations", "stations-total"),
    tile("Online", "stations-online"),
    tile("Offline", "stations-offline"),
    tile("Active transactions", "active-transactions"),
    tile("Power now", "power-now"),
    tile("Energy today", "energy-today", "since local midnight"),
    tile("Connectors", "connectors"));
  view.append(h("h1", {}, "Overview"), tiles);

  const set = (id, text, sub) => {
    tiles.querySelector(`[data-testid="${id}"]`).textContent = text;
    if (sub !== undefined) tiles.querySelector(`[data-testid="${id}-sub"]`).textContent = sub;
  };
  let asked = 0;  // refreshes may overlap: an older answer never overwrites a newer one
  let shown = 0;
  async function refresh() {
    const mine = ++asked;
    const o = await api(`/overview${q({ since: localMidnight() })}`);
    if (mine < shown) return;
    shown = mine;
    const reg = Object.entries(o.stations_by_registration).map(([k, v]) => `${v} ${k}`).join(", ");
    set("stations-total", o.stations, reg || "none yet");
    set("stations-online", o.stations_online);
    set("stations-offline", o.stations_offline);
    set("active-transactions", o.active_transactions);
    set("power-now", kw(o.power_w));
    tiles.querySelector('[data-testid="power-now"]').dataset.watts = o.power_w;
    set("energy-today", kwh(o.energy_today_wh));
    const connectors = Object.entries(o.connectors_by_status);
    set("connectors", connectors.reduce((n, [, v]) => n + v, 0),
      connectors.map(([k, v]) => `${v} ${k}`).join(", ") || "none reported");
  }
  const later = throttle(() => refresh().catch(() => {}), 1000);
  await refresh();
  const stop = [ctx.on("*", later)];
  const timer = setInterval(later, 30000);

  view.append(h("h2", {}, "Stations"));
  const table = await stationTable(view, ctx, {});
  return () => { stop.forEach((f) => f()); clearInterval(timer); table(); };
}

export async function renderStations(view, _params, ctx) {
  view.append(h("h1", {}, "Stations"));
  const registration = select("registration", ["", "Accepted", "Pending", "Rejected"], "");
  const holder = h("div");
  let stop = null;
  async function load() {
    if (stop) stop();
    clear(holder);
    stop = await stationTable(holder, ctx, { registration: registration.value });
  }
  registration.addEventListener("change", load);
  view.append(h("form.inline", { onsubmit: (e) => e.preventDefault() },
    field("Registration", registration)), holder);
  if (ctx.can("operator")) view.append(registerForm(ctx, load));
  await load();
  return () => stop && stop();
}

function registerForm(ctx, reload) {
  const id = h("input", { name: "id", required: true, maxlength: 48 });
  const lat = h("input", { name: "latitude", type: "number", step: "any", min: -90, max: 90 });
  const lon = h("input", { name: "longitude", type: "number", step: "any", min: -180, max: 180 });
  const out = h("p", { role: "status" });
  return h("section.card", {},
    h("h2", {}, "Register a station"),
    h("form.inline", {
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { id: id.value.trim() };
        if (lat.value !== "" && lon.value !== "") {
          body.latitude = Number(lat.value);
          body.longitude = Number(lon.value);
        }
        try {
          await api("/stations", { method: "POST", json: body });
          out.textContent = `Registered ${body.id}.`;
          id.value = "";
          await reload();
        } catch (err) { out.textContent = `Not registered: ${err.message}`; }
      },
    }, field("Station id", id), field("Latitude", lat), field("Longitude", lon),
    h("button", { type: "submit" }, "Register")),
    out);
}

/** A table of stations (first page of 50) that follows the live events; returns its stop. */
export async function stationTable(container, ctx, filters) {
  const rows = new Map();  // id -> {station, connectors: Map("evse/conn" -> status)}
  const body = h("tbody");
  const table = h("table", { "aria-label": "Stations" },
    h("thead", {}, h("tr", {},
      ["Station", "Registration", "Connection", "Connectors", "Vendor / model", "Last seen"]
        .map((t) => h("th", { scope: "col" }, t)))),
    body);
  const note = h("p.muted");
  let more = false;
  container.append(table, note);

  function render(id) {
    const entry = rows.get(id);
    const s = entry.station;
    const connectors = [...entry.connectors.entries()]
      .filter(([key]) => !key.endsWith("/0"))
      .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
    const tr = h("tr.clickable", {
      "data-testid": `station-${s.id}`,
      "data-connected": String(s.connected),
      onclick: () => { location.hash = `#/stations/${encodeURIComponent(s.id)}`; },
    },
    h("td", {}, h("a", { href: `#/stations/${encodeURIComponent(s.id)}` }, s.id)),
    h("td", {}, badge(s.registration)),
    h("td", { "data-testid": "connection" },
      s.connected ? badge("online") : badge("offline")),
    h("td", { "data-testid": "connectors" }, connectors.length
      ? connectors.map(([key, c]) => badge(`${key.split("/").pop()}: ${c.status}`, c.status))
      : h("span.muted", {}, "—")),
    h("td", {}, [s.vendor, s.model].filter(Boolean).join(" ") || "—"),
    h("td", {}, time(s.last_seen)));
    const old = entry.tr;
    entry.tr = tr;
    note.textContent = more ? "The first 50 stations are shown." : "";
    if (old && old.parentNode) old.replaceWith(tr);
    else {
      const after = [...rows.keys()].sort().find((k) => k > id && rows.get(k).tr?.parentNode);
      body.insertBefore(tr, after ? rows.get(after).tr : null);
    }
  }

  async function loadOne(id) {
    const detail = await api(`/stations/${encodeURIComponent(id)}`);
    if (filters.registration && detail.station.registration !== filters.registration) {
      rows.get(id)?.tr?.remove();
      rows.delete(id);
      return;
    }
    const entry = rows.get(id) || { connectors: new Map() };
    entry.station = detail.station;
    for (const c of detail.connectors) entry.connectors.set(`${c.evse_id}/${c.connector_id}`, c);
    rows.set(id, entry);
    render(id);
  }

  async function loadAll() {
    rows.clear();
    body.replaceChildren();
    const page = await api(`/stations${q({ limit: 50, ...filters })}`);
    for (const s of page.items) rows.set(s.id, { station: s, connectors: new Map() });
    for (const s of page.items) render(s.id);
    more = Boolean(page.next_cursor);
    note.textContent = more ? "The first 50 stations are shown." : "";
    if (!page.items.length) note.textContent = "No stations.";
    await Promise.all(page.items.map((s) => loadOne(s.id).catch(() => {})));
  }

  const unknown = (id) => !rows.has(id);
  const stops = [
    ctx.on("reset", () => loadAll().catch(() => {})),
    ctx.on(["station.online", "station.offline"], ({ type, data }) => {
      if (unknown(data.station_id)) { loadOne(data.station_id).catch(() => {}); return; }
      const entry = rows.get(data.station_id);
      entry.station = { ...entry.station, connected: type === "station.online", last_seen: data.at };
      render(data.station_id);
    }),
    ctx.on(["station.booted", "station.registration"], ({ data }) => {
      loadOne(data.station_id).catch(() => {});
    }),
    ctx.on("connector.status", ({ data }) => {
      if (unknown(data.station_id)) { loadOne(data.station_id).catch(() => {}); return; }
      const entry = rows.get(data.station_id);
      entry.connectors.set(`${data.evse_id}/${data.connector_id}`, { ...data, timestamp: data.at });
      render(data.station_id);
    }),
  ];
  await loadAll();
  return () => stops.forEach((f) => f());
}

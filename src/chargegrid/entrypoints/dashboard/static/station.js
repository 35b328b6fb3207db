// A station: connectors, active transactions, the live power chart, commands with the
// station's answer, configuration editing and the OCPP message log.

import { api, ApiError } from "./api.js";
import { readingPowerW, timeChart } from "./chart.js";
import { configPanel } from "./config.js";
import { logPanel } from "./messages.js";
import { badge, clear, field, h, kw, kwh, select, time } from "./ui.js";

/** The request payload of each common command, in the station's OCPP version's own fields. */
export const payloads = {
  start: (v, connector, tag) => (v === "1.6"
    ? ["RemoteStartTransaction", { connectorId: connector, idTag: tag }]
    : ["RequestStartTransaction", {
      evseId: connector, remoteStartId: Math.floor(Math.random() * 2 ** 31),
      idToken: { idToken: tag, type: "ISO14443" },
    }]),
  stop: (v, tx) => (v === "1.6"
    ? ["RemoteStopTransaction", { transactionId: tx.id }]
    : ["RequestStopTransaction", { transactionId: tx.station_tx_id }]),
  reset: (v, hard) => (v === "1.6"
    ? ["Reset", { type: hard ? "Hard" : "Soft" }]
    : ["Reset", { type: hard ? "Immediate" : "OnIdle" }]),
  unlock: (v, evse, connector) => (v === "1.6"
    ? ["UnlockConnector", { connectorId: connector }]
    : ["UnlockConnector", { evseId: evse, connectorId: connector }]),
  availability: (v, evse, connector, operative) => {
    const status = operative ? "Operative" : "Inoperative";
    if (v === "1.6") return ["ChangeAvailability", { connectorId: connector, type: status }];
    const body = { operationalStatus: status };
    if (evse) body.evse = connector ? { id: evse, connectorId: connector } : { id: evse };
    return ["ChangeAvailability", body];
  },
};

export async function render(view, [stationId], ctx) {
  const path = `/stations/${encodeURIComponent(stationId)}`;
  const operator = !ctx.can("operator");  // true: the operator's buttons are disabled
  const state = { station: null, connectors: new Map(), active: new Map(), power: new Map() };

  const header = h("section.card", { "aria-label": "Station" });
  const answer = h("div.answer", { role: "status", "aria-live": "polite", "data-testid": "command-answer" },
    "The station's answers to commands appear here.");
  const connectorsBody = h("tbody");
  const txBody = h("tbody");
  const chartEl = h("div.chart", { "data-testid": "power-chart" });
  const powerNow = h("strong", { "data-testid": "station-power" }, "0.00 kW");
  const connector = h("input", { name: "connector", type: "number", min: 1, value: 1 });
  const tag = h("input", { name: "idTag", value: "DASHBOARD", maxlength: 20 });
  const resetKind = select("reset", ["Soft", "Hard"], "Soft");

  async function send(operation, payload) {
    answer.classList.remove("error");
    answer.textContent = `${operation}: sending…`;
    try {
      const result = await api(`${path}/commands/${operation}`, { method: "POST", json: payload });
      const status = result.response?.status;
      answer.textContent = `${operation}: ${status ?? "answered"}\n${JSON.stringify(result.response, null, 2)}`;
      answer.dataset.status = status ?? "answered";
      return result;
    } catch (err) {
      answer.classList.add("error");
      const extra = err.body?.extra ? `\n${JSON.stringify(err.body.extra, null, 2)}` : "";
      answer.textContent = `${operation}: ${err.message}${extra}`;
      answer.dataset.status = "error";
      return null;
    }
  }
  const version = () => state.station?.ocpp_version || "1.6";

  function renderHeader() {
    const s = state.station;
    clear(header,
      h("h1", {}, `Station ${s.id} `, badge(s.registration),
        h("span", { "data-testid": "station-connection" }, s.connected ? badge("online") : badge("offline"))),
      h("p.muted", {}, [s.vendor, s.model].filter(Boolean).join(" ") || "no boot notification yet",
        s.firmware_version ? `, firmware ${s.firmware_version}` : "",
        s.ocpp_version ? `, OCPP ${s.ocpp_version}` : "",
        `, last seen ${time(s.last_seen)}`,
        s.latitude !== undefined && s.latitude !== null ? `, at ${s.latitude}, ${s.longitude}` : ""),
      h("div.actions", {},
        s.registration !== "Accepted" && h("button", {
          type: "button", disabled: operator,
          onclick: () => api(`${path}/accept`, { method: "POST" }).then(reload),
        }, "Accept"),
        s.registration !== "Rejected" && h("button.secondary", {
          type: "button", disabled: operator,
          onclick: () => api(`${path}/reject`, { method: "POST" }).then(reload),
        }, "Reject")));
  }

  function renderConnectors() {
    const list = [...state.connectors.values()]
      .sort((a, b) => a.evse_id - b.evse_id || a.connector_id - b.connector_id);
    clear(connectorsBody, list.length ? list.map((c) => {
      const name = c.evse_id === 0 && c.connector_id === 0 ? "station" : `${c.evse_id}/${c.connector_id}`;
      const number = version() === "1.6" ? c.connector_id || c.evse_id : c.evse_id;
      const whole = c.evse_id === 0 && c.connector_id === 0;
      return h("tr", { "data-testid": `connector-${c.evse_id}-${c.connector_id}`, "data-status": c.status },
        h("td", {}, name),
        h("td", {}, badge(c.status)),
        h("td", {}, c.error_code && c.error_code !== "NoError" ? c.error_code : ""),
        h("td", {}, time(c.timestamp)),
        h("td.actions", {},
          !whole && h("button.secondary", {
            type: "button", disabled: operator, "aria-label": `Unlock connector ${name}`,
            onclick: () => send(...payloads.unlock(version(), c.evse_id, c.connector_id || c.evse_id)),
          }, "Unlock"),
          h("button.secondary", {
            type: "button", disabled: operator, "aria-label": `Make ${name} available`,
            onclick: () => send(...payloads.availability(version(), c.evse_id, whole ? 0 : number, true)),
          }, "Available"),
          h("button.secondary", {
            type: "button", disabled: operator, "aria-label": `Make ${name} unavailable`,
            onclick: () => send(...payloads.availability(version(), c.evse_id, whole ? 0 : number, false)),
          }, "Unavailable")));
    }) : h("tr", {}, h("td", { colspan: 5 }, h("span.muted", {}, "No status reported yet."))));
  }

  function renderTransactions() {
    const list = [...state.active.values()];
    clear(txBody, list.length ? list.map((tx) => h("tr", { "data-testid": `tx-${tx.id}` },
      h("td", {}, h("a", { href: `#/transactions/${tx.id}` }, String(tx.id))),
      h("td", {}, `${tx.evse_id}/${tx.connector_id}`),
      h("td", {}, tx.id_token || "—"),
      h("td", {}, time(tx.started_at)),
      h("td.num", {}, kwh(tx.energy_wh)),
      h("td.num", {}, state.power.has(tx.id) ? kw(state.power.get(tx.id)) : "—"),
      h("td", {}, h("button.danger", {
        type: "button", disabled: operator, "aria-label": `Stop transaction ${tx.id}`,
        onclick: () => send(...payloads.stop(version(), tx)),
      }, "Stop"))))
      : h("tr", {}, h("td", { colspan: 7 }, h("span.muted", {}, "No active transaction."))));
  }

  async function reload() {
    const detail = await api(path);
    state.station = detail.station;
    state.connectors = new Map(detail.connectors.map((c) => [`${c.evse_id}/${c.connector_id}`, c]));
    state.active = new Map();
    const readings = [];
    await Promise.all(detail.active_transactions.map(async (id) => {
      const tx = await api(`/transactions/${id}`);
      state.active.set(id, tx.transaction);
      for (const r of tx.meter_values) {
        const w = readingPowerW(r);
        if (w !== null) readings.push([Date.parse(r.timestamp) / 1000, id, w]);
      }
    }));
    // The station's power over time: at each reading, the sum of each session's latest power.
    readings.sort((a, b) => a[0] - b[0]);
    state.power = new Map();
    const times = [];
    const values = [];
    for (const [t, id, w] of readings) {
      state.power.set(id, w);
      times.push(t);
      values.push(total() / 1000);
    }
    chart.set(times, [values]);
    renderHeader();
    renderConnectors();
    renderTransactions();
    powerNow.textContent = kw(total());
  }
  const total = () => [...state.power.entries()]
    .filter(([id]) => state.active.has(id)).reduce((s, [, w]) => s + w, 0);

  view.append(
    h("p", {}, h("a", { href: "#/stations" }, "← Stations")),
    header,
    h("div.grid2", {},
      h("section.card", { "aria-label": "Connectors" },
        h("h2", {}, "Connectors"),
        h("table", {}, h("thead", {}, h("tr", {},
          ["Connector", "Status", "Error", "Since", ""].map((t) => h("th", { scope: "col" }, t)))),
        connectorsBody)),
      h("section.card", { "aria-label": "Commands" },
        h("h2", {}, "Commands"),
        h("form.inline", {
          onsubmit: (e) => {
            e.preventDefault();
            send(...payloads.start(version(), Number(connector.value), tag.value.trim()));
          },
        }, field("Connector", connector), field("Id tag", tag),
        h("button", { type: "submit", disabled: operator }, "Start")),
        h("form.inline", {
          onsubmit: (e) => { e.preventDefault(); send(...payloads.reset(version(), resetKind.value === "Hard")); },
        }, field("Reset type", resetKind), h("button.secondary", { type: "submit", disabled: operator }, "Reset")),
        answer)),
    h("section.card", { "aria-label": "Power" },
      h("h2", {}, "Power ", powerNow), chartEl),
    h("section.card", { "aria-label": "Active transactions" },
      h("h2", {}, "Active transactions"),
      h("table", {}, h("thead", {}, h("tr", {},
        ["Id", "Connector", "Id tag", "Started", "Energy", "Power", ""]
          .map((t) => h("th", { scope: "col" }, t)))), txBody)),
  );
  const chart = timeChart(chartEl, [{ label: "Power", unit: "kW", scale: "kW", color: "#1f6feb" }]);
  const configEl = h("section.card", { "aria-label": "Configuration" });
  const logEl = h("section.card", { "aria-label": "OCPP message log" });
  view.append(configEl, logEl);

  const mine = (fn) => (e) => { if (e.data?.station_id === stationId) fn(e); };
  const stops = [
    ctx.on("reset", () => reload().catch(() => {})),
    ctx.on(["station.online", "station.offline"], mine(({ type, data }) => {
      state.station = { ...state.station, connected: type === "station.online", last_seen: data.at };
      renderHeader();
    })),
    ctx.on(["station.booted", "station.registration"], mine(() => reload().catch(() => {}))),
    ctx.on("connector.status", mine(({ data }) => {
      state.connectors.set(`${data.evse_id}/${data.connector_id}`, { ...data, timestamp: data.at });
      renderConnectors();
    })),
    ctx.on("transaction.started", mine(({ data }) => {
      api(`/transactions/${data.transaction_id}`).then((tx) => {
        state.active.set(data.transaction_id, tx.transaction);
        renderTransactions();
      }).catch(() => {});
    })),
    ctx.on("transaction.updated", mine(({ data }) => {
      const tx = state.active.get(data.transaction_id);
      if (tx) state.active.set(data.transaction_id, { ...tx, energy_wh: data.energy_wh });
      if (data.power_w !== null && data.power_w !== undefined) {
        state.power.set(data.transaction_id, Number(data.power_w));
      }
      if (!tx) {  // started before this page knew of it
        api(`/transactions/${data.transaction_id}`).then((d) => {
          state.active.set(data.transaction_id, d.transaction);
          renderTransactions();
        }).catch(() => {});
      }
      chart.push(Date.parse(data.at) / 1000, [total() / 1000]);
      powerNow.textContent = kw(total());
      renderTransactions();
    })),
    ctx.on("transaction.ended", mine(({ data }) => {
      state.active.delete(data.transaction_id);
      state.power.delete(data.transaction_id);
      chart.push(Date.parse(data.at) / 1000, [total() / 1000]);
      powerNow.textContent = kw(total());
      renderTransactions();
    })),
  ];

  try {
    await reload();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      clear(view, h("p.error", { role: "alert" }, `No station ${stationId}.`),
        h("a", { href: "#/stations" }, "Stations"));
      stops.forEach((f) => f());
      chart.destroy();
      return null;
    }
    throw err;
  }
  const panels = [
    await configPanel(configEl, path, version, ctx, send).catch(() => null),
    await logPanel(logEl, path).catch(() => null),
  ];
  return () => {
    stops.forEach((f) => f());
    panels.forEach((stop) => stop && stop());
    chart.destroy();
  };
}

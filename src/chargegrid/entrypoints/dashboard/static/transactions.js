// Transactions: the list (filters, paging, CSV export link) and one session's energy and
// power over time.

import { api, q } from "./api.js";
import { readingEnergyWh, readingPowerW, timeChart } from "./chart.js";
import { badge, clear, field, h, kwh, select, time } from "./ui.js";

export async function renderList(view, _params, ctx) {
  const station = h("input", { name: "station_id" });
  const token = h("input", { name: "id_token" });
  const state = select("state", ["", "Active", "Ended"], "");
  const body = h("tbody");
  const pager = h("div.pager");
  const cursors = [null];
  let index = 0;

  async function load() {
    const filters = { station_id: station.value.trim(), id_token: token.value.trim(), state: state.value };
    const page = await api(`/transactions${q({ limit: 50, cursor: cursors[index], ...filters })}`);
    clear(body, page.items.length ? page.items.map((tx) => h("tr.clickable", {
      "data-testid": `transaction-${tx.id}`,
      onclick: () => { location.hash = `#/transactions/${tx.id}`; },
    },
    h("td", {}, h("a", { href: `#/transactions/${tx.id}` }, String(tx.id))),
    h("td", {}, tx.station_id),
    h("td", {}, `${tx.evse_id}/${tx.connector_id}`),
    h("td", {}, tx.id_token || "—"),
    h("td", {}, badge(tx.state)),
    h("td", {}, time(tx.started_at)),
    h("td", {}, time(tx.stopped_at)),
    h("td.num", {}, kwh(tx.energy_wh)),
    h("td", {}, tx.stop_reason || ""))) : h("tr", {}, h("td", { colspan: 9 }, "No transactions.")));
    cursors[index + 1] = page.next_cursor;
    clear(pager,
      h("button.secondary", { type: "button", disabled: index === 0, onclick: () => { index -= 1; load(); } }, "Newer"),
      h("button.secondary", { type: "button", disabled: !page.next_cursor, onclick: () => { index += 1; load(); } }, "Older"));
  }
  const search = (e) => { e?.preventDefault(); cursors.length = 1; index = 0; load(); };
  view.append(
    h("h1", {}, "Transactions"),
    h("form.inline", { onsubmit: search },
      field("Station", station), field("Id token", token), field("State", state),
      h("button", { type: "submit" }, "Filter"),
      h("button.secondary", { type: "button", onclick: exportCsv }, "Export CSV")),
    h("table", { "aria-label": "Transactions" }, h("thead", {}, h("tr", {},
      ["Id", "Station", "Connector", "Id tag", "State", "Started", "Stopped", "Energy", "Reason"]
        .map((t) => h("th", { scope: "col" }, t)))), body),
    pager);

  async function exportCsv() {
    // The export needs the token, so it is fetched and handed to the browser as a file.
    const filters = { station_id: station.value.trim(), id_token: token.value.trim(), state: state.value };
    const text = await api(`/transactions/export.csv${q(filters)}`);
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const a = h("a", { href: url, download: "transactions.csv" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  await load();
  const stop = ctx.on(["transaction.started", "transaction.ended", "reset"], () => {
    if (index === 0) load().catch(() => {});
  });
  return stop;
}

export async function renderDetail(view, [id], ctx) {
  const detail = await api(`/transactions/${id}`);
  const tx = detail.transaction;
  const summary = h("dl");
  function renderSummary(t) {
    clear(summary, ...[
      ["Station", h("a", { href: `#/stations/${encodeURIComponent(t.station_id)}` }, t.station_id)],
      ["Connector", `${t.evse_id}/${t.connector_id}`], ["Id tag", t.id_token || "—"],
      ["State", badge(t.state)], ["Started", time(t.started_at)], ["Stopped", time(t.stopped_at)],
      ["Energy", h("span", { "data-testid": "tx-energy" }, kwh(t.energy_wh))],
      ["Stop reason", t.stop_reason || "—"], ["Station's id", t.station_tx_id],
    ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }
  renderSummary(tx);
  const chartEl = h("div.chart", { "data-testid": "session-chart" });
  view.append(h("p", {}, h("a", { href: "#/transactions" }, "← Transactions")),
    h("h1", {}, `Transaction ${tx.id}`),
    h("section.card", {}, summary),
    h("section.card", { "aria-label": "Energy and power" }, h("h2", {}, "Energy and power"), chartEl));

  const start = tx.meter_start_wh === null ? null : Number(tx.meter_start_wh);
  const chart = timeChart(chartEl, [
    { label: "Energy", unit: "kWh", scale: "kWh", color: "#1a7f37" },
    { label: "Power", unit: "kW", scale: "kW", color: "#1f6feb" },
  ]);
  const times = [];
  const energy = [];
  const power = [];
  for (const r of detail.meter_values) {
    const e = readingEnergyWh(r);
    const p = readingPowerW(r);
    if (e === null && p === null) continue;
    times.push(Date.parse(r.timestamp) / 1000);
    energy.push(e === null ? null : (e - (start ?? e)) / 1000);
    power.push(p === null ? null : p / 1000);
  }
  chart.set(times, [energy, power]);
  if (!times.length) chartEl.append(h("p.empty", {}, "No meter values."));

  const stops = [ctx.on(["transaction.updated", "transaction.ended"], ({ type, data }) => {
    if (data.transaction_id !== tx.id) return;
    const e = data.energy_wh === null || data.energy_wh === undefined ? null : Number(data.energy_wh) / 1000;
    const p = data.power_w === null || data.power_w === undefined ? null : Number(data.power_w) / 1000;
    chart.push(Date.parse(data.at) / 1000, [e, type === "transaction.ended" ? 0 : p]);
    if (type === "transaction.ended") api(`/transactions/${id}`).then((d) => renderSummary(d.transaction)).catch(() => {});
    else renderSummary({ ...tx, energy_wh: data.energy_wh });
  })];
  return () => { stops.forEach((f) => f()); chart.destroy(); };
}

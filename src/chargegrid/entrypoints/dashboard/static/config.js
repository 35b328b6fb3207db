// Configuration of a station: 1.6 keys (ChangeConfiguration) and 2.0.1 device-model variables
// (SetVariables), as the node last read them (GetConfiguration / GetBaseReport).

import { api } from "./api.js";
import { clear, field, h } from "./ui.js";

function request(version, row, value) {
  if (version === "1.6") return ["ChangeConfiguration", { key: row.variable, value }];
  const component = { name: row.component };
  if (row.instance) component.instance = row.instance;
  if (row.evse_id) component.evse = row.connector_id ? { id: row.evse_id, connectorId: row.connector_id } : { id: row.evse_id };
  return ["SetVariables", {
    setVariableData: [{
      attributeValue: value, attributeType: row.attribute || "Actual",
      component, variable: { name: row.variable },
    }],
  }];
}

function refreshRequest(version) {
  return version === "1.6"
    ? ["GetConfiguration", {}]
    : ["GetBaseReport", { requestId: Math.floor(Math.random() * 2 ** 31), reportBase: "ConfigurationInventory" }];
}

export async function configPanel(el, path, version, ctx, send) {
  const body = h("tbody");
  const disabled = !ctx.can("operator");
  async function load() {
    const rows = await api(`${path}/configuration`);
    clear(body, rows.length ? rows.map((row) => {
      const name = row.component ? `${row.component}${row.instance ? `[${row.instance}]` : ""}.${row.variable}` : row.variable;
      const input = h("input", { value: row.value ?? "", "aria-label": `Value of ${name}`, disabled: row.readonly || disabled });
      return h("tr", {},
        h("td", {}, h("code", {}, name)),
        h("td", {}, row.readonly ? h("span", {}, row.value ?? "—") : input),
        h("td", {}, row.readonly ? h("span.muted", {}, "read-only") : h("button.secondary", {
          type: "button", disabled, "aria-label": `Save ${name}`,
          onclick: async () => {
            const result = await send(...request(version(), row, input.value));
            if (result) await load();
          },
        }, "Save")));
    }) : h("tr", {}, h("td", { colspan: 3 }, h("span.muted", {}, "Nothing read from the station yet."))));
  }
  const key = h("input", { name: "key" });
  const value = h("input", { name: "value" });
  clear(el,
    h("h2", {}, "Configuration"),
    h("div.actions", {}, h("button.secondary", {
      type: "button", disabled,
      onclick: async () => { if (await send(...refreshRequest(version()))) setTimeout(() => load().catch(() => {}), 1000); },
    }, "Read from station")),
    h("table", {}, h("thead", {}, h("tr", {}, ["Key", "Value", ""].map((t) => h("th", { scope: "col" }, t)))), body),
    h("form.inline", {
      onsubmit: async (e) => {
        e.preventDefault();
        const [component, variable] = key.value.includes(".") ? key.value.split(/\.(.*)/s) : ["", key.value];
        const row = version() === "1.6" ? { variable: key.value } : { component, variable };
        if (await send(...request(version(), row, value.value))) await load();
      },
    }, field(version() === "1.6" ? "Key" : "Component.Variable", key), field("New value", value),
    h("button", { type: "submit", disabled }, "Set")));
  await load();
  return null;
}

// Id tokens (RFID cards, app tokens): list, create, block / unblock, delete, CSV import.

import { api, q } from "./api.js";
import { badge, clear, field, h, select, time } from "./ui.js";

const KINDS = ["ISO14443", "ISO15693", "KeyCode", "Central", "eMAID", "MacAddress", "Local", "NoAuthorization", "IdTag"];

export async function render(view, _params, ctx) {
  const disabled = !ctx.can("operator");
  const body = h("tbody");
  const out = h("p", { role: "status", "data-testid": "token-status" });
  const group = h("input", { name: "group" });
  const cursors = [null];
  let index = 0;
  const pager = h("div.pager");

  async function act(promise, done) {
    try { await promise; out.textContent = done; await load(); } catch (err) { out.textContent = err.message; }
  }
  async function load() {
    const page = await api(`/tokens${q({ limit: 50, cursor: cursors[index], group: group.value.trim() })}`);
    const path = (t) => `/tokens/${encodeURIComponent(t.value)}`;
    clear(body, page.items.length ? page.items.map((t) => h("tr", { "data-testid": `token-${t.value}` },
      h("td", {}, h("code", {}, t.value)), h("td", {}, t.kind), h("td", {}, t.group || "—"),
      h("td", {}, t.owner || "—"), h("td", {}, time(t.expires_at)),
      h("td", {}, t.blocked ? badge("blocked", "Faulted") : badge("valid", "Available")),
      h("td.actions", {},
        h("button.secondary", {
          type: "button", disabled, "aria-label": `${t.blocked ? "Unblock" : "Block"} ${t.value}`,
          onclick: () => act(api(`${path(t)}/${t.blocked ? "unblock" : "block"}`, { method: "POST" }),
            `${t.value} ${t.blocked ? "unblocked" : "blocked"}.`),
        }, t.blocked ? "Unblock" : "Block"),
        h("button.danger", {
          type: "button", disabled, "aria-label": `Delete ${t.value}`,
          onclick: () => { if (confirm(`Delete id token ${t.value}?`)) act(api(path(t), { method: "DELETE" }), `${t.value} deleted.`); },
        }, "Delete"))))
      : h("tr", {}, h("td", { colspan: 7 }, "No id tokens.")));
    cursors[index + 1] = page.next_cursor;
    clear(pager,
      h("button.secondary", { type: "button", disabled: index === 0, onclick: () => { index -= 1; load(); } }, "Previous"),
      h("button.secondary", { type: "button", disabled: !page.next_cursor, onclick: () => { index += 1; load(); } }, "Next"));
  }

  const value = h("input", { name: "value", required: true, maxlength: 255 });
  const kind = select("kind", KINDS, "ISO14443");
  const newGroup = h("input", { name: "group" });
  const owner = h("input", { name: "owner" });
  const expires = h("input", { name: "expires_at", type: "datetime-local" });
  const csv = h("textarea", { name: "csv", rows: 4, cols: 60, placeholder: "value,kind,group,expires_at,blocked,allow_concurrent,owner" });
  const file = h("input", { type: "file", accept: ".csv,text/csv" });
  file.addEventListener("change", async () => { if (file.files[0]) csv.value = await file.files[0].text(); });

  view.append(
    h("h1", {}, "Id tokens"),
    h("form.inline", { onsubmit: (e) => { e.preventDefault(); cursors.length = 1; index = 0; load(); } },
      field("Group", group), h("button", { type: "submit" }, "Filter")),
    out,
    h("table", { "aria-label": "Id tokens" }, h("thead", {}, h("tr", {},
      ["Value", "Kind", "Group", "Owner", "Expires", "State", ""].map((t) => h("th", { scope: "col" }, t)))), body),
    pager,
    h("section.card", {}, h("h2", {}, "Add an id token"),
      h("form.inline", {
        onsubmit: (e) => {
          e.preventDefault();
          const json = { value: value.value.trim(), kind: kind.value };
          if (newGroup.value.trim()) json.group = newGroup.value.trim();
          if (owner.value.trim()) json.owner = owner.value.trim();
          if (expires.value) json.expires_at = new Date(expires.value).toISOString();
          act(api("/tokens", { method: "POST", json }), `${json.value} added.`).then(() => { value.value = ""; });
        },
      }, field("Value", value), field("Kind", kind), field("Group", newGroup), field("Owner", owner),
      field("Expires", expires), h("button", { type: "submit", disabled }, "Add"))),
    h("section.card", {}, h("h2", {}, "Import from CSV"),
      h("p.muted", {}, "A header row naming some of value, kind, group, expires_at, blocked, allow_concurrent, owner. One bad row imports nothing."),
      field("CSV file", file), field("CSV text", csv),
      h("div.actions", {}, h("button", {
        type: "button", disabled,
        onclick: async () => {
          try {
            const r = await api("/tokens/import", { method: "POST", body: csv.value, headers: { "Content-Type": "text/csv" } });
            out.textContent = `Imported: ${r.created} created, ${r.updated} updated.`;
            await load();
          } catch (err) {
            const errors = err.body?.extra?.errors;
            out.textContent = `Nothing imported: ${err.message}${errors ? ` ${JSON.stringify(errors)}` : ""}`;
          }
        },
      }, "Import"))));
  await load();
  return null;
}

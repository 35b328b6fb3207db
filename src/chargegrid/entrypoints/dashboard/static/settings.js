// Settings of this browser (localStorage): the map's tile server.

import { field, h } from "./ui.js";

const KEY = "chargegrid.map";

export function mapSettings() {
  try {
    return JSON.parse(localStorage.getItem(KEY)) || {};
  } catch {
    return {};
  }
}

export async function render(view) {
  const current = mapSettings();
  const url = h("input", { name: "tileUrl", size: 60, value: current.tileUrl || "", placeholder: "https://tile.example.org/{z}/{x}/{y}.png" });
  const attribution = h("input", { name: "attribution", size: 60, value: current.attribution || "" });
  const out = h("p", { role: "status" });
  view.append(h("h1", {}, "Settings"), h("section.card", {},
    h("h2", {}, "Map tiles"),
    h("p.muted", {}, "Without a tile server the map draws stations on a plain grid, which works offline. "
      + "If this site has Internet access, give an https tile URL template ({z}, {x}, {y}) and its attribution, "
      + "and respect the tile server's usage policy. Kept in this browser only."),
    h("form", {
      onsubmit: (e) => {
        e.preventDefault();
        const tileUrl = url.value.trim();
        if (tileUrl && !/^https:\/\/.+\{z\}.*\{x\}.*\{y\}/.test(tileUrl)) {
          out.textContent = "The template must start with https:// and contain {z}, {x} and {y}.";
          return;
        }
        localStorage.setItem(KEY, JSON.stringify({ tileUrl, attribution: attribution.value.trim() }));
        out.textContent = tileUrl ? "Saved: the map uses these tiles." : "Saved: the map draws no tiles.";
      },
    }, field("Tile URL template", url), field("Attribution", attribution),
    h("div.actions", {}, h("button", { type: "submit" }, "Save"))),
    out));
  return null;
}

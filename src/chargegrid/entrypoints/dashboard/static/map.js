// Stations on a map (Leaflet, vendored). Without Internet there are no map tiles: stations are
// drawn on a plain Web-Mercator plane with a latitude/longitude grid and a scale. An operator
// whose site has Internet access can set a tile server in Settings (kept in this browser).

import { api, q } from "./api.js";
import { h } from "./ui.js";
import { mapSettings } from "./settings.js";

const STEPS = [20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005];
const COLORS = { online: "#1a7f37", offline: "#cf222e", pending: "#9a6700" };

export async function render(view, _params, ctx) {
  const L = globalThis.L;
  const el = h("div.map", { "data-testid": "map", role: "region", "aria-label": "Map of stations" });
  const note = h("p.muted");
  view.append(h("h1", {}, "Map"), el, note);

  // A view first: Leaflet cannot draw a layer added to a map that has none.
  const map = L.map(el, { zoomSnap: 0.5, attributionControl: true }).setView([20, 0], 2);
  L.control.scale().addTo(map);
  const { tileUrl, attribution } = mapSettings();
  let grid = null;
  if (tileUrl) {
    L.tileLayer(tileUrl, { attribution, maxZoom: 19 }).addTo(map);
  } else {
    grid = L.layerGroup().addTo(map);
  }
  function drawGrid() {
    if (!grid) return;
    grid.clearLayers();
    const b = map.getBounds();
    const span = Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest());
    const step = STEPS.find((s) => span / s >= 4) || STEPS[STEPS.length - 1];
    const style = { color: "#9aa7b6", weight: 1, interactive: false };
    for (let lat = Math.ceil(Math.max(b.getSouth(), -85) / step) * step; lat <= Math.min(b.getNorth(), 85); lat += step) {
      grid.addLayer(L.polyline([[lat, b.getWest()], [lat, b.getEast()]], style));
    }
    for (let lon = Math.ceil(b.getWest() / step) * step; lon <= b.getEast(); lon += step) {
      grid.addLayer(L.polyline([[b.getSouth(), lon], [b.getNorth(), lon]], style));
    }
  }
  map.on("moveend zoomend", drawGrid);

  const markers = new Map();
  function color(s) {
    if (s.registration !== "Accepted") return COLORS.pending;
    return s.connected ? COLORS.online : COLORS.offline;
  }
  function place(s) {
    if (s.latitude === null || s.latitude === undefined || s.longitude === null || s.longitude === undefined) return;
    let marker = markers.get(s.id);
    if (!marker) {
      marker = L.circleMarker([s.latitude, s.longitude], { radius: 9, weight: 2, fillOpacity: 0.8 })
        .on("click", () => { location.hash = `#/stations/${encodeURIComponent(s.id)}`; })
        .addTo(map);
      markers.set(s.id, marker);
    }
    marker.station = s;
    marker.setStyle({ color: color(s), fillColor: color(s) });
    marker.bindTooltip(`${s.id}: ${s.connected ? "online" : "offline"}`, { permanent: markers.size <= 30, direction: "top" });
    marker.getElement()?.setAttribute("data-station", s.id);
  }

  const stations = [];
  let cursor = null;
  do {
    const page = await api(`/stations${q({ limit: 500, cursor })}`);
    stations.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && stations.length < 5000);
  stations.forEach(place);
  const placed = [...markers.values()];
  if (placed.length) {
    map.fitBounds(L.latLngBounds(placed.map((m) => m.getLatLng())).pad(0.3), { maxZoom: 15 });
  } else {
    map.setView([20, 0], 2);
  }
  note.textContent = `${placed.length} of ${stations.length} stations have coordinates.`
    + (tileUrl ? "" : " No map tiles: set a tile server in Settings to draw a background map.");
  drawGrid();
  // Leaflet draws a layer's element once the map has a view: name each station's marker now.
  markers.forEach((m, id) => m.getElement()?.setAttribute("data-station", id));

  const stops = [
    ctx.on(["station.online", "station.offline"], ({ type, data }) => {
      const marker = markers.get(data.station_id);
      if (marker) place({ ...marker.station, connected: type === "station.online" });
    }),
    ctx.on(["station.registration", "station.booted"], ({ data }) => {
      api(`/stations/${encodeURIComponent(data.station_id)}`).then((d) => place(d.station)).catch(() => {});
    }),
  ];
  return () => { stops.forEach((f) => f()); map.remove(); };
}

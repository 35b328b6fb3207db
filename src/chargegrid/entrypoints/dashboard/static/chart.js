// Time charts on uPlot (vendored; a classic script that defines globalThis.uPlot).
// The chart's element carries data-points and data-last (the latest value of the first
// series), so tests and assistive tools can read what it shows without the canvas.

const MAX_POINTS = 2000;

/**
 * A chart of series over time. series: [{label, unit, scale, color}]. Values pushed are in
 * the series' unit. Returns {push(tSeconds, values), set(times, columns), destroy()}.
 */
export function timeChart(el, series, { height = 240 } = {}) {
  const data = [[], ...series.map(() => [])];
  const scales = { x: { time: true } };
  const axes = [{}];
  for (const s of series) {
    if (!scales[s.scale]) {
      scales[s.scale] = { auto: true };
      axes.push({ scale: s.scale, label: s.unit, side: axes.length === 1 ? 3 : 1, size: 60,
        grid: { show: axes.length === 1 } });
    }
  }
  const opts = {
    width: Math.max(300, el.clientWidth || 600),
    height,
    scales,
    axes,
    series: [{}, ...series.map((s) => ({
      label: s.label, scale: s.scale, stroke: s.color, width: 2,
      points: { show: true, size: 4 }, spanGaps: true,
      value: (_u, v) => (v === null || v === undefined ? "—" : `${v.toFixed(2)} ${s.unit}`),
    }))],
  };
  const plot = new globalThis.uPlot(opts, data, el);
  el.setAttribute("role", "img");

  function mark() {
    const n = data[0].length;
    el.dataset.points = String(n);
    const last = n ? data[1][n - 1] : null;
    el.dataset.last = last === null || last === undefined ? "" : String(last);
    el.setAttribute("aria-label",
      `${series[0].label}: ${n} points` + (el.dataset.last ? `, latest ${last} ${series[0].unit}` : ""));
  }
  mark();

  const resize = new ResizeObserver(() => {
    const width = Math.max(300, el.clientWidth);
    if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height });
  });
  resize.observe(el);

  return {
    push(t, values) {
      const n = data[0].length;
      if (n && t < data[0][n - 1]) return;  // out of order: the chart is a time line
      if (n && t === data[0][n - 1]) {
        values.forEach((v, i) => { data[i + 1][n - 1] = v; });
      } else {
        data[0].push(t);
        values.forEach((v, i) => data[i + 1].push(v));
        if (data[0].length > MAX_POINTS) data.forEach((col) => col.shift());
      }
      plot.setData(data);
      mark();
    },
    set(times, columns) {
      data[0] = times.slice(-MAX_POINTS);
      columns.forEach((col, i) => { data[i + 1] = col.slice(-MAX_POINTS); });
      plot.setData(data);
      mark();
    },
    destroy() { resize.disconnect(); plot.destroy(); },
  };
}

/** Active import power (W) of a meter reading from the API, or null: the whole-meter value,
 * else the sum of the phases (OCPP 1.6 7.31 / 2.0.1 2.28). */
export function readingPowerW(reading) {
  const values = reading.values.filter((v) => v.measurand === "Power.Active.Import");
  if (!values.length) return null;
  const whole = values.filter((v) => !v.phase);
  const chosen = whole.length ? whole.slice(-1) : values;
  return chosen.reduce((sum, v) => sum + baseUnit(v), 0);
}

/** The energy import register (Wh) of a meter reading, or null. */
export function readingEnergyWh(reading) {
  const values = reading.values.filter(
    (v) => v.measurand === "Energy.Active.Import.Register" && !v.phase);
  return values.length ? baseUnit(values[values.length - 1]) : null;
}

function baseUnit(v) {
  const scaled = Number(v.value) * 10 ** (v.multiplier || 0);
  const unit = (v.unit || "").toLowerCase();
  return unit === "kw" || unit === "kwh" ? scaled * 1000 : scaled;
}

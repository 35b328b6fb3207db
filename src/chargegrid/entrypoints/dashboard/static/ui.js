// DOM helpers: elements are built with createElement and textContent, never from HTML text,
// so nothing a station or a user sent can become markup.

/** h("button.secondary", {type: "button", onclick}, "text", child, ...) */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "className") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function badge(text, kind = text) {
  return h(`span.badge.${String(kind).replace(/[^A-Za-z0-9_-]/g, "")}`, {}, text);
}

export function time(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function kw(watts) {
  const w = Number(watts || 0);
  return `${(w / 1000).toFixed(w >= 100000 ? 0 : 2)} kW`;
}

export function kwh(wh) {
  if (wh === null || wh === undefined || wh === "") return "—";
  return `${(Number(wh) / 1000).toFixed(3)} kWh`;
}

/** A field: a label tied to its control (the browser test finds controls by label). */
export function field(label, control) {
  if (!control.id) control.id = `f-${Math.random().toString(36).slice(2, 9)}`;
  return h("div.field", {}, h("label", { for: control.id }, label), control);
}

export function select(name, options, value) {
  return h("select", { name },
    options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

/** Run fn at most once per `ms`, the last call winning. */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  return (...args) => {
    if (timer) { pending = true; return; }
    fn(...args);
    timer = setTimeout(() => { timer = null; if (pending) { pending = false; fn(...args); } }, ms);
  };
}

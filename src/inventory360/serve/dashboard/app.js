// Inventory 360 dashboard: plain JS, no dependencies. Reads /v1 with a bearer token and
// follows /v1/stream (server-sent events read through fetch, so the token stays a header).
"use strict";

const STALE_AFTER_S = 60;
const MAX_ROWS = 500;
const state = {
  token: null, rows: new Map(), sort: { key: "atp_qty", dir: 1 }, committedAt: null, offset: 0,
  filter: { q: "", warehouse: "", low: true }, statusTimer: null, abort: null,
};
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const keyOf = (r) => r.sku_id + "|" + r.warehouse_id;  // "|" is not allowed in ids

function readToken() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("inv360-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("inv360-token");
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
  if (res.status === 401) { showLogin("The token was refused."); throw new Error("unauthorized"); }
  if (!res.ok) throw new Error(path + " → " + res.status);
  return res.json();
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  if (state.abort) state.abort.abort();
}

function renderStatus(s) {
  state.offset = s.server_time - Date.now() / 1000;
  state.committedAt = s.committed_at;
  $("h-keys").textContent = fmt(s.keys);
  $("h-low").textContent = fmt(s.below_safety_stock);
  $("h-available").textContent = fmt(s.available_qty);
  $("h-reserved").textContent = fmt(s.reserved_qty);
  $("h-atp").textContent = fmt(s.atp_qty);
  $("h-alerts").textContent = fmt(s.alerts);
  const body = $("warehouses").tBodies[0];
  body.replaceChildren(...s.warehouses.map((w) => {
    const tr = row([w.warehouse_id, fmt(w.keys), fmt(w.below_safety_stock), fmt(w.available_qty), fmt(w.atp_qty)], [0]);
    tr.dataset.warehouse = w.warehouse_id;
    tr.addEventListener("click", () => { $("warehouse").value = w.warehouse_id; onFilter(); });
    return tr;
  }));
  const select = $("warehouse");
  const have = new Set([...select.options].map((o) => o.value));
  for (const w of s.warehouses) {
    if (!have.has(w.warehouse_id)) select.add(new Option(w.warehouse_id, w.warehouse_id));
  }
  tickFreshness();
}

function row(cells, textCols) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c;
    if (!textCols.includes(i)) td.className = "num";
    tr.appendChild(td);
  });
  return tr;
}

function matches(r) {
  const f = state.filter;
  return (!f.q || r.sku_id.startsWith(f.q)) && (!f.warehouse || r.warehouse_id === f.warehouse) && (!f.low || r.below_safety_stock);
}

function renderRows(flash) {
  const { key, dir } = state.sort;
  const rows = [...state.rows.values()].sort((a, b) => {
    const x = a[key], y = b[key];
    if (x === y) return keyOf(a) < keyOf(b) ? -1 : 1;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  }).slice(0, MAX_ROWS);
  const body = $("stock").tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const tr = row([r.sku_id, r.warehouse_id, fmt(r.available_qty), fmt(r.reserved_qty), fmt(r.atp_qty),
      fmt(r.safety_stock), r.updated_at ? r.updated_at.replace("T", " ").replace("Z", "") : "–"], [0, 1, 6]);
    tr.cells[2].classList.add("avail");
    tr.cells[4].classList.add("atp");
    tr.dataset.key = keyOf(r);
    if (r.below_safety_stock) tr.classList.add("low");
    if (flash && flash.has(keyOf(r))) tr.classList.add("flash");
    return tr;
  }));
  $("row-count").textContent = state.rows.size > MAX_ROWS ? `first ${MAX_ROWS} of ${state.rows.size}+` : `${state.rows.size} keys`;
  for (const th of $("stock").tHead.rows[0].cells) {
    th.classList.toggle("sorted-asc", th.dataset.sort === key && dir === 1);
    th.classList.toggle("sorted-desc", th.dataset.sort === key && dir === -1);
  }
}

async function loadRows() {
  const f = state.filter;
  const p = new URLSearchParams({ limit: "1000" });
  if (f.q) p.set("q", f.q);
  if (f.warehouse) p.set("warehouse_id", f.warehouse);
  if (f.low) p.set("below_safety_stock", "true");
  const page = await api("/v1/inventory?" + p);
  state.rows = new Map(page.items.map((r) => [keyOf(r), r]));
  renderRows();
}

function addAlert(a, prepend) {
  const li = document.createElement("li");
  const tag = document.createElement("span");
  tag.className = "tag " + a.kind;
  tag.textContent = a.kind;
  const text = document.createElement("span");
  text.textContent = `${a.sku_id} @ ${a.warehouse_id}: ${a.compare} ${a.compare === "atp" ? a.atp_qty : a.available_qty} vs safety ${a.safety_stock}`;
  const when = document.createElement("div");
  when.className = "muted";
  when.textContent = (a.event_time || "").replace("T", " ").replace("Z", " UTC");
  li.append(tag, text, when);
  const list = $("alerts");
  if (prepend) list.prepend(li); else list.append(li);
  while (list.children.length > 200) list.lastChild.remove();
}

function tickFreshness() {
  const el = $("freshness");
  if (state.committedAt === null) {
    el.className = "fresh unknown";
    $("freshness-text").textContent = "no data yet";
    return;
  }
  const age = Math.max(0, Date.now() / 1000 + state.offset - state.committedAt);
  const stale = age > STALE_AFTER_S;
  el.className = "fresh " + (stale ? "stale" : "ok");
  $("freshness-text").textContent = (stale ? "stale · " : "live · ") + (age < 10 ? age.toFixed(1) : Math.round(age)) + " s";
}

function refreshStatusSoon() {
  if (state.statusTimer) return;
  state.statusTimer = setTimeout(async () => {
    state.statusTimer = null;
    try { renderStatus(await api("/v1/status")); } catch (e) { /* the stream retries */ }
  }, 150);
}

function onEvent(type, data) {
  if (type === "status") {
    renderStatus(data);
  } else if (type === "snapshot") {
    state.committedAt = data.committed_at;
    if (data.truncated) { loadRows(); refreshStatusSoon(); return; }
    const changed = new Set();
    for (const r of data.rows) {
      const k = keyOf(r);
      if (matches(r)) { state.rows.set(k, r); changed.add(k); } else state.rows.delete(k);
    }
    renderRows(changed);
    refreshStatusSoon();
    tickFreshness();
  } else if (type === "alert") {
    addAlert(data, true);
  }
}

async function follow() {
  for (;;) {
    state.abort = new AbortController();
    try {
      const res = await fetch("/v1/stream", { headers: { Authorization: "Bearer " + state.token }, signal: state.abort.signal });
      if (res.status === 401) { showLogin("The token was refused."); return; }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let type = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) onEvent(type, JSON.parse(data));
        }
      }
    } catch (e) {
      if (state.abort.signal.aborted && $("main").hidden) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

let searchTimer = null;
function onFilter() {
  state.filter = { q: $("search").value.trim(), warehouse: $("warehouse").value, low: $("low-only").checked };
  loadRows();
}

async function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  try {
    renderStatus(await api("/v1/status"));
    await loadRows();
    const recent = await api("/v1/alerts?latest=true&limit=50");
    for (const a of recent.alerts) addAlert(a, true);
  } catch (e) { return; }
  follow();
}

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(onFilter, 200); });
  $("warehouse").addEventListener("change", onFilter);
  $("low-only").addEventListener("change", onFilter);
  for (const th of $("stock").tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      renderRows();
    });
  }
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("inv360-token", state.token);
    start();
  });
  setInterval(tickFreshness, 500);
  state.token = readToken();
  if (state.token) start(); else showLogin("");
});

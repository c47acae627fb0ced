// The ferrymq console: polls /api/overview every second, draws the lag chart, and calls
// the actions with the page's CSRF token. Data goes into the page as text only
// (textContent), never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="ferrymq-csrf"]').content;
const WRITES = document.querySelector('meta[name="ferrymq-writes"]').content === "true";
if (WRITES) document.getElementById("reason").hidden = false;
const HISTORY = 120; // samples kept per group: two minutes at one a second
const COLOURS = ["#2559c7", "#d2452b", "#2a9d5c", "#b26bd6", "#e0a31b", "#1aa3b8", "#777"];
const lag = new Map(); // group -> [numbers]
let samples = 0;

function $(sel) { return document.querySelector(sel); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function fill(table, rows) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Ferrymq-Csrf": CSRF },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

let statusUntil = 0; // an action's answer stays up a few seconds before "updated"

function status(text, bad) {
  statusUntil = Date.now() + 5000;
  const s = $("#status");
  s.textContent = text;
  s.style.color = bad ? "#f88" : "";
}

function age(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  return Math.round(ms / 60000) + "m";
}

function button(text, cls, onClick) {
  const b = el("button", text, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// The reason field's text goes with every action and lands in the file's audit trail.
async function act(path, body, done) {
  try {
    const reason = $("#reason").value.trim();
    const r = await api(path, reason ? { ...body, reason } : body);
    status("done: " + JSON.stringify(r));
    if (done) await done();
    await refresh();
  } catch (e) {
    status(e.message, true);
  }
}

function card(label, value) {
  const c = el("div", null, "card");
  c.appendChild(el("b", value));
  c.appendChild(el("span", label));
  return c;
}

function selectOptions(select, names) {
  const keep = select.value;
  const same = select.options.length === names.length &&
    names.every((n, i) => select.options[i].value === n);
  if (!same) {
    select.replaceChildren(...names.map((n) => { const o = el("option", n); o.value = n; return o; }));
    if (names.includes(keep)) select.value = keep;
  }
}

function drawOverview(o) {
  $("#file").textContent = o.file;
  const mode = $("#mode");
  mode.textContent = o.writes ? "writes allowed" : "read-only";
  mode.className = "badge" + (o.writes ? "" : " ro");
  document.body.classList.toggle("read-only", !o.writes);
  const g = o.stats.groups;
  const sum = (f) => g.reduce((a, x) => a + x[f], 0);
  $("#overview").replaceChildren(
    card("topics", o.stats.topics.length), card("consumer groups", g.length),
    card("ready", sum("ready")), card("in flight", sum("inflight")),
    card("retrying", sum("retrying")), card("dead letters", sum("dead")),
    card("half messages", o.stats.topics.reduce((a, t) => a + t.half, 0)));
  fill("#topics", o.stats.topics.map((t) =>
    row([t.name, t.messages, t.half, t.groups.join(", ")])));
  fill("#groups", g.map((x) => {
    const st = el("span", x.paused ? "paused" : "running", x.paused ? "paused" : "");
    const actions = WRITES ? button(x.paused ? "Resume" : "Pause", "write pause-toggle", () =>
      act("/api/groups/" + encodeURIComponent(x.name) + (x.paused ? "/resume" : "/pause"), {})) : el("span");
    return row([x.name, x.topic, x.ready, x.scheduled, x.inflight, x.retrying,
      el("span", x.dead, x.dead ? "dead" : ""), age(x.oldest_ready_age_ms), st, actions]);
  }));
  selectOptions($("#search-topic"), o.stats.topics.map((t) => t.name));
  selectOptions($("#dlq-group"), g.map((x) => x.name));
  for (const x of g) {
    const h = lag.get(x.name) || [];
    h.push(x.ready + x.scheduled + x.inflight + x.retrying);
    if (h.length > HISTORY) h.shift();
    lag.set(x.name, h);
  }
  samples += 1;
  drawChart();
}

function drawChart() {
  const svg = $("#lag-chart");
  const W = 760, H = 200, P = 30;
  const max = Math.max(1, ...[...lag.values()].flat());
  const ns = "http://www.w3.org/2000/svg";
  const parts = [];
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", 4); axis.setAttribute("y", 14); axis.setAttribute("font-size", 11);
  axis.textContent = String(max);
  parts.push(axis);
  const base = document.createElementNS(ns, "line");
  base.setAttribute("x1", P); base.setAttribute("x2", W); base.setAttribute("y1", H - 10);
  base.setAttribute("y2", H - 10); base.setAttribute("stroke", "#ccc");
  parts.push(base);
  const legend = [];
  // The x axis spans the samples drawn so far (at least 30), up to HISTORY.
  const span = Math.max(30, ...[...lag.values()].map((h) => h.length));
  [...lag.entries()].forEach(([name, h], i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = h.map((v, j) => {
      const x = P + (W - P) * (j + span - h.length) / (span - 1);
      const y = (H - 10) - (H - 30) * v / max;
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", 2);
    line.dataset.group = name;
    line.dataset.last = String(h[h.length - 1]);
    parts.push(line);
    const item = el("span");
    const swatch = el("i"); swatch.style.background = colour;
    item.append(swatch, name + " (" + h[h.length - 1] + ")");
    legend.push(item);
  });
  svg.replaceChildren(...parts);
  svg.dataset.samples = String(samples);
  $("#lag-legend").replaceChildren(...legend);
}

function messageLink(id) {
  const a = el("a", id, "message-link");
  a.dataset.id = id;
  a.addEventListener("click", () => showTimeline(id));
  return a;
}

let lastSearch = null; // [topic, key], searched again on every refresh

async function search(ev) {
  ev.preventDefault();
  lastSearch = [$("#search-topic").value, $("#search-key").value];
  await runSearch();
}

async function runSearch() {
  if (lastSearch === null) return;
  const [topic, key] = lastSearch;
  try {
    const found = await api("/api/find?topic=" + encodeURIComponent(topic) + "&key=" + encodeURIComponent(key));
    fill("#search-results", found.map((m) => row([messageLink(m.id), m.published_at, m.tag || "-",
      m.key || "-", m.state,
      Object.entries(m.deliveries).map(([g, d]) => g + ": " + d.state).join(", "),
      m.payload_encoding === "utf8" ? m.payload.slice(0, 60) : "(binary)"])));
  } catch (e) { lastSearch = null; status(e.message, true); }
}

let timelineId = null;

async function showTimeline(id) {
  timelineId = id;
  try {
    const t = await api("/api/messages/" + id + "/trace");
    $("#timeline-section").hidden = false;
    $("#timeline-id").textContent = id + " (" + t.topic + ", " + t.state + ")";
    fill("#timeline", t.events.map((e) => {
      const r = row([e.at || "(time not kept)", e.event, e.group || "", e.attempt ?? "",
        e.outcome || "", e.error || ""]);
      r.className = "event-" + e.event + (e.outcome ? " outcome-" + e.outcome : "");
      return r;
    }));
  } catch (e) { timelineId = null; status(e.message, true); }
}

async function refreshDlq() {
  const group = $("#dlq-group").value;
  if (!group) { fill("#dlq", []); return; }
  const letters = await api("/api/dlq/" + encodeURIComponent(group) + "?limit=100");
  fill("#dlq", letters.map((d) => {
    const actions = el("span");
    if (WRITES) {
      actions.append(
        button("Redrive", "write redrive", () => act("/api/dlq/" + encodeURIComponent(group) + "/redrive", { ids: [d.message_id] })),
        button("Purge", "write danger purge", () => {
          if (confirm("Delete dead letter " + d.message_id + " of " + group + "?"))
            act("/api/dlq/" + encodeURIComponent(group) + "/purge", { ids: [d.message_id] });
        }));
    }
    const r = row([messageLink(d.message_id), d.topic, d.key || "-", d.attempts, d.died_at,
      d.last_error || "", d.payload_encoding === "utf8" ? d.payload.slice(0, 40) : "(binary)", actions]);
    r.dataset.id = d.message_id;
    return r;
  }));
}

function bulk(action) {
  const group = $("#dlq-group").value;
  const ids = [...document.querySelectorAll("#dlq tbody tr")].map((r) => Number(r.dataset.id));
  if (!group || ids.length === 0) return;
  if (action === "purge" && !confirm("Delete " + ids.length + " dead letters of " + group + "?")) return;
  act("/api/dlq/" + encodeURIComponent(group) + "/" + action, { ids });
}

async function refreshHalf() {
  const list = await api("/api/half?limit=100");
  fill("#half", list.map((m) => {
    const actions = el("span");
    if (WRITES && m.state === "half") {
      actions.append(
        button("Commit", "write commit", () => act("/api/half/" + m.id + "/commit", {})),
        button("Roll back", "write danger rollback", () => act("/api/half/" + m.id + "/rollback", {})));
    }
    return row([m.id, m.topic, m.state, m.key || "-", m.published_at, m.checks.length, actions]);
  }));
}

let busy = false;

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    drawOverview(await api("/api/overview"));
    await refreshDlq();
    await refreshHalf();
    await runSearch();
    if (timelineId !== null) await showTimeline(timelineId);
    if (Date.now() > statusUntil) {
      $("#status").textContent = "updated " + new Date().toLocaleTimeString();
      $("#status").style.color = "";
    }
  } catch (e) {
    status(e.message, true);
  } finally {
    busy = false;
  }
}

$("#search").addEventListener("submit", search);
$("#dlq-group").addEventListener("change", refresh);
$("#dlq-redrive-all").addEventListener("click", () => bulk("redrive"));
$("#dlq-purge-all").addEventListener("click", () => bulk("purge"));
refresh();
setInterval(refresh, 1000);

// kafka-sidecar admin console. Plain JavaScript, no libraries: every value from the sidecar is put on
// the page with textContent (never innerHTML), and the charts are SVG elements built here.
"use strict";

const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const COLORS = ["#2f6fde", "#c23a32", "#1f8a4c", "#c27c0e", "#7b4bd6", "#138a8a", "#b8427f"];
const SVG = "http://www.w3.org/2000/svg";

const history = [];          // [{t, lag: {consumer: n}, delivered: {consumer: n}}]
const previous = new Map();  // "consumer|topic|partition" -> {t, delivered} for per-partition rates
const replays = new Map();   // consumer -> replay job id being followed

// ---------------------------------------------------------------------------------------------- helpers

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function cell(row, text, cls) {
  const td = el("td", text === null || text === undefined ? "–" : text, cls);
  row.appendChild(td);
  return td;
}

function headers(extra) {
  const out = Object.assign({}, extra || {});
  const token = sessionStorage.getItem("kafka-sidecar-admin-token");
  if (token) out.authorization = "Bearer " + token;
  return out;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.body ? {"content-type": "application/json"} : {});
  const response = await fetch(path, opts);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (response.status === 401 || response.status === 403) {
    // The page is served without the token (a browser cannot send one when it navigates); its data is not.
    const token = document.getElementById("token");
    token.classList.add("needed");
    if (document.activeElement !== token) token.focus();
    const why = response.status === 401 ? "needs the admin token" : "refused this admin token";
    throw Object.assign(new Error(`This sidecar ${why}: type it into the admin token field above.`), {status: response.status});
  }
  if (!response.ok) {
    const detail = body && (body.detail || body.title) ? body.detail || body.title : response.statusText;
    throw Object.assign(new Error(`${opts.method || "GET"} ${path}: ${response.status} ${detail}`), {status: response.status});
  }
  document.getElementById("token").classList.remove("needed");
  return body;
}

function post(path, body) {
  return api(path, {method: "POST", body: JSON.stringify(body || {})});
}

function showError(error, source) {
  // source "poll": the periodic refresh failed; the next good refresh clears it. Action errors stay.
  const box = document.getElementById("error");
  if (error) {
    box.textContent = String(error.message || error);
    box.dataset.source = source || "action";
    box.hidden = false;
  } else if (source !== "poll" || box.dataset.source === "poll") {
    box.hidden = true;
  }
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  return typeof n === "number" ? n.toLocaleString("en-US") : String(n);
}

// ---------------------------------------------------------------------------------------------- charts

function drawChart(svg, series, unit) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 600, H = 160, left = 46, right = 8, top = 8, bottom = 20;
  const now = Date.now();
  // The window grows with the history there is (the sidecar's samples, then the page's): 1 minute to WINDOW_MS.
  const first = history.length ? history[0].t : now;
  const span = Math.min(WINDOW_MS, Math.max(60000, now - first));
  const t0 = now - span;
  let max = 1;
  for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
  const x = (t) => left + ((t - t0) / span) * (W - left - right);
  const y = (v) => top + (1 - v / max) * (H - top - bottom);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    add("line", {x1: left, x2: W - right, y1: y(v), y2: y(v), class: "axis"});
    add("text", {x: left - 4, y: y(v) + 3, "text-anchor": "end"}, v >= 100 ? Math.round(v).toString() : v.toFixed(1));
  }
  for (let i = 5; i >= 0; i--) {
    const ago = (span * i) / 5;
    const label = ago >= 60000 ? `-${(ago / 60000).toFixed(1)}m` : `-${Math.round(ago / 1000)}s`;
    add("text", {x: x(now - ago), y: H - 4, "text-anchor": "middle"}, i ? label : "now");
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    add("path", {d, class: "series", stroke: COLORS[i % COLORS.length]}).appendChild(
      Object.assign(document.createElementNS(SVG, "title"), {textContent: `${s.name} (${unit})`}));
  });
  svg.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
}

function updateCharts() {
  const cutoff = Date.now() - WINDOW_MS;
  while (history.length && history[0].t < cutoff) history.shift();
  const names = [...new Set(history.flatMap((h) => Object.keys(h.lag)))].sort();
  const lag = names.map((name) => ({name, points: history.filter((h) => name in h.lag).map((h) => [h.t, h.lag[name]])}));
  const rate = names.map((name) => {
    const points = [];
    for (let i = 1; i < history.length; i++) {
      const a = history[i - 1], b = history[i];
      if (name in a.delivered && name in b.delivered) {
        points.push([b.t, Math.max(0, (b.delivered[name] - a.delivered[name]) / ((b.t - a.t) / 1000))]);
      }
    }
    return {name, points};
  });
  drawChart(document.getElementById("chart-lag"), lag, "records");
  drawChart(document.getElementById("chart-rate"), rate, "records/s");
  for (const id of ["chart-lag", "chart-rate"]) {
    const figure = document.getElementById(id).parentNode;
    let legend = figure.querySelector(".legend");
    if (!legend) legend = figure.appendChild(el("div", null, "legend"));
    legend.replaceChildren(...names.map((name, i) => {
      const item = el("span");
      const swatch = el("span", null, "swatch");
      swatch.style.background = COLORS[i % COLORS.length];
      item.append(swatch, document.createTextNode(name));
      return item;
    }));
  }
}

// ---------------------------------------------------------------------------------------------- reactive consumers

function consumerCard(name) {
  const id = "consumer-" + name;
  let card = document.getElementById(id);
  if (card) return card;
  card = document.getElementById("consumer-card").content.firstElementChild.cloneNode(true);
  card.id = id;
  card.dataset.consumer = name;
  card.querySelector(".name").textContent = name;
  const base = "/admin/consumers/reactive/" + encodeURIComponent(name);
  const act = (fn) => async (event) => {
    event.preventDefault();
    try { await fn(); showError(null); await refreshReactive(); } catch (e) { showError(e); }
  };
  card.querySelector(".pause").addEventListener("click", act(() => post(base + "/pause")));
  card.querySelector(".resume").addEventListener("click", act(() => post(base + "/resume")));
  card.querySelector(".seek").addEventListener("submit", act(async () => {
    const kind = card.querySelector(".seek-kind").value;
    const raw = card.querySelector(".seek-value").value;
    const body = {};
    if (kind === "beginning" || kind === "end") body.position = kind;
    else if (raw === "") throw new Error("give the " + kind + " to seek to");
    else body[kind] = Number(raw);
    const which = card.querySelector(".seek-partition").value;
    if (which) body.partitions = [JSON.parse(which)];
    const result = await post(base + "/seek", body);
    card.querySelector(".seek-result").textContent =
      "now at " + result.partitions.map((p) => `${p.topic}-${p.partition}@${p.offset}`).join(", ");
  }));
  card.querySelector(".dlq-load").addEventListener("click", act(() => loadDeadLetters(card, name)));
  card.querySelector(".dlq-replay").addEventListener("click", act(async () => {
    const job = await post(base + "/replay", {});
    replays.set(name, job.id);
    followReplay(card, name, job);
  }));
  document.getElementById("reactive-list").appendChild(card);
  return card;
}

async function loadDeadLetters(card, name) {
  const found = await api("/admin/console/reactive/" + encodeURIComponent(name) + "/dead-letters?limit=50");
  const body = card.querySelector(".dlq-table tbody");
  body.replaceChildren();
  for (const letter of found.letters) {
    const h = Object.fromEntries(letter.headers.map((x) => [x.name, x.value]));
    const row = body.insertRow();
    row.dataset.offset = letter.offset;
    cell(row, letter.topic);
    cell(row, letter.partition, "num");
    cell(row, letter.offset, "num");
    cell(row, h["x-dlq-source-topic"] ? `${h["x-dlq-source-topic"]}-${h["x-dlq-source-partition"]}@${h["x-dlq-source-offset"]}` : null);
    cell(row, h["x-dlq-attempts"], "num");
    cell(row, h["x-dlq-error"], "text error-text");
    cell(row, shown(letter.key), "text");
    cell(row, shown(letter.value), "text value-text");
  }
  card.querySelector(".dlq-status").textContent =
    `${found.total} dead letter(s) in ${found.topics.join(", ")}; showing the newest ${found.letters.length}`;
}

function shown(data) {
  if (data === null || data === undefined) return "null";
  return "text" in data ? data.text : "base64:" + data.base64;
}

async function followReplay(card, name, job) {
  const bar = card.querySelector(".dlq-progress");
  const status = card.querySelector(".dlq-status");
  bar.hidden = false;
  for (;;) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.finished;
    const outcomes = Object.entries(job.outcomes).map(([k, v]) => `${k} ${v}`).join(", ");
    status.textContent = `replay ${job.id}: ${job.state}, ${job.finished}/${job.total} done` + (outcomes ? ` (${outcomes})` : "")
      + (job.error ? ` — ${job.error}` : "");
    card.dataset.replayState = job.state;
    if (job.finished_at || replays.get(name) !== job.id) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
    job = await api(`/admin/consumers/reactive/${encodeURIComponent(name)}/replay/${job.id}`);
  }
}

function renderConsumer(consumer, now) {
  const card = consumerCard(consumer.name);
  const state = card.querySelector(".state");
  const paused = consumer.paused || (consumer.partitions.length > 0 && consumer.partitions.every((p) => p.paused));
  state.textContent = paused ? "paused" : consumer.state;
  state.className = "state pill " + (paused ? "warn" : consumer.state === "running" ? "ok" : consumer.last_error ? "bad" : "");
  card.dataset.paused = String(paused);
  card.querySelector(".meta").textContent =
    `group ${consumer.group} → ${consumer.backend} (backend ${consumer.backend_healthy ? "healthy" : "unhealthy"})`
    + (consumer.last_error ? ` — ${consumer.last_error}` : "");
  const body = card.querySelector(".partitions tbody");
  body.replaceChildren();
  const select = card.querySelector(".seek-partition");
  const chosen = select.value;
  select.replaceChildren(el("option", "all partitions"));
  select.firstChild.value = "";
  const base = "/admin/consumers/reactive/" + encodeURIComponent(consumer.name);
  for (const p of consumer.partitions) {
    const key = `${consumer.name}|${p.topic}|${p.partition}`;
    const before = previous.get(key);
    const rate = before && now > before.t ? Math.max(0, (p.delivered - before.delivered) / ((now - before.t) / 1000)) : null;
    previous.set(key, {t: now, delivered: p.delivered});
    const row = body.insertRow();
    row.dataset.topic = p.topic;
    row.dataset.partition = p.partition;
    cell(row, p.topic);
    cell(row, p.partition, "num");
    cell(row, fmt(p.committed), "num committed");
    cell(row, fmt(p.position), "num position");
    cell(row, fmt(p.end_offset), "num end");
    cell(row, fmt(p.lag), "num lag" + (p.lag > 1000 ? " high" : ""));
    cell(row, rate === null ? "–" : rate.toFixed(1), "num rate");
    cell(row, fmt(p.delivered), "num");
    cell(row, fmt(p.dead_lettered), "num");
    cell(row, fmt(p.retries), "num");
    cell(row, p.paused ? "paused" : p.fetch_paused ? "fetch paused" : "active", "pstate");
    const actions = cell(row, "");
    const button = el("button", p.paused ? "Resume" : "Pause", "small secondary");
    button.addEventListener("click", async () => {
      try {
        await post(base + (p.paused ? "/resume" : "/pause"), {partitions: [{topic: p.topic, partition: p.partition}]});
        await refreshReactive();
      } catch (e) { showError(e); }
    });
    actions.appendChild(button);
    const option = el("option", `${p.topic}-${p.partition}`);
    option.value = JSON.stringify({topic: p.topic, partition: p.partition});
    select.appendChild(option);
  }
  select.value = chosen;
  if (select.value !== chosen) select.value = "";
}

async function refreshReactive() {
  const data = await api("/admin/consumers/reactive");
  const now = Date.now();
  const sample = {t: now, lag: {}, delivered: {}};
  const list = document.getElementById("reactive-list");
  if (data.consumers.length) list.querySelector("p.muted")?.remove();
  for (const consumer of data.consumers) {
    renderConsumer(consumer, now);
    sample.lag[consumer.name] = consumer.partitions.reduce((n, p) => n + (p.lag || 0), 0);
    sample.delivered[consumer.name] = consumer.partitions.reduce((n, p) => n + (p.delivered || 0), 0);
  }
  history.push(sample);
  updateCharts();
}

// ---------------------------------------------------------------------------------------------- ksqlDB consumers, stream processors

function noteRow(body, text, span) {
  const td = cell(body.insertRow(), text, "muted");
  td.colSpan = span;
}

async function fillRows(path, key, table, render) {
  // One row per item of the admin list at ``path``; the handler packages add these routes, and without
  // them (handler not installed or blocked) the table says so.
  const body = document.querySelector(`#${table} tbody`);
  const span = document.querySelectorAll(`#${table} thead th`).length;
  let data;
  try { data = await api(path); } catch (e) {
    if (e.status !== 404) throw e;
    data = null;
  }
  body.replaceChildren();
  if (data === null) noteRow(body, "not available (handler not installed)", span);
  else if (!data[key].length) noteRow(body, "none configured", span);
  else for (const item of data[key]) render(body.insertRow(), item);
}

function actionCell(row, base, actions, refresh) {
  // actions: "pause" (POST base/pause, no body) or {cls, label, path, body, title}.
  const td = cell(row, "", "actions");
  for (const action of actions) {
    const spec = typeof action === "string"
      ? {cls: action, label: action[0].toUpperCase() + action.slice(1), path: action}
      : action;
    const button = el("button", spec.label, "small secondary " + spec.cls);
    if (spec.title) button.title = spec.title;
    button.addEventListener("click", async () => {
      try { await post(base + "/" + spec.path, spec.body); showError(null); await refresh(); } catch (e) { showError(e); }
    });
    td.appendChild(button);
  }
}

const FROM_START = {cls: "from-start", label: "From start", path: "restart", body: {auto_offset_reset: "earliest"},
                    title: "restart the query from the earliest offset of its sources"};
const RESET = {cls: "reset", label: "Reset", path: "reset", body: {to: "beginning"},
               title: "while stopped: input offsets to the beginning, local state removed"};

function refreshKsqldb() {
  return fillRows("/admin/ksqldb", "consumers", "ksqldb-table", (row, c) => {
    row.dataset.name = c.name;
    row.dataset.state = c.state;
    row.dataset.paused = String(Boolean(c.paused));
    cell(row, c.name);
    cell(row, c.mode);
    cell(row, c.paused && c.state !== "paused" ? c.state + " (paused)" : c.state, "state");
    cell(row, c.query_id, "query-id");
    cell(row, fmt(c.rows_received), "num received");
    cell(row, fmt(c.rows_delivered), "num delivered");
    cell(row, fmt(c.resubscribes), "num resubscribes");
    cell(row, c.gap_possible ? "yes" : "no", "gap");
    cell(row, c.last_error, "text error-text");
    actionCell(row, "/admin/ksqldb/" + encodeURIComponent(c.name), ["pause", "resume", "restart", FROM_START], refreshKsqldb);
  });
}

function exitText(exit, lastError) {
  if (!exit) return lastError || null;
  const how = exit.signal !== null && exit.signal !== undefined ? "signal " + exit.signal : "code " + exit.code;
  return `${how} after ${exit.ran_s} s` + (exit.error || lastError ? " — " + (exit.error || lastError) : "");
}

function lagText(p) {
  if (p.lag === null || p.lag === undefined) return p.lag_error ? "unknown" : null;
  if (!p.lag.length) return null;
  return fmt(p.lag.reduce((n, x) => n + (x.lag || 0), 0));
}

function refreshProcessors() {
  return fillRows("/admin/processors", "processors", "processors-table", (row, p) => {
    row.dataset.name = p.name;
    row.dataset.state = p.state;
    cell(row, p.name);
    cell(row, p.runtime);
    cell(row, p.state, "state");
    cell(row, p.pid, "num pid");
    cell(row, p.uptime_s === null || p.uptime_s === undefined ? null : Math.round(p.uptime_s) + " s", "num uptime");
    cell(row, fmt(p.restarts), "num restarts");
    cell(row, exitText(p.last_exit, p.last_error), "text exit");
    const lag = cell(row, lagText(p), "num lag");
    if (p.lag_error) lag.title = p.lag_error;
    cell(row, (p.last_lines || []).slice(-3).map((line) => line.text).join("\n"), "lines");
    actionCell(row, "/admin/processors/" + encodeURIComponent(p.name), ["stop", "start", "restart", RESET], refreshProcessors);
  });
}

// ---------------------------------------------------------------------------------------------- the rest

async function refreshProducer() {
  const p = await api("/admin/console/producer");
  document.getElementById("service").textContent = p.service;
  const pill = document.getElementById("producer");
  const reason = p.last_error && p.last_error.length > 90 ? p.last_error.slice(0, 90) + "…" : p.last_error;
  pill.textContent = p.connected ? "producer connected" : "producer not connected" + (reason ? ": " + reason : "");
  pill.title = p.last_error || "";
  pill.className = "pill " + (p.connected ? "ok" : "bad");
  document.getElementById("broker").textContent = "broker " + p.bootstrap_servers;
}

async function refreshActive() {
  const data = await api("/admin/console/active");
  const body = document.querySelector("#active-table tbody");
  body.replaceChildren();
  if (!data.instances.length) {
    const row = body.insertRow();
    const td = cell(row, "no live instances", "muted");
    td.colSpan = 10;
  }
  for (const i of data.instances) {
    const parts = i.partitions.length ? i.partitions : [null];
    for (const p of parts) {
      const row = body.insertRow();
      row.dataset.instance = `${i.group}/${i.name}`;
      cell(row, i.group);
      cell(row, i.name);
      cell(row, `${i.key_format}/${i.value_format}`);
      cell(row, i.subscription.join(", ") || "(assigned)");
      cell(row, p ? `${p.topic}-${p.partition}` : "–");
      cell(row, p ? fmt(p.delivered_to) : "–", "num");
      cell(row, p ? fmt(p.end_offset) : "–", "num");
      cell(row, p ? fmt(p.lag) : "–", "num lag");
      cell(row, fmt(i.buffered), "num");
      cell(row, i.idle_s + " s", "num");
    }
  }
}

function chainCell(row, links) {
  const td = cell(row, "", "chain");
  links.forEach((link, index) => {
    const chip = el("span", link.name, "link" + (index === links.length - 1 ? " terminal" : ""));
    if (link.type !== link.name) chip.appendChild(el("span", " " + link.type, "type"));
    td.appendChild(chip);
  });
}

async function loadChains() {
  const data = await api("/admin/chains");
  const body = document.querySelector("#routes-table tbody");
  body.replaceChildren();
  for (const r of data.routes) {
    const row = body.insertRow();
    cell(row, `${r.methods.join(" ")} ${r.path}`);
    chainCell(row, r.chain);
  }
  for (const c of data.consumers) {
    const row = body.insertRow();
    cell(row, `consumer ${c.name}`);
    chainCell(row, c.chain);
  }
}

async function loadLogging() {
  let data;
  try { data = await api("/admin/logging"); } catch (e) {
    document.getElementById("logging").replaceChildren(el("h2", "Logging"), el("p", "the logging plugin is not loaded", "muted"));
    return;
  }
  const body = document.querySelector("#levels-table tbody");
  body.replaceChildren();
  const rows = [["root", data.root], ...Object.entries(data.loggers)];
  for (const [name, level] of rows) {
    const row = body.insertRow();
    row.dataset.logger = name;
    cell(row, name);
    cell(row, level, "level");
  }
}

async function loadConfig() {
  document.getElementById("config-json").textContent = JSON.stringify(await api("/admin/config"), null, 2);
}

async function tick() {
  try {
    await Promise.all([refreshProducer(), refreshReactive(), refreshActive(), refreshKsqldb(), refreshProcessors()]);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.ready = "true";
    showError(null, "poll");
  } catch (e) {
    showError(e, "poll");
  }
}

function start() {
  const token = document.getElementById("token");
  token.value = sessionStorage.getItem("kafka-sidecar-admin-token") || "";
  token.addEventListener("change", () => {
    sessionStorage.setItem("kafka-sidecar-admin-token", token.value);
    loadOnce();
    loadHistory().catch((e) => showError(e, "poll"));
    tick();
  });
  document.getElementById("level-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("level-logger").value.trim() || "root";
    try {
      await post("/admin/logging", {loggers: {[name]: document.getElementById("level-value").value}});
      await loadLogging();
      showError(null);
    } catch (e) { showError(e); }
  });
  loadOnce();
  loadHistory().catch((e) => showError(e, "poll")).finally(() => {
    tick();
    setInterval(tick, POLL_MS);
  });
}

async function loadHistory() {
  // The sidecar samples every reactive consumer in the background: the charts start with the last minutes.
  const data = await api("/admin/console/history");
  const first = history.length ? history[0].t : Infinity;
  const earlier = data.samples.filter((s) => s.t < first).map((s) => ({
    t: s.t,
    lag: Object.fromEntries(Object.entries(s.consumers).map(([name, c]) => [name, c.lag])),
    delivered: Object.fromEntries(Object.entries(s.consumers).map(([name, c]) => [name, c.delivered])),
  }));
  history.unshift(...earlier);
  updateCharts();
}

function loadOnce() {
  // A missing token is cleared by the next good refresh once it is typed in; other errors stay shown.
  Promise.all([loadChains(), loadLogging(), loadConfig()]).catch((e) => showError(e, e.status === 401 || e.status === 403 ? "poll" : "action"));
}

start();

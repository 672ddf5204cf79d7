/* hive dashboard: reads GET /v1/hive/cluster once a second and draws it.
 * No framework and nothing from the network but this server. Text from the
 * server always goes in through textContent, never as HTML.
 *
 * The API key (when `hive serve --api-key` is set): open the page as
 * http://HOST:PORT/#key=KEY, or type it into the form the page shows on a
 * 401. It is kept in this tab's sessionStorage and sent as a Bearer header;
 * the #fragment never reaches the server or its logs. */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem("hive-key") || "";
let failures = 0;

(function takeKeyFromHash() {
  const m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
  if (!m) return;
  apiKey = decodeURIComponent(m[1]);
  sessionStorage.setItem("hive-key", apiKey);
  history.replaceState(null, "", location.pathname + location.search);
})();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmtInt(n) { return Math.round(n).toLocaleString("en-US"); }
function fmtRate(n) { return n >= 100 || n === 0 ? fmtInt(n) : n >= 10 ? n.toFixed(1) : n.toFixed(2); }
function fmtMs(ms) {
  if (!(ms > 0)) return "–";
  if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
  return ms < 10 ? ms.toFixed(2) + " ms" : ms < 100 ? ms.toFixed(1) + " ms" : fmtInt(ms) + " ms";
}
function fmtBytes(b) {
  if (!(b > 0)) return "0";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)) + " " + u[i];
}
function fmtDur(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  const h = Math.floor(s / 3600);
  return h < 48 ? h + " h " + Math.floor((s % 3600) / 60) + " min" : Math.floor(h / 24) + " days";
}
function bar(frac, slow) {
  const b = el("div", "bar" + (slow ? " slow" : ""));
  const s = el("span");
  s.style.width = Math.max(0, Math.min(1, frac || 0)) * 100 + "%";
  b.appendChild(s);
  return b;
}
function layerText(first, last) {
  return last - first === 1 ? "layer " + first : "layers " + first + "–" + (last - 1);
}
function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

function setConn(state, text) {
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
}

/* ---- the pieces ---- */

function drawSummary(d) {
  $("model").textContent = d.model;
  $("uptime").textContent = fmtDur(d.uptime_s);
  const tps = $("tps-now");
  tps.textContent = fmtRate(d.tps.now);
  tps.dataset.value = d.tps.now.toFixed(3);
  $("gen-total").textContent = fmtInt(d.sched.generated_tokens);
  $("req-count").textContent = fmtInt(d.requests.length);
  $("slots").textContent = d.sched.running + " / " + d.sched.max_seqs;
  $("queue").textContent = "queue " + d.sched.queued + " of " + d.sched.max_queue;
  const alive = d.nodes.filter((n) => n.state === "alive").length;
  $("node-count").textContent = d.nodes.length;
  $("node-count").dataset.value = d.nodes.length;
  $("node-hint").textContent = alive === d.nodes.length ? "all alive" : alive + " alive";
}

function drawRing(d) {
  const g = $("ring");
  g.replaceChildren();
  const defs = svg("defs", {});
  for (const id of ["arrow", "arrow-slow"]) {
    const m = svg("marker", { id, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    m.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
    defs.appendChild(m);
  }
  g.appendChild(defs);
  const st = d.stages;
  if (!st.length) {
    const why = d.sched.steps > 0 ? "the ring is being re-planned…" : "no ring yet";
    g.appendChild(svg("text", { x: 210, y: 160, "text-anchor": "middle", class: "mlayers" }, why));
    return;
  }
  const byAddr = {};
  for (const n of d.nodes) byAddr[n.addr] = n;
  const members = [{ name: "head", sub: "this server", cls: "head" }];
  for (const s of st) {
    const n = byAddr[s.addr];
    members.push({ name: s.name, sub: layerText(s.first, s.last), cls: n ? n.state : "alive" });
  }
  const m = members.length, cx = 210, cy = 160, rx = 150, ry = 108, hw = 50, hh = 23;
  const pos = members.map((_, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / m;
    return [cx + rx * Math.cos(a), cy + ry * Math.sin(a)];
  });
  const clip = (p, q) => { /* where the segment p->q leaves the box around p */
    const dx = q[0] - p[0], dy = q[1] - p[1];
    const t = Math.min(dx ? hw / Math.abs(dx) : 1e9, dy ? hh / Math.abs(dy) : 1e9);
    return [p[0] + dx * t, p[1] + dy * t];
  };
  const labels = [];
  for (let i = 0; i < m; i++) {
    const p = pos[i], q = pos[(i + 1) % m];
    const hopMs = i < st.length ? st[i].hop_in_ms : d.hop_out_ms;
    const slow = d.slowest_hop === i;
    let dx = q[0] - p[0], dy = q[1] - p[1];
    const len = Math.hypot(dx, dy) || 1;
    dx /= len; dy /= len;
    const bow = m === 2 ? 40 : 16;
    const c = [(p[0] + q[0]) / 2 + dy * bow, (p[1] + q[1]) / 2 - dx * bow];
    const a = clip(p, c), b = clip(q, c);
    const sa = [a[0] + (c[0] - a[0]) * 0.08, a[1] + (c[1] - a[1]) * 0.08];
    const sb = [b[0] + (c[0] - b[0]) * 0.08, b[1] + (c[1] - b[1]) * 0.08];
    g.appendChild(svg("path", {
      d: `M${sa[0]},${sa[1]} Q${c[0]},${c[1]} ${sb[0]},${sb[1]}`,
      class: "hop" + (slow ? " slowest" : ""), "marker-end": `url(#${slow ? "arrow-slow" : "arrow"})`,
      "data-hop": i,
    }));
    const off = 24; /* beside the curve, on its outer side */
    const mid = [0.25 * sa[0] + 0.5 * c[0] + 0.25 * sb[0] + dy * off, 0.25 * sa[1] + 0.5 * c[1] + 0.25 * sb[1] - dx * off];
    labels.push({ x: mid[0], y: mid[1], text: fmtMs(hopMs) + (slow ? " ▲" : ""), slow });
  }
  members.forEach((mb, i) => {
    const [x, y] = pos[i];
    g.appendChild(svg("rect", { x: x - hw, y: y - hh, width: 2 * hw, height: 2 * hh, rx: 10, class: "member " + mb.cls, "data-member": mb.name }));
    g.appendChild(svg("text", { x, y: y - 3, "text-anchor": "middle", class: "mname" }, short(mb.name, 12)));
    g.appendChild(svg("text", { x, y: y + 13, "text-anchor": "middle", class: "mlayers" }, mb.sub));
  });
  for (const l of labels) { /* last, so that no box hides a figure */
    const t = svg("text", { x: l.x, y: l.y + 4, "text-anchor": "middle", class: "hoplabel" + (l.slow ? " slowest" : "") }, l.text);
    const w = l.text.length * 6.4 + 8;
    g.appendChild(svg("rect", { x: l.x - w / 2, y: l.y - 9, width: w, height: 17, rx: 4, class: "hopbg" }));
    g.appendChild(t);
  }
}

function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

function drawChart(d) {
  const g = $("chart");
  g.replaceChildren();
  const all = d.tps.history;
  const span = Math.max(60, Math.min(300, all.length));
  const h = all.slice(-span);
  $("chart-span").textContent = span >= 120 ? Math.round(span / 60) + " minutes" : span + " seconds";
  const L = 44, R = 410, T = 12, B = 268;
  const ymax = niceCeil(Math.max(1, ...h) * 1.1);
  for (let k = 0; k <= 4; k++) {
    const y = B - ((B - T) * k) / 4;
    g.appendChild(svg("line", { x1: L, x2: R, y1: y, y2: y, class: "grid" }));
    g.appendChild(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "axis" }, fmtRate((ymax * k) / 4)));
  }
  const xs = (i) => R - ((h.length - 1 - i) * (R - L)) / (span - 1);
  g.appendChild(svg("text", { x: L, y: 290, class: "axis" }, "−" + (span >= 120 ? Math.round(span / 60) + " min" : span + " s")));
  g.appendChild(svg("text", { x: R, y: 290, "text-anchor": "end", class: "axis" }, "now"));
  if (h.length < 2) return;
  let line = "";
  h.forEach((v, i) => { line += (i ? " L" : "M") + xs(i).toFixed(1) + "," + (B - (v / ymax) * (B - T)).toFixed(1); });
  g.appendChild(svg("path", { d: line + ` L${xs(h.length - 1).toFixed(1)},${B} L${xs(0).toFixed(1)},${B} z`, class: "area" }));
  g.appendChild(svg("path", { d: line, class: "line" }));
}

function drawNodes(d) {
  const box = $("nodes");
  box.replaceChildren();
  if (!d.nodes.length) box.appendChild(el("p", "empty", "No node is known yet."));
  for (const n of d.nodes) {
    const c = el("div", "node");
    c.dataset.state = n.state;
    c.dataset.nodeName = n.name;
    const top = el("div", "row");
    top.appendChild(el("span", "name", n.name + (n.is_local && n.name !== "head" ? " (head)" : "")));
    const badge = el("span", "badge", n.state);
    badge.dataset.state = n.state;
    top.appendChild(badge);
    c.appendChild(top);
    c.appendChild(el("div", "addr", n.addr));
    const sys = el("div", "sys", n.os + (n.cpu ? " · " + short(n.cpu, 60) : ""));
    sys.title = n.cpu;
    c.appendChild(sys);
    const dl = el("dl");
    const row = (k, v) => { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); };
    row("layers", n.stage >= 0 ? layerText(n.first, n.last).replace(/^layers? /, "") + " · stage " + n.stage : "none");
    row("memory", fmtBytes(n.mem_used) + " of " + fmtBytes(n.mem_budget));
    c.appendChild(dl);
    c.appendChild(bar(n.mem_budget ? n.mem_used / n.mem_budget : 0));
    const dl2 = el("dl");
    const row2 = (k, v) => { dl2.appendChild(el("dt", "", k)); dl2.appendChild(el("dd", "", v)); };
    row2("round trip", fmtMs(n.rtt_ms));
    row2("speed", n.speed_bps > 0 ? (n.speed_bps / 1e9).toFixed(1) + " GB/s" : "–");
    row2("tokens", fmtInt(n.tokens));
    c.appendChild(dl2);
    box.appendChild(c);
  }
}

function timingRow(label, ms, max, slow) {
  const r = el("div", "t" + (slow ? " slowest" : ""));
  const k = el("span", "k", label);
  if (slow) k.appendChild(el("span", "tag", "slowest"));
  r.appendChild(k);
  r.appendChild(bar(max > 0 ? ms / max : 0, slow));
  r.appendChild(el("span", "v", fmtMs(ms)));
  return r;
}

function drawTiming(d) {
  const box = $("timing");
  box.replaceChildren();
  const st = d.stages;
  if (!st.length) { box.appendChild(el("p", "empty", "Nothing ran yet.")); return; }
  const hops = st.map((s) => s.hop_in_ms).concat([d.hop_out_ms]);
  const max = Math.max(...st.map((s) => s.compute_ms), ...hops);
  box.appendChild(el("h3", "", "compute per stage"));
  st.forEach((s, i) => box.appendChild(timingRow(i + " · " + s.name, s.compute_ms, max, d.slowest_stage === i)));
  box.appendChild(el("h3", "", "hops"));
  hops.forEach((ms, i) => {
    const from = i === 0 ? "head" : st[i - 1].name, to = i === st.length ? "head" : st[i].name;
    box.appendChild(timingRow(from + " → " + to, ms, max, d.slowest_hop === i));
  });
}

function drawRequests(d) {
  const box = $("requests");
  box.replaceChildren();
  if (!d.requests.length) { box.appendChild(el("p", "empty", "No request is being answered.")); return; }
  const rs = d.requests.slice().sort((a, b) => b.age_ms - a.age_ms);
  for (const r of rs) {
    const e = el("div", "r");
    e.dataset.request = r.id;
    const top = el("div", "row");
    top.appendChild(el("span", "id", r.id));
    top.appendChild(el("span", "meta", fmtInt(r.n_gen) + " / " + fmtInt(r.max_tokens) + " tokens"));
    e.appendChild(top);
    e.appendChild(bar(r.max_tokens ? r.n_gen / r.max_tokens : 0));
    const sub = el("div", "row");
    sub.appendChild(el("span", "meta", r.kind + (r.stream ? ", streamed" : "") + " · prompt " + fmtInt(r.n_prompt)));
    sub.appendChild(el("span", "meta", fmtDur(r.age_ms / 1000)));
    e.appendChild(sub);
    box.appendChild(e);
  }
}

/* A ledger table: one row per item, its name, numbers and a share bar of
 * weight(item) over the total; dataKey/dataVal tag each row for tests. */
function fillLedgerTable(id, items, name, numbers, weight, dataKey) {
  const tb = $(id).tBodies[0];
  tb.replaceChildren();
  const total = items.reduce((s, n) => s + weight(n), 0);
  for (const n of items) {
    const tr = el("tr");
    tr.dataset[dataKey] = name(n);
    tr.appendChild(el("td", "", name(n)));
    for (const v of numbers(n)) tr.appendChild(el("td", "num", fmtInt(v)));
    const td = el("td", "share");
    td.appendChild(bar(total ? weight(n) / total : 0));
    tr.appendChild(td);
    tb.appendChild(tr);
  }
}

function drawLedger(d) {
  fillLedgerTable("ledger", d.nodes, (n) => n.name,
    (n) => [n.tokens, n.tokens_per_min, n.layer_passes, n.layer_passes_per_min], (n) => n.layer_passes, "nodeName");
}

/* The ledger on disk: every session and job since it began. */
function drawLedgerTotals(d) {
  $("ledgerdb").hidden = !d.ledger;
  if (!d.ledger) return;
  fillLedgerTable("ledgertotals", d.ledger, (n) => n.node,
    (n) => [n.entries, n.tokens, n.layer_passes, Math.round(n.credit)], (n) => n.credit, "ledgerNode");
}

/* ---- the loop ---- */

async function poll() {
  try {
    const headers = apiKey ? { Authorization: "Bearer " + apiKey } : {};
    const r = await fetch("/v1/hive/cluster", { headers, cache: "no-store" });
    if (r.status === 401) {
      $("keybox").hidden = false;
      setConn("error", "API key needed");
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    $("keybox").hidden = true;
    failures = 0;
    drawSummary(d);
    drawRing(d);
    drawChart(d);
    drawNodes(d);
    drawTiming(d);
    drawRequests(d);
    drawLedger(d);
    drawLedgerTotals(d);
    document.body.dataset.ready = "1";
    setConn("live", "live");
  } catch (e) {
    failures++;
    setConn(failures > 2 ? "stale" : "connecting", failures > 2 ? "cannot reach the server" : "retrying");
  } finally {
    setTimeout(poll, 1000);
  }
}

$("keyform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  apiKey = $("keyinput").value.trim();
  sessionStorage.setItem("hive-key", apiKey);
  $("keyinput").value = "";
});
poll();

// meshctl dashboard: polls the JSON API and draws the service graph (SVG), the golden
// metrics per service and workload, and the routes in force. Every graph element carries
// data-* attributes (node ids, edge ends, rates, mTLS) so tests and scripts can read it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 3000;
const NODE_W = 200, NODE_H = 46, COL_W = 420, ROW_H = 100, PAD = 30;

function el(name, attrs, text) {
  const node = name.startsWith("svg:")
    ? document.createElementNS(SVG, name.slice(4))
    : document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const short = (s) => (s === null || s === undefined ? "-" : +(s * 100).toFixed(1) + "%");
const pct = (s) => (s === null || s === undefined ? "-" : (s * 100).toFixed(2) + "%");
const rps = (r) => r.toFixed(1) + "rps";
const ms = (m) => (m === null || m === undefined ? "-" : m < 10 ? m.toFixed(1) + "ms" : Math.round(m) + "ms");
// Green at 99% and above, amber from 95%, red below; grey without requests.
const health = (g) => (!g || g.requests <= 0 || g.success === null ? "idle"
  : g.success >= 0.99 ? "good" : g.success >= 0.95 ? "warn" : "bad");

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  return response.json();
}

// Columns by longest call chain from the callers nobody calls; a cycle stops growing.
function layout(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < nodes.length; round++) {
    let changed = false;
    for (const e of edges) {
      if (e.source === e.target) continue;
      const next = (depth.get(e.source) || 0) + 1;
      if (next > (depth.get(e.target) || 0) && next < nodes.length) {
        depth.set(e.target, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = new Map();
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) {
    const d = depth.get(n.id) || 0;
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(n);
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const places = new Map();
  for (const [d, column] of columns) {
    const offset = ((tallest - column.length) * ROW_H) / 2;
    column.forEach((n, i) => places.set(n.id, { x: PAD + d * COL_W, y: PAD + offset + i * ROW_H }));
  }
  const width = PAD * 2 + (Math.max(0, ...columns.keys()) * COL_W) + NODE_W;
  return { places, width, height: PAD * 2 + (tallest - 1) * ROW_H + NODE_H };
}

function lock(x, y) {
  const g = el("svg:g", { class: "lock", "data-mtls-lock": "", transform: `translate(${x},${y})` });
  g.append(el("svg:title", {}, "mutual TLS"));
  g.append(el("svg:path", { d: "M3 7 V4.5 a3 3 0 0 1 6 0 V7", fill: "none", stroke: "#1a7f4b", "stroke-width": 1.6 }));
  g.append(el("svg:rect", { x: 1, y: 7, width: 10, height: 7, rx: 1.5, fill: "#1a7f4b" }));
  return g;
}

function drawEdge(svg, e, places, degree) {
  const a = places.get(e.source), b = places.get(e.target);
  if (!a || !b) return;
  const g = e.golden;
  const group = el("svg:g", {
    class: "edge " + health(g), "data-source": e.source, "data-target": e.target,
    "data-rps": g.rps.toFixed(3), "data-success": g.success === null ? "" : g.success.toFixed(4),
    "data-p99": g.p99 === null ? "" : g.p99.toFixed(2), "data-mtls": e.mtls ? "true" : "false",
  });
  const [x1, y1] = [a.x + NODE_W, a.y + NODE_H / 2];
  const [x2, y2] = [b.x - 6, b.y + NODE_H / 2];
  const bend = Math.max(40, Math.abs(x2 - x1) / 2);
  const width = Math.min(6, 1.5 + Math.log2(1 + g.rps));
  group.append(el("svg:path", {
    d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
    "stroke-width": width.toFixed(1), "marker-end": "url(#arrow)",
  }));
  // The label sits where the edge is apart from its siblings: past the middle when it fans
  // out of a node with more edges than its target has coming in, before it otherwise.
  const fansOut = (degree.out.get(e.source) || 0) > (degree.in.get(e.target) || 0);
  const t = fansOut ? 0.6 : 0.4, ease = 3 * t * t - 2 * t * t * t;
  const mx = x1 + (x2 - x1) * t, my = y1 + (y2 - y1) * ease;
  const text = `${rps(g.rps)} · ${short(g.success)} · p99 ${ms(g.p99)}`;
  const half = text.length * 3.1;
  group.append(el("svg:text", { class: "label", x: mx + (e.mtls ? 8 : 0), y: my - 5, "text-anchor": "middle" }, text));
  if (e.mtls) group.append(lock(mx - half - 8, my - 16));
  svg.append(group);
}

function drawNode(svg, n, places) {
  const p = places.get(n.id);
  const w = n.workload;
  const group = el("svg:g", {
    class: "node " + health(w && w.golden), "data-node": n.id, "data-name": n.name, "data-kind": n.kind,
    transform: `translate(${p.x},${p.y})`,
  });
  if (n.kind === "external") {
    group.append(el("svg:ellipse", { cx: NODE_W / 2, cy: NODE_H / 2, rx: NODE_W / 2, ry: NODE_H / 2 }));
  } else {
    group.append(el("svg:rect", { width: NODE_W, height: NODE_H, rx: 8 }));
  }
  group.append(el("svg:text", { class: "name", x: NODE_W / 2, y: 19, "text-anchor": "middle" }, n.name));
  const detail = w ? `${rps(w.golden.rps)} · ${short(w.golden.success)} · ${w.meshed[0]}/${w.meshed[1]} meshed`
    : n.kind === "service" ? "service (workload not known)" : "outside the mesh";
  group.append(el("svg:text", { class: "detail", x: NODE_W / 2, y: 36, "text-anchor": "middle" }, detail));
  svg.append(group);
}

function renderGraph(graph) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const nodes = graph.nodes || [], edges = graph.edges || [];
  const { places, width, height } = layout(nodes, edges);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("data-nodes", nodes.length);
  svg.setAttribute("data-edges", edges.length);
  const defs = el("svg:defs");
  const marker = el("svg:marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 10, markerHeight: 10,
    markerUnits: "userSpaceOnUse", orient: "auto",
  });
  marker.append(el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#556" }));
  defs.append(marker);
  svg.append(defs);
  const degree = { out: new Map(), in: new Map() };
  for (const e of edges) {
    degree.out.set(e.source, (degree.out.get(e.source) || 0) + 1);
    degree.in.set(e.target, (degree.in.get(e.target) || 0) + 1);
  }
  edges.forEach((e) => drawEdge(svg, e, places, degree));
  nodes.forEach((n) => drawNode(svg, n, places));
  const errors = document.getElementById("errors");
  errors.replaceChildren(...(graph.errors || []).map((e) => el("li", {}, e)));
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(([attrs, cells]) => {
    const tr = el("tr", attrs);
    cells.forEach((c) => tr.append(el("td", {}, c)));
    return tr;
  }));
}

function renderServices(doc) {
  fillTable("services", (doc.services || []).map((s) => [
    { "data-service": `${s.name}.${s.namespace}`, "data-rps": s.golden.rps.toFixed(3) },
    [s.name, s.workloads.join(", "), pct(s.golden.success), rps(s.golden.rps), ms(s.golden.p50), ms(s.golden.p95), ms(s.golden.p99)],
  ]));
}

function renderWorkloads(doc) {
  fillTable("workloads", (doc.workloads || []).map((w) => [
    { "data-workload": `${w.name}.${w.namespace}` },
    [w.name, `${w.meshed[0]}/${w.meshed[1]}`, pct(w.golden.success), rps(w.golden.rps),
      ms(w.golden.p50), ms(w.golden.p95), ms(w.golden.p99), String(Math.round(w.tcpConn))],
  ]));
}

function renderRoutes(doc) {
  const routes = doc.routes || [];
  const box = document.getElementById("routes");
  const problems = (doc.errors || []).map((e) => el("p", { class: "problem" }, e));
  if (routes.length === 0) {
    box.replaceChildren(el("p", { class: "empty" }, "No VirtualService applies: every host takes its default route."), ...problems);
    return;
  }
  box.replaceChildren(...routes.map((r) => {
    const div = el("div", { class: "host", "data-virtual-service": r.virtualService, "data-host": r.host });
    const h = el("h3", {}, r.host + " ");
    const where = r.proxies.length ? `on ${r.proxies.length} sidecar(s)` : "in the cluster's config";
    h.append(el("small", {}, `VirtualService ${r.virtualService}, ${where}`));
    const list = el("ol");
    r.routes.forEach((route) => list.append(el("li", {}, `${route.match} → ${route.destinations.join(", ") || "(redirect or direct response)"}`)));
    div.append(h, list);
    return div;
  }), ...problems);
}

async function refresh() {
  try {
    const [graph, services, workloads, routes] = await Promise.all(
      ["/api/graph", "/api/services", "/api/workloads", "/api/routes"].map(getJson));
    if (graph.ready) {
      renderGraph(graph);
      renderServices(services);
      renderWorkloads(workloads);
      document.getElementById("status").textContent =
        `over the last ${graph.windowSeconds.toFixed(1)}s · updated ${new Date().toLocaleTimeString()}`;
    }
    if (routes.routes) renderRoutes(routes);
    document.body.dataset.ready = graph.ready ? "true" : "false";
  } catch (error) {
    document.getElementById("status").textContent = "meshctl does not answer: " + error;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);

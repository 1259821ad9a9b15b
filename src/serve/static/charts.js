// Metric panels: one per key, one line per selected run (or per group), down-sampled on the server to about the
// panel's pixel width; dragging across a panel zooms and fetches that range again (full resolution once it is
// narrow enough); double-click goes back to the whole run.
import { projectKeys, projectParams, setState } from "./app.js";
import { align, buildLines } from "./lines.js";
import { api, COLORS, chartNumber, clear, columnId, columnLabel, el, fmt, parseColumnId, parseStored } from "./util.js";

const NUMERIC_KINDS = 4 | 8 | 16 | 128; // int, bigint, float, int64 (metric_keys.kinds)
const panels = new Map(); // key -> {el, uplot, rev}
/**
 * Series answers of this page's life, by query: smoothing, grouping, log scale and other panels' changes redraw
 * without asking the server again (reload the page to see what a sync added since).
 */
const seriesCache = new Map();
function fetchSeries(q) {
  const id = q.toString();
  let p = seriesCache.get(id);
  if (!p) {
    p = api("series", q);
    p.catch(() => seriesCache.delete(id));
    seriesCache.set(id, p);
    if (seriesCache.size > 64) seriesCache.delete(seriesCache.keys().next().value);
  }
  return p;
}
let runsInfo = { sig: "", names: new Map(), groups: new Map() };

/** Names (and group-by values) of the selected runs. */
async function selectedRuns(s) {
  const sig = JSON.stringify([s.e, s.p, s.r, s.g]);
  if (runsInfo.sig === sig) return runsInfo;
  const names = new Map();
  const groups = new Map();
  if (s.r.length) {
    const q = projectParams(s);
    for (const id of s.r) q.append("run", id);
    if (s.g) q.append("col", s.g);
    q.set("limit", "1000");
    const r = await api("runs", q);
    for (const row of r.rows) {
      names.set(row.run_id, row.run_name || row.run_id);
      if (s.g) groups.set(row.run_id, fmt(parseStored(row.values[0]) ?? null));
    }
  }
  runsInfo = { sig, names, groups };
  return runsInfo;
}

function controls(s, keys) {
  const numeric = keys.history.filter((k) => (k.kinds & NUMERIC_KINDS) !== 0).map((k) => k.key);
  const keyPick = el("select", { "aria-label": "add panel", id: "add-panel" });
  keyPick.append(el("option", { value: "" }, "+ metric panel…"));
  for (const k of numeric) keyPick.append(el("option", { value: k, disabled: s.k.includes(k) }, k));
  keyPick.addEventListener("change", () => keyPick.value && setState({ k: [...s.k, keyPick.value] }));
  const xPick = el("select", { "aria-label": "x axis", id: "x-axis", onchange: () => setState({ x: xPick.value }) });
  for (const [v, label] of [
    ["step", "x: step"],
    ["runtime", "x: runtime (s)"],
    ["wall", "x: wall time"],
  ]) {
    xPick.append(el("option", { value: v, selected: (s.x ?? "step") === v }, label));
  }
  const log = el("input", {
    type: "checkbox",
    id: "log-y",
    checked: s.log === "1",
    onchange: () => setState({ log: log.checked ? "1" : "" }),
  });
  const smooth = el("input", {
    type: "range",
    id: "smoothing",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: s.s ?? "0",
    onchange: () => setState({ s: smooth.value === "0" ? "" : smooth.value }),
  });
  const groupPick = el("select", {
    "aria-label": "group by",
    id: "group-by",
    onchange: () => setState({ g: groupPick.value }),
  });
  groupPick.append(el("option", { value: "" }, "group: none"));
  for (const p of keys.config) {
    const id = columnId("config", p);
    groupPick.append(el("option", { value: id, selected: s.g === id }, `group: ${p.join(".")}`));
  }
  return el(
    "div",
    { class: "bar" },
    keyPick,
    xPick,
    el("label", {}, log, " log y"),
    el("label", {}, "smoothing ", smooth, ` ${Number(s.s ?? 0).toFixed(2)}`),
    groupPick,
  );
}

export async function renderCharts(root, s, current = () => true) {
  window.drwandb.panels = {};
  const keys = await projectKeys(s);
  if (!current()) return;
  clear(root);
  root.append(el("h2", {}, "Charts"), controls(s, keys));
  if (!s.r.length) root.append(el("p", { class: "muted" }, "Select runs in the table to chart them."));
  if (!s.k.length) root.append(el("p", { class: "muted" }, "Add a metric panel to draw a key."));
  const grid = el("div", { class: "panels", id: "panels" });
  root.append(grid);
  const info = await selectedRuns(s);
  if (!current()) return;
  for (const [k, p] of panels) {
    p.uplot?.destroy();
    panels.delete(k);
  }
  for (const key of s.k) {
    const panel = el("div", { class: "panel", dataset: { key, rev: "0" } });
    grid.append(panel);
    const p = { el: panel, uplot: null, rev: 0 };
    panels.set(key, p);
    drawPanel(p, key, s, info, zooms.get(zoomId(s, key)) ?? null).catch((e) => {
      panel.append(el("p", { class: "muted" }, String(e.message ?? e)));
    });
  }
}

/** Zoomed x ranges by panel (key, x axis, runs), kept across redraws of this page (smoothing, grouping, ...). */
const zooms = new Map();
function zoomId(s, key) {
  return JSON.stringify([s.e, s.p, key, s.x ?? "step", s.r]);
}

async function drawPanel(p, key, s, info, range) {
  if (range) zooms.set(zoomId(s, key), range);
  else zooms.delete(zoomId(s, key));
  const panel = p.el;
  const width = Math.max(300, panel.clientWidth - 16);
  const q = projectParams(s);
  q.set("key", key);
  q.set("x", s.x ?? "step");
  q.set("buckets", String(Math.round(width)));
  for (const id of s.r) q.append("run", id);
  if (range) {
    q.set("x0", String(range[0]));
    q.set("x1", String(range[1]));
  }
  panel.dataset.loading = "1";
  const data = s.r.length ? await fetchSeries(q) : { series: [] };
  if (!panel.isConnected || panels.get(key) !== p) return;
  const series = data.series.map((x) => ({ ...x, y: x.y.map(chartNumber) }));
  const smoothing = Number(s.s ?? 0);
  const groupOf = s.g ? (id) => info.groups.get(id) ?? "(none)" : null;
  const lines = buildLines(series, { names: info.names, groupOf, smoothing });
  const log = s.log === "1";
  const { data: aligned, marks } = align(lines, { log });
  const sampled = series.some((x) => x.sampled);
  const points = series.reduce((n, x) => n + x.x.length, 0);
  const total = series.reduce((n, x) => n + x.total, 0);

  clear(panel);
  const reset = el(
    "button",
    { title: "show the whole range", onclick: () => drawPanel(p, key, s, info, null) },
    "reset zoom",
  );
  panel.append(
    el(
      "div",
      { class: "title" },
      el("span", {}, key),
      el(
        "span",
        { class: "note" },
        `${points} of ${total} points${sampled ? " (down-sampled: min/max kept)" : ""} `,
        range ? reset : null,
        el("button", { title: "remove panel", onclick: () => setState({ k: s.k.filter((x) => x !== key) }) }, "×"),
      ),
    ),
  );
  const uSeries = [{ label: s.x ?? "step" }];
  const bands = [];
  lines.forEach((l, i) => {
    const color = s.g ? COLORS[i % COLORS.length] : COLORS[Math.max(0, s.r.indexOf(l.runIds[0])) % COLORS.length];
    const mk = marks[i];
    uSeries.push({
      label: l.label,
      stroke: color,
      width: 1.5,
      points: { show: false },
      value: (_u, v, _si, idx) => {
        if (v !== null && v !== undefined) return fmt(v);
        const x = idx === null || idx === undefined ? undefined : aligned[0][idx];
        return mk.find((m) => m.x === x)?.kind ?? "—";
      },
    });
    if (l.min) {
      const at = uSeries.length;
      uSeries.push({ label: `${l.label} max`, stroke: `${color}55`, width: 0.5, points: { show: false } });
      uSeries.push({ label: `${l.label} min`, stroke: `${color}55`, width: 0.5, points: { show: false } });
      bands.push({ series: [at, at + 1], fill: `${color}22` });
    }
  });
  const seriesIndexOfLine = [];
  {
    let at = 1;
    for (const l of lines) {
      seriesIndexOfLine.push(at);
      at += l.min ? 3 : 1;
    }
  }
  const opts = {
    width,
    height: 260,
    series: uSeries,
    bands,
    scales: { x: { time: (s.x ?? "step") === "wall" }, y: log ? { distr: 3 } : {} },
    legend: { live: true },
    cursor: {
      drag: { x: true, y: false, setScale: false },
      bind: {
        dblclick: () => () => {
          drawPanel(p, key, s, info, null);
          return null;
        },
      },
    },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4) return;
          const x0 = u.posToVal(u.select.left, "x");
          const x1 = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          drawPanel(p, key, s, info, [x0, x1]);
        },
      ],
      draw: [
        (u) => {
          // NaN: a grey tick at the bottom; +Infinity / -Infinity: a triangle at the top / bottom edge.
          const ctx = u.ctx;
          const { top, height } = u.bbox;
          const r = 4 * devicePixelRatio;
          ctx.save();
          marks.forEach((mk, i) => {
            for (const m of mk) {
              ctx.fillStyle = m.kind === "NaN" ? "#9ca3af" : uSeries[seriesIndexOfLine[i]].stroke;
              const cx = u.valToPos(m.x, "x", true);
              ctx.beginPath();
              if (m.kind === "Infinity") {
                ctx.moveTo(cx - r, top + r * 1.6);
                ctx.lineTo(cx + r, top + r * 1.6);
                ctx.lineTo(cx, top);
              } else if (m.kind === "-Infinity") {
                ctx.moveTo(cx - r, top + height - r * 1.6);
                ctx.lineTo(cx + r, top + height - r * 1.6);
                ctx.lineTo(cx, top + height);
              } else {
                ctx.rect(cx - 1, top + height - r * 2, 2 * devicePixelRatio, r * 2);
              }
              ctx.fill();
            }
          });
          ctx.restore();
        },
      ],
    },
  };
  p.uplot?.destroy();
  const chartBox = el("div");
  panel.append(chartBox);
  p.uplot = new uPlot(opts, aligned, chartBox);
  // A band's min and max series draw the band only: no legend entries of their own.
  const legendRows = p.uplot.root.querySelectorAll(".u-legend .u-series");
  uSeries.forEach((ser, i) => {
    if (/ (min|max)$/.test(ser.label) && !lines.some((l) => l.label === ser.label))
      legendRows[i]?.classList.add("band-edge");
  });
  if (range) p.uplot.setScale("x", { min: range[0], max: range[1] });
  p.rev++;
  window.drwandb.panels[key] = {
    lines,
    marks,
    sampled,
    range,
    points,
    total,
    log,
    yDistr: p.uplot.scales.y.distr,
    rev: p.rev,
    uplotData: aligned,
  };
  panel.dataset.rev = String(p.rev);
  panel.dataset.sampled = sampled ? "1" : "0";
  panel.dataset.zoomed = range ? "1" : "0";
  delete panel.dataset.loading;
}

export { columnLabel, parseColumnId };

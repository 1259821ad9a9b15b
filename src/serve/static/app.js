// The viewer's entry: the view's state lives in the URL hash (bookmarkable), and each change re-renders the view.
import { renderCharts } from "./charts.js";
import { renderDiff, renderRun } from "./run.js";
import { renderTable } from "./table.js";
import { api, clear, el } from "./util.js";

const LIST_KEYS = ["r", "k", "c", "fstate", "ftag", "fgroup"];

/** The state in the hash: #view?e=..&p=..&r=run&r=run2&k=key... (repeated parameters for lists). */
export function readState() {
  const h = location.hash.replace(/^#/, "");
  const [view, qs] = h.includes("?") ? [h.slice(0, h.indexOf("?")), h.slice(h.indexOf("?") + 1)] : [h, ""];
  const q = new URLSearchParams(qs);
  const s = { view: view || "runs" };
  for (const k of LIST_KEYS) s[k] = [];
  for (const [k, v] of q) {
    if (LIST_KEYS.includes(k)) s[k].push(v);
    else s[k] = v;
  }
  return s;
}

export function stateHash(s) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) {
    if (k === "view" || v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.set(k, String(v));
  }
  return `#${s.view}?${q}`;
}

/** Changes the state: a new history entry (or a replaced one), then a re-render through hashchange. */
export function setState(patch, { replace = false } = {}) {
  const next = { ...readState(), ...patch };
  const hash = stateHash(next);
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, "", hash);
  else history.pushState(null, "", hash);
  render();
}

export function projectParams(s = readState()) {
  return new URLSearchParams({ entity: s.e ?? "", project: s.p ?? "" });
}

let projects = [];
const keysCache = new Map();

/** Config/summary keys and history keys of the current project (fetched once per project). */
export async function projectKeys(s = readState()) {
  const id = JSON.stringify([s.e, s.p]);
  if (!keysCache.has(id)) keysCache.set(id, api("keys", projectParams(s)));
  return keysCache.get(id);
}

let renderSeq = 0;
export async function render() {
  const s = readState();
  const seq = ++renderSeq;
  if (!s.e || !projects.some((p) => p.entity === s.e && p.project === s.p)) {
    const first = projects[0];
    if (first) {
      setState({ e: first.entity, p: first.project }, { replace: true });
      return;
    }
  }
  const sel = document.getElementById("project");
  sel.value = JSON.stringify([s.e, s.p]);
  const main = document.getElementById("main");
  if (projects.length === 0) {
    clear(main).append(el("p", { class: "muted" }, "The archive holds no runs yet: run dr-wandb sync first."));
    return;
  }
  if (s.view === "run") {
    await renderRun(main, s, () => seq === renderSeq);
  } else if (s.view === "diff") {
    await renderDiff(main, s, () => seq === renderSeq);
  } else {
    let table = document.getElementById("runs-section");
    let charts = document.getElementById("charts-section");
    if (!table || !charts) {
      clear(main);
      table = el("section", { id: "runs-section" });
      charts = el("section", { id: "charts-section" });
      main.append(table, charts);
    }
    const current = () => seq === renderSeq;
    await Promise.all([renderTable(table, s, current), renderCharts(charts, s, current)]);
  }
}

async function start() {
  const r = await api("projects");
  projects = r.projects;
  const sel = document.getElementById("project");
  for (const p of projects) {
    sel.append(el("option", { value: JSON.stringify([p.entity, p.project]) }, `${p.entity}/${p.project} (${p.runs})`));
  }
  sel.addEventListener("change", () => {
    const [e, p] = JSON.parse(sel.value);
    location.hash = stateHash({ view: "runs", e, p });
  });
  window.addEventListener("popstate", () => render());
  await render();
}

window.drwandb = { panels: {}, readState, setState };
start().catch((e) => {
  const box = document.getElementById("error");
  box.hidden = false;
  box.textContent = String(e?.message ?? e);
});

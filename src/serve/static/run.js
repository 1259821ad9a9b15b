// The run page (metadata, config and summary as searchable trees with exact values, system-metrics charts, files,
// sweep) and the config diff of 2-5 selected runs.
import { projectParams, stateHash } from "./app.js";
import { api, clear, el, fmt, fmtDuration, fmtTime, parseStored } from "./util.js";

function isObj(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof v !== "bigint";
}

function leafClass(v) {
  return typeof v === "number" || typeof v === "bigint"
    ? Number.isFinite(Number(v))
      ? "n"
      : "x"
    : typeof v === "string"
      ? "s"
      : "";
}

/** A JSON value as nested <details>; `filter` (lower-case text) keeps only matching leaves (and opens them). */
function tree(value, filter) {
  const walk = (v, path) => {
    if (isObj(v) || Array.isArray(v)) {
      const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
      const kids = entries.map(([k, x]) => walk(x, [...path, k])).filter(Boolean);
      if (!kids.length && (filter || entries.length)) return null;
      if (!path.length) return kids;
      return el(
        "details",
        { open: Boolean(filter) || path.length < 2 },
        el("summary", {}, el("span", { class: "k" }, path[path.length - 1]), Array.isArray(v) ? ` [${v.length}]` : ""),
        kids.length ? kids : el("div", { class: "leaf muted" }, Array.isArray(v) ? "[]" : "{}"),
      );
    }
    const text = typeof v === "string" ? JSON.stringify(v) : fmt(v);
    if (filter && !`${path.join(".")} ${text}`.toLowerCase().includes(filter)) return null;
    return el(
      "div",
      { class: "leaf", dataset: { path: JSON.stringify(path) } },
      el("span", { class: "k" }, path[path.length - 1] ?? ""),
      ": ",
      el("span", { class: leafClass(v) }, text),
    );
  };
  const out = walk(value, []);
  return Array.isArray(out) ? out : [out ?? el("div", { class: "muted" }, "(empty)")];
}

function searchableTree(title, value, id) {
  const box = el("div", { class: "tree", id });
  const input = el("input", {
    type: "search",
    placeholder: `search ${title.toLowerCase()}…`,
    oninput: () => clear(box).append(...tree(value, input.value.trim().toLowerCase())),
  });
  box.append(...tree(value, ""));
  return el("div", {}, el("h3", {}, title), el("div", { class: "bar" }, input), box);
}

function fileUrl(s, run, name, download) {
  const q = projectParams(s);
  q.set("run", run);
  q.set("name", name);
  if (download) q.set("download", "1");
  return `/api/file?${q}`;
}

function systemCharts(rows) {
  const parsed = rows.map((r) => ({ t: r.runtime, m: parseStored(r.metrics) ?? {} }));
  const keys = [...new Set(parsed.flatMap((r) => Object.keys(r.m)))].filter((k) =>
    parsed.some((r) => typeof r.m[k] === "number"),
  );
  const box = el("div", { class: "panels", id: "system-charts" });
  const pick = el("select", { "aria-label": "system metric" });
  const draw = () => {
    clear(box);
    const chosen = [...pick.selectedOptions].map((o) => o.value).slice(0, 6);
    for (const k of chosen) {
      const pts = parsed.filter((r) => typeof r.t === "number" && typeof r.m[k] === "number");
      const panel = el("div", { class: "panel" }, el("div", { class: "title" }, k));
      box.append(panel);
      new uPlot(
        {
          width: 480,
          height: 180,
          scales: { x: { time: false } },
          series: [{ label: "runtime (s)" }, { label: k, stroke: "#2563eb", points: { show: false } }],
        },
        [pts.map((r) => r.t), pts.map((r) => r.m[k])],
        panel,
      );
    }
  };
  pick.multiple = true;
  pick.size = Math.min(6, Math.max(2, keys.length));
  for (const [i, k] of keys.entries()) pick.append(el("option", { value: k, selected: i < 4 }, k));
  pick.addEventListener("change", draw);
  if (!keys.length) return el("p", { class: "muted" }, "No system metrics stored (sync with --system-metrics).");
  setTimeout(draw);
  return el("div", {}, el("div", { class: "bar" }, pick), box);
}

export async function renderRun(main, s, current) {
  const q = projectParams(s);
  q.set("run", s.run ?? "");
  const [run, files, sys] = await Promise.all([api("run", q), api("files", q), api("system", q)]);
  if (!current()) return;
  const back = el("a", { href: stateHash({ ...s, view: "runs", run: "" }) }, "‹ runs");
  const meta = [
    ["run id", run.run_id],
    ["state", run.state],
    ["created", fmtTime(run.created_at)],
    ["last heartbeat", fmtTime(run.heartbeat_at)],
    ["runtime", fmtDuration((Date.parse(run.heartbeat_at) - Date.parse(run.created_at)) / 1000)],
    ["user", run.user],
    ["group", run.group],
    ["job type", run.job_type],
    ["tags", run.tags.join(", ")],
    ["commit", run.commit],
    ["history", `${run.history_rows} rows, last step ${run.last_history_step ?? "-"}`],
    ["synced", fmtTime(run.synced_at)],
    ["deleted on W&B", run.deleted ? `yes (${fmtTime(run.deleted_at)})` : null],
    ["notes", run.notes],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  const sweep = parseStored(run.sweep_info);
  const fileBox = el("div", { id: "files" });
  const fileFilter = el("input", { type: "search", placeholder: "filter files…", oninput: () => drawFiles() });
  const drawFiles = (all = false) => {
    const needle = fileFilter.value.trim().toLowerCase();
    const shown = files.files.filter((f) => !needle || f.name.toLowerCase().includes(needle));
    const rows = (all ? shown : shown.slice(0, 50)).map((f) =>
      el(
        "tr",
        {},
        el(
          "td",
          {},
          f.local_path
            ? el("a", { href: fileUrl(s, run.run_id, f.name, !/\.(log|txt|json|ya?ml|md)$/i.test(f.name)) }, f.name)
            : f.name,
        ),
        el("td", { class: "num" }, f.size ?? ""),
        el("td", { class: "muted" }, f.local_path ? "" : "not downloaded"),
      ),
    );
    clear(fileBox).append(
      el("table", { class: "runs" }, el("tbody", {}, rows)),
      shown.length > rows.length
        ? el("button", { onclick: () => drawFiles(true) }, `show all ${shown.length} files`)
        : null,
    );
  };
  drawFiles();
  const logBox = el("div", { id: "output-log" });
  const log = files.files.find((f) => f.name === "output.log" && f.local_path);
  if (log) {
    fetch(fileUrl(s, run.run_id, log.name, false))
      .then((r) => r.text())
      .then((t) => logBox.append(el("h3", {}, "output.log"), el("pre", { class: "log" }, t)));
  }
  clear(main).append(
    el("div", { class: "bar" }, back),
    el(
      "h2",
      { id: "run-title" },
      run.run_name || run.run_id,
      run.deleted ? el("span", { class: "muted" }, " (deleted on W&B)") : "",
    ),
    el(
      "dl",
      { class: "meta" },
      meta.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]),
    ),
    el(
      "div",
      { class: "cols2" },
      searchableTree("Config", parseStored(run.config), "config-tree"),
      searchableTree("Summary", parseStored(run.summary), "summary-tree"),
    ),
    isObj(sweep) && Object.keys(sweep).length ? searchableTree("Sweep", sweep, "sweep-tree") : null,
    el("h3", {}, "System metrics"),
    systemCharts(sys.rows),
    el("h3", {}, `Files (${files.files.length})`),
    files.files.length
      ? el("div", {}, el("div", { class: "bar" }, fileFilter), fileBox)
      : el("p", { class: "muted" }, "No files stored (sync with --files)."),
    logBox,
    el(
      "details",
      {},
      el("summary", {}, "W&B metadata"),
      el("div", { class: "tree" }, tree(parseStored(run.wandb_metadata), "")),
    ),
  );
}

function flatten(v, path = [], out = new Map()) {
  if (isObj(v) && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v)) flatten(x, [...path, k], out);
  } else out.set(JSON.stringify(path), { path, text: fmt(v) });
  return out;
}

export async function renderDiff(main, s, current) {
  const ids = s.r.slice(0, 5);
  const runs = await Promise.all(
    ids.map((id) => {
      const q = projectParams(s);
      q.set("run", id);
      return api("run", q);
    }),
  );
  if (!current()) return;
  const flat = runs.map((r) => flatten(parseStored(r.config)));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const differ = keys.filter((k) => new Set(flat.map((f) => f.get(k)?.text ?? "\u0000absent")).size > 1);
  const rows = differ.map((k) =>
    el(
      "tr",
      {},
      el("th", {}, JSON.parse(k).join(".")),
      flat.map((f) => el("td", {}, f.has(k) ? f.get(k).text : "—")),
    ),
  );
  clear(main).append(
    el("div", { class: "bar" }, el("a", { href: stateHash({ ...s, view: "runs" }) }, "‹ runs")),
    el("h2", {}, `Config diff of ${runs.length} runs: ${differ.length} of ${keys.length} keys differ`),
    el(
      "table",
      { class: "diff", id: "config-diff" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", {}, "key"),
          runs.map((r) => el("th", {}, r.run_name || r.run_id)),
        ),
      ),
      el("tbody", {}, rows),
    ),
  );
}

// The runs table: server-side filter, sort and paging (fast at 10,000 runs), chosen config/summary columns,
// selection checkboxes (and "select all filtered"), links to run pages.
import { projectKeys, projectParams, readState, setState } from "./app.js";
import { api, COLORS, clear, columnId, columnLabel, el, fmt, fmtDuration, fmtTime, parseStored } from "./util.js";

const PAGE = 50;
const FIXED = [
  ["run_name", "name"],
  ["state", "state"],
  ["created_at", "created"],
  ["runtime", "runtime"],
  ["tags", "tags", false],
  ["group", "group"],
  ["job_type", "job type"],
  ["user", "user"],
  ["sweep", "sweep"],
];

/** Filter and sort parameters of the table's state (shared with "select all filtered"). */
export function filterParams(s) {
  const q = projectParams(s);
  if (s.q) q.set("q", s.q);
  for (const v of s.fstate) q.append("state", v);
  for (const v of s.ftag) q.append("tag", v);
  for (const v of s.fgroup) q.append("group", v);
  if (s.sort) q.set("sort", s.sort);
  if (s.desc === "1") q.set("desc", "1");
  return q;
}

function select(label, values, chosen, onchange) {
  const sel = el("select", { "aria-label": label, onchange: () => onchange(sel.value ? [sel.value] : []) });
  sel.append(el("option", { value: "" }, `${label}: any`));
  for (const v of values) sel.append(el("option", { value: v, selected: chosen.includes(v) }, v || "(none)"));
  return sel;
}

let textTimer;
const facetsCache = new Map();

export async function renderTable(root, s, current = () => true) {
  const fid = JSON.stringify([s.e, s.p]);
  if (!facetsCache.has(fid)) facetsCache.set(fid, api("facets", projectParams(s)));
  const [facets, keys] = await Promise.all([facetsCache.get(fid), projectKeys(s)]);
  const page = Math.max(0, Number(s.page ?? 0) | 0);
  const q = filterParams(s);
  for (const c of s.c) q.append("col", c);
  q.set("offset", String(page * PAGE));
  q.set("limit", String(PAGE));
  const data = await api("runs", q);
  if (!current()) return;

  const existingText = root.querySelector("input[type=search]");
  const hadFocus = existingText && document.activeElement === existingText;
  clear(root);
  const text = el("input", {
    type: "search",
    placeholder: "filter runs…",
    value: s.q ?? "",
    "aria-label": "filter runs",
    oninput: () => {
      clearTimeout(textTimer);
      textTimer = setTimeout(() => setState({ q: text.value, page: 0 }, { replace: true }), 250);
    },
  });
  const colPick = el("select", { "aria-label": "add column" });
  colPick.append(el("option", { value: "" }, "+ column…"));
  for (const [source, paths] of [
    ["config", keys.config],
    ["summary", keys.summary],
  ]) {
    const og = el("optgroup", { label: source });
    for (const p of paths) og.append(el("option", { value: columnId(source, p) }, p.join(".")));
    colPick.append(og);
  }
  colPick.addEventListener("change", () => {
    if (colPick.value && !s.c.includes(colPick.value)) setState({ c: [...s.c, colPick.value] });
  });
  const selected = new Set(s.r);
  const selectAll = el(
    "button",
    {
      id: "select-filtered",
      onclick: async () => {
        const r = await api("run-ids", filterParams(readState()));
        // Charts take at most 200 runs (the first 200 in the table's order); the count says so.
        setState({ r: r.ids.slice(0, 200), more: r.ids.length > 200 ? String(r.ids.length) : "" });
      },
    },
    "select all filtered",
  );
  root.append(
    el(
      "div",
      { class: "bar" },
      text,
      select("state", facets.states, s.fstate, (v) => setState({ fstate: v, page: 0 })),
      select("tag", facets.tags, s.ftag, (v) => setState({ ftag: v, page: 0 })),
      select("group", facets.groups, s.fgroup, (v) => setState({ fgroup: v, page: 0 })),
      colPick,
      selectAll,
      el("button", { onclick: () => setState({ r: [] }), disabled: selected.size === 0 }, "clear selection"),
      el(
        "button",
        { onclick: () => setState({ view: "diff" }), disabled: selected.size < 2 || selected.size > 5 },
        "config diff",
      ),
      el(
        "span",
        { class: "muted", id: "run-count" },
        `${data.total} runs · ${selected.size} selected`,
        s.more && selected.size === 200 ? ` (the first 200 of ${s.more} filtered: charts take at most 200)` : "",
      ),
    ),
  );
  if (s.c.length) {
    root.append(
      el(
        "div",
        { class: "bar" },
        s.c.map((c) =>
          el(
            "span",
            { class: "chip" },
            columnLabel(c),
            el("button", { title: "remove", onclick: () => setState({ c: s.c.filter((x) => x !== c) }) }, "×"),
          ),
        ),
      ),
    );
  }
  const head = el("tr", {}, el("th", {}, ""));
  const sortTh = (id, label, sortable = true) => {
    const th = el("th", { class: s.sort === id ? `sorted${s.desc === "1" ? " desc" : ""}` : "" }, label);
    if (sortable) {
      th.addEventListener("click", () =>
        setState({ sort: id, desc: s.sort === id && s.desc !== "1" ? "1" : "", page: 0 }),
      );
    }
    return th;
  };
  // name and state, then the chosen config/summary columns, then the other fixed ones
  for (const [id, label, sortable] of FIXED.slice(0, 2)) head.append(sortTh(id, label, sortable !== false));
  for (const c of s.c) head.append(sortTh(c, columnLabel(c)));
  for (const [id, label, sortable] of FIXED.slice(2)) head.append(sortTh(id, label, sortable !== false));
  const body = el("tbody");
  const colorOf = new Map(s.r.map((id, i) => [id, COLORS[i % COLORS.length]]));
  for (const r of data.rows) {
    const isSel = selected.has(r.run_id);
    const box = el("input", {
      type: "checkbox",
      checked: isSel,
      "aria-label": `select ${r.run_id}`,
      onchange: () => {
        const cur = readState().r;
        setState({ r: box.checked ? [...cur, r.run_id] : cur.filter((x) => x !== r.run_id) });
      },
    });
    const link = el(
      "a",
      { href: `#run?${new URLSearchParams({ e: s.e, p: s.p, run: r.run_id })}`, title: r.run_id },
      r.run_name || r.run_id,
    );
    const tr = el(
      "tr",
      { class: `${r.deleted ? "deleted" : ""} ${isSel ? "selected" : ""}`, dataset: { run: r.run_id } },
      el("td", { style: isSel ? `border-left: 4px solid ${colorOf.get(r.run_id)}` : "" }, box),
      el("td", {}, link, r.deleted ? el("span", { class: "muted" }, " (deleted)") : null),
      el("td", {}, el("span", { class: `state ${r.state ?? ""}` }, r.state ?? "")),
    );
    r.values.forEach((v, i) => {
      const val = parseStored(v);
      const numeric = typeof val === "number" || typeof val === "bigint";
      tr.append(el("td", { class: numeric ? "num" : "", dataset: { col: s.c[i] } }, fmt(val)));
    });
    tr.append(
      el("td", {}, fmtTime(r.created_at)),
      el("td", { class: "num" }, fmtDuration(r.runtime)),
      el(
        "td",
        {},
        r.tags.map((t) => el("span", { class: "tag" }, t)),
      ),
      el("td", {}, r.group ?? ""),
      el("td", {}, r.job_type ?? ""),
      el("td", {}, r.user ?? ""),
      el("td", {}, r.sweep ?? ""),
    );
    body.append(tr);
  }
  root.append(el("div", { class: "tablewrap" }, el("table", { class: "runs" }, el("thead", {}, head), body)));
  const pages = Math.max(1, Math.ceil(data.total / PAGE));
  root.append(
    el(
      "div",
      { class: "bar" },
      el("button", { disabled: page === 0, onclick: () => setState({ page: page - 1 }) }, "‹ prev"),
      el("span", { class: "muted" }, `page ${page + 1} of ${pages}`),
      el("button", { disabled: page + 1 >= pages, onclick: () => setState({ page: page + 1 }) }, "next ›"),
    ),
  );
  if (hadFocus) {
    text.focus();
    text.setSelectionRange(text.value.length, text.value.length);
  }
}

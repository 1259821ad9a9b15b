// Shared helpers: DOM building (text only, never HTML from data), the API client, exact JSON, value formatting.

/** el("div", {class: "x", onclick}, child, "text", ...): children are nodes or text (set as text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

const busy = () => document.getElementById("busy");
const errorBox = () => document.getElementById("error");

/** GET /api/<name>?params; a 503 "busy" (a sync is writing the DuckDB archive) is retried every 2 s. */
export async function api(name, params = new URLSearchParams()) {
  for (;;) {
    const res = await fetch(`/api/${name}?${params}`);
    if (res.status === 503) {
      busy().hidden = false;
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    busy().hidden = true;
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        msg = JSON.parse(text).message;
      } catch {}
      errorBox().hidden = false;
      errorBox().textContent = msg;
      throw new Error(msg);
    }
    errorBox().hidden = true;
    return parseExact(text);
  }
}

/** JSON.parse that keeps integers beyond 2^53 exact (as BigInt), using the reviver's source text. */
export function parseExact(text) {
  return JSON.parse(text, (_k, v, ctx) => {
    if (typeof v === "number" && !Number.isSafeInteger(v) && ctx?.source && /^-?\d+$/.test(ctx.source)) {
      return BigInt(ctx.source);
    }
    return v;
  });
}

const NON_FINITE = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, "-Infinity": Number.NEGATIVE_INFINITY };

/** A chart value from the API: numbers, or "NaN" / "Infinity" / "-Infinity". */
export function chartNumber(v) {
  return typeof v === "string" ? (NON_FINITE[v] ?? Number.NaN) : v;
}

/** Archive JSON text (strict: NaN/±Infinity as strings) to a value with bigints exact and non-finite numbers back. */
export function parseStored(text) {
  if (text === null || text === undefined) return undefined;
  const revive = (v) => {
    if (typeof v === "string" && v in NON_FINITE) return NON_FINITE[v];
    if (Array.isArray(v)) return v.map(revive);
    if (v && typeof v === "object" && typeof v !== "bigint") {
      for (const k of Object.keys(v)) v[k] = revive(v[k]);
    }
    return v;
  };
  return revive(parseExact(text));
}

/** A value as one line of text (exact for bigints). */
export function fmt(v) {
  if (v === undefined) return "";
  if (v === null) return "null";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }
  if (typeof v === "object") {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
  }
  return String(v);
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(sec)) return "";
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}

export function fmtTime(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** A column id `config:["a","b"]` <-> {source, path} and its dotted label. */
export function columnId(source, path) {
  return `${source}:${JSON.stringify(path)}`;
}
export function parseColumnId(id) {
  const i = id.indexOf(":");
  return { source: id.slice(0, i), path: JSON.parse(id.slice(i + 1)) };
}
export function columnLabel(id) {
  const { source, path } = parseColumnId(id);
  return `${source}.${path.join(".")}`;
}

/** The value at `path` of a parsed object (undefined when absent). */
export function getPath(obj, path) {
  let v = obj;
  for (const k of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

export const COLORS = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#9333ea",
  "#ea580c",
  "#0891b2",
  "#db2777",
  "#65a30d",
  "#4f46e5",
  "#b45309",
  "#0d9488",
  "#7c2d12",
];

/** Item values of W&B records (JSON text in `value_json`, or the typed fields of newer clients) and nested keys. */
import { type JsonObject, type JsonValue, parseWandbJson } from "../model/json.js";
import { longValue, type PbHistoryItem, type PbItem } from "./proto.js";

/** The value of a config/summary/history/stats item, decoded exactly (NaN, ±Infinity, integers beyond 2^53). */
export function itemValue(item: PbHistoryItem): JsonValue {
  switch (item.value) {
    case "none":
      return null;
    case "boolean":
      return item.boolean ?? false;
    case "integer":
      return longValue(item.integer);
    case "number":
      return item.number ?? 0;
    case "text":
      return item.text ?? "";
    case "json":
      return parseWandbJson(item.json ?? "null");
    default:
      return item.valueJson === undefined || item.valueJson === "" ? null : parseValueJson(item.valueJson);
  }
}

/**
 * parseWandbJson with fast paths for the common small values: numbers (a float, or an integer of at most 15 digits,
 * which a double holds exactly), NaN/±Infinity, true/false/null and strings without escapes. Anything else (objects,
 * long integers that may need a bigint, escaped strings) goes to parseWandbJson.
 */
export function parseValueJson(s: string): JsonValue {
  const c = s.charCodeAt(0);
  if ((c >= 48 && c <= 57) || c === 45) {
    if (s.length < 16 || s.includes(".") || s.includes("e") || s.includes("E") || s === "-Infinity") {
      const n = Number(s);
      if (!Number.isNaN(n)) return n;
    }
    return parseWandbJson(s);
  }
  if (c === 34 && s.length >= 2 && s.charCodeAt(s.length - 1) === 34 && !s.includes("\\")) return s.slice(1, -1);
  switch (s) {
    case "NaN":
      return Number.NaN;
    case "Infinity":
      return Number.POSITIVE_INFINITY;
    case "true":
      return true;
    case "false":
      return false;
    case "null":
      return null;
    default:
      return parseWandbJson(s);
  }
}

/** The key path of an item: `nested_key` when given, else `[key]` (a dotted key is one key, never split). */
export function itemPath(item: PbItem): string[] {
  const nested = item.nestedKey;
  if (nested && nested.length > 0) return nested;
  return [item.key ?? ""];
}

function setOwn(obj: JsonObject, key: string, value: JsonValue): void {
  if (key === "__proto__")
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** Sets `value` at `path` in `obj`, creating (or replacing non-object) intermediate objects. */
export function setPath(obj: JsonObject, path: string[], value: JsonValue): void {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    const next = Object.hasOwn(cur, k) ? cur[k] : undefined;
    if (typeof next === "object" && next !== null && !Array.isArray(next) && typeof next !== "bigint") {
      cur = next as JsonObject;
    } else {
      const fresh: JsonObject = {};
      setOwn(cur, k, fresh);
      cur = fresh;
    }
  }
  setOwn(cur, path[path.length - 1]!, value);
}

/** Removes the value at `path` (nothing when absent). */
export function removePath(obj: JsonObject, path: string[]): void {
  let cur: JsonValue = obj;
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof cur !== "object" || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, path[i]!)) return;
    cur = (cur as JsonObject)[path[i]!]!;
  }
  if (typeof cur === "object" && cur !== null && !Array.isArray(cur))
    delete (cur as JsonObject)[path[path.length - 1]!];
}

/**
 * A summary folded lazily: the last update (or removal) of each key path, in the order of those last writes, which
 * applied in order gives what applying every record in order gives. Values are parsed once, at the end; the client
 * writes a summary record per logged step, so this saves parsing every value twice.
 */
export class LazyUpdates {
  /** Per key path: its last update (null: a removal) and when it came (the order of last writes). */
  private readonly ops = new Map<string, { path: string[]; item: PbItem | null; seq: number }>();
  private seq = 0;

  add(rec: { update?: PbItem[]; remove?: PbItem[] } | undefined): void {
    if (!rec) return;
    for (const u of rec.update ?? []) this.put(itemPath(u), u);
    for (const r of rec.remove ?? []) this.put(itemPath(r), null);
  }

  private put(path: string[], item: PbItem | null): void {
    const key = path.length === 1 ? path[0]! : path.join("\u0000");
    const op = this.ops.get(key);
    if (op === undefined) this.ops.set(key, { path, item, seq: this.seq++ });
    else {
      op.path = path;
      op.item = item;
      op.seq = this.seq++;
    }
  }

  /** The folded object (parses each kept value). */
  value(): JsonObject {
    const out: JsonObject = {};
    const ops = [...this.ops.values()].sort((a, b) => a.seq - b.seq);
    for (const { path, item } of ops) {
      if (item === null) removePath(out, path);
      else setPath(out, path, itemValue(item));
    }
    return out;
  }
}

/** Applies a config or summary record's updates and removals to `target`. */
export function applyUpdates(target: JsonObject, rec: { update?: PbItem[]; remove?: PbItem[] } | undefined): void {
  if (!rec) return;
  for (const u of rec.update ?? []) setPath(target, itemPath(u), itemValue(u));
  for (const r of rec.remove ?? []) removePath(target, itemPath(r));
}

/** One history record's items as a W&B history row (`_step` etc. included). */
export function historyRow(items: PbHistoryItem[]): JsonObject {
  const row: JsonObject = {};
  for (const item of items) {
    const nested = item.nestedKey;
    const value = itemValue(item);
    if (nested && nested.length > 1) setPath(row, nested, value);
    else {
      const key = nested && nested.length === 1 ? nested[0]! : (item.key ?? "");
      setOwn(row, key, value);
    }
  }
  return row;
}

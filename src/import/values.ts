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
      return item.valueJson === undefined || item.valueJson === "" ? null : parseWandbJson(item.valueJson);
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

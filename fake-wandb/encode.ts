/**
 * Wire and truth encoders of fake-wandb (it stands apart from src/, so it has its own small encoder).
 *
 * W&B encoding: JSON plus the bare tokens `NaN`, `Infinity`, `-Infinity` (what Python's json.dumps and wandb-core's
 * simplejsonext emit), and integers beyond 2^53 written exactly (kept as bigint in memory).
 */
import type { FObject, FValue } from "./model.js";

function nonFinite(n: number): string {
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/** Encodes one number as W&B does: bare NaN/Infinity tokens, shortest round-trip decimal otherwise. */
export function encodeNumber(n: number): string {
  return n - n === 0 ? String(n) : nonFinite(n);
}

/** Cache of JSON-encoded object keys followed by ':'; keys repeat across millions of rows. */
const keyCache = new Map<string, string>();
export function encodeKey(k: string): string {
  let e = keyCache.get(k);
  if (e === undefined) {
    e = `${JSON.stringify(k)}:`;
    if (keyCache.size < 100_000) keyCache.set(k, e);
  }
  return e;
}

/** W&B JSON text of a value: bare NaN/Infinity/-Infinity, exact bigints, standard JSON otherwise. */
export function encodeWandbJson(v: FValue): string {
  switch (typeof v) {
    case "number":
      return v - v === 0 ? String(v) : nonFinite(v);
    case "bigint":
      return v.toString();
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          if (i > 0) s += ",";
          s += encodeWandbJson(v[i] as FValue);
        }
        return `${s}]`;
      }
      let s = "{";
      let first = true;
      for (const k in v) {
        const x = v[k];
        if (x === undefined) continue;
        if (!first) s += ",";
        first = false;
        s += encodeKey(k) + encodeWandbJson(x);
      }
      return `${s}}`;
    }
    default:
      return "null";
  }
}

/**
 * Rows whose `_step` goes on the wire as a float (`10.0`), as the real backend sometimes does. The generator marks
 * such rows; the mark is invisible to the row's keys and to every other encoder.
 */
export const FLOAT_STEP_ROWS = new WeakSet<object>();

/** One history/events row as the wire string (a JSONString element). Hot path: kept flat and allocation-light. */
export function encodeHistoryLine(row: FObject): string {
  const floatStep = FLOAT_STEP_ROWS.has(row);
  if (!floatStep) {
    // Fast path: the native encoder writes the same text unless a value is non-finite (it would write null) or a
    // bigint (it throws). History rows hold no nulls, so "null" in the output means: take the slow path.
    try {
      const s = JSON.stringify(row);
      if (!s.includes("null")) return s;
    } catch {
      // bigint: fall through
    }
  }
  let s = "{";
  let first = true;
  for (const k in row) {
    const v = row[k];
    if (v === undefined) continue;
    if (first) first = false;
    else s += ",";
    s += encodeKey(k);
    if (typeof v === "number") {
      if (v - v === 0) {
        s += floatStep && k === "_step" && Number.isInteger(v) ? `${v}.0` : String(v);
      } else s += nonFinite(v);
    } else s += encodeWandbJson(v);
  }
  return `${s}}`;
}

/** Truth encoding of a row: the same tokens (NaN/Infinity bare, exact bigints), `_step` always an integer. */
export function encodeTruthLine(row: FObject): string {
  return encodeWandbJson(row);
}

/** Standard base64 of a UTF-8 string. */
export function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

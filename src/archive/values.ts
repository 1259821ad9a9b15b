/**
 * Conversions between record values and what the archive's columns hold: value-kind masks (metric_keys.kinds), JSON
 * text, Unix seconds to microseconds / ISO text, timestamp text both databases accept, and driver numbers back to JS.
 */
import { KIND_BITS, type ValueKind } from "../model/flatten.js";
import { type JsonValue, stringifyWellFormed } from "../model/json.js";

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/** metric_keys.kinds: the set of value kinds seen for a key, as a bit mask (null 1, bool 2, int 4, bigint 8, float 16, string 32, object 64). */
export function kindsToMask(kinds: Iterable<ValueKind>): number {
  let m = 0;
  for (const k of kinds) m |= KIND_BITS[k];
  return m;
}

export function maskToKinds(mask: number): ValueKind[] {
  return (Object.keys(KIND_BITS) as ValueKind[]).filter((k) => (mask & KIND_BITS[k]) !== 0);
}

/**
 * Strict JSON text of a stored value, with the common empty object short-cut; undefined as {}. A lone surrogate
 * becomes U+FFFD (stringifyWellFormed): DuckDB's JSON and PostgreSQL's JSONB refuse its escape.
 */
export function jsonText(v: JsonValue | undefined): string {
  if (v === undefined) return "{}";
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    let empty = true;
    for (const _ in v) {
      empty = false;
      break;
    }
    if (empty) return "{}";
  }
  return stringifyWellFormed(v);
}

const MAX_UNIX_SECONDS = 253402300799; // 9999-12-31T23:59:59Z

/** Unix seconds (float) to integer microseconds, or null when missing or out of range. */
export function unixToMicros(sec: number | null | undefined): number | null {
  if (sec === null || sec === undefined || !Number.isFinite(sec) || Math.abs(sec) > MAX_UNIX_SECONDS) return null;
  return Math.round(sec * 1e6);
}

/** Unix seconds (float) to an ISO-8601 UTC string with microseconds, or null. */
export function unixToIso(sec: number | null | undefined): string | null {
  return microsToIsoText(unixToMicros(sec));
}

/** Integer microseconds since the epoch (within years 0-9999) to an ISO-8601 UTC string with microseconds, or null. */
export function microsToIsoText(micros: number | null): string | null {
  if (micros === null) return null;
  const ms = Math.floor(micros / 1000);
  const rest = micros - ms * 1000;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, -1)}${String(rest).padStart(3, "0")}Z`;
}

/** A timestamp text both databases accept, or null (unparsable text is dropped, not allowed to fail a write). */
export function tsText(s: string | null | undefined): string | null {
  if (s === null || s === undefined || s === "") return null;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return null;
  // Date.parse accepts forms the databases may not; pass ISO-looking text through (keeps microseconds).
  return /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(s) ? s : new Date(t).toISOString();
}

/** A safe integer stays a number; a larger one a bigint. */
export function normaliseInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string") return Number(v);
  return 0;
}

export function toIsoOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** A double as text both databases read back exactly (NaN, Infinity, -Infinity and -0 included). */
export function doubleText(n: number): string {
  if (Number.isFinite(n)) return Object.is(n, -0) ? "-0" : String(n);
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/** A list of doubles as array text: `{1.5,NULL,NaN}` (PostgreSQL, `pg`) or `[1.5,NULL,NaN]` (DuckDB). */
export function doublesText(vals: readonly (number | null | undefined)[], pg: boolean): string {
  let out = pg ? "{" : "[";
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i];
    if (i > 0) out += ",";
    out += v === null || v === undefined ? "NULL" : doubleText(v);
  }
  return out + (pg ? "}" : "]");
}

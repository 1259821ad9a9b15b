/**
 * Flattening metrics (a JSON object per history row) into one typed Parquet column per key.
 *
 * Writers observe the kinds of value each key takes (cheaply, while the rows pass by), then ask for the column
 * type and the DuckDB expression that extracts it from a strict-JSON column (see src/model/json.ts: non-finite
 * floats are the strings "NaN"/"Infinity"/"-Infinity", bigints exact integer literals).
 */
import type { JsonValue } from "./json.js";

/**
 * What a value is, for choosing its column: "int" is a safe integer (|n| <= 2^53), "int64" an integer beyond 2^53
 * within int64, "bigint" one beyond int64 (up to 38 digits), "float" any other number (NaN and ±Infinity too).
 */
export type ValueKind = "null" | "bool" | "int" | "int64" | "bigint" | "float" | "string" | "object";
export type ColumnType = "BOOLEAN" | "BIGINT" | "HUGEINT" | "DOUBLE" | "VARCHAR" | "JSON";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** The widest integer Parquet holds exactly: DECIMAL(38,0) (DuckDB writes HUGEINT to Parquet as a lossy DOUBLE). */
const DECIMAL38 = 10n ** 38n;

export function kindOf(v: JsonValue): ValueKind {
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "number":
      // An integral double beyond 2^53 (e.g. 1e300) came from a float literal: BIGINT could not hold it.
      return Number.isSafeInteger(v) ? "int" : "float";
    case "bigint":
      // An integer beyond 2^53 must never share a DOUBLE column with floats (it would lose digits).
      if (v <= -DECIMAL38 || v >= DECIMAL38) return "object"; // beyond DECIMAL(38,0): keep as JSON text
      return v < INT64_MIN || v > INT64_MAX ? "bigint" : "int64";
    case "string":
      return "string";
    default:
      return v === null ? "null" : "object";
  }
}

/** Set of kinds seen per key, as a bit mask (cheap to merge). */
/** The bit of each kind in a kinds mask (stored in the archive's metric_keys: never renumber, only add). */
export const KIND_BITS: Readonly<Record<ValueKind, number>> = {
  null: 1,
  bool: 2,
  int: 4,
  bigint: 8,
  float: 16,
  string: 32,
  object: 64,
  int64: 128,
};
const BIT = KIND_BITS;

export class KindTracker {
  private readonly masks = new Map<string, number>();

  observe(metrics: Record<string, JsonValue>): void {
    for (const k in metrics) {
      const bit = BIT[kindOf(metrics[k]!)];
      this.masks.set(k, (this.masks.get(k) ?? 0) | bit);
    }
  }

  observeKind(key: string, kinds: Iterable<ValueKind>): void {
    let m = this.masks.get(key) ?? 0;
    for (const k of kinds) m |= BIT[k];
    this.masks.set(key, m);
  }

  /** Adds a mask of KIND_BITS (e.g. computed elsewhere for many rows at once). */
  observeMask(key: string, mask: number): void {
    this.masks.set(key, (this.masks.get(key) ?? 0) | mask);
  }

  keys(): string[] {
    return [...this.masks.keys()];
  }

  kinds(key: string): ValueKind[] {
    const m = this.masks.get(key) ?? 0;
    return (Object.keys(BIT) as ValueKind[]).filter((k) => (m & BIT[k]) !== 0);
  }

  columnType(key: string): ColumnType {
    return columnTypeFor(this.kinds(key));
  }
}

/**
 * The narrowest column that holds every value exactly:
 * bool → BOOLEAN; int/int64 → BIGINT; with bigint → HUGEINT (written as DECIMAL(38,0)); int + float → DOUBLE;
 * an integer beyond 2^53 with floats → JSON (a double would lose its digits); string → VARCHAR; mixed or nested → JSON.
 */
export function columnTypeFor(kinds: ValueKind[]): ColumnType {
  const k = new Set(kinds.filter((x) => x !== "null"));
  if (k.size === 0) return "DOUBLE";
  if (k.has("object")) return "JSON";
  const only = (...allowed: ValueKind[]) => [...k].every((x) => allowed.includes(x));
  if (only("bool")) return "BOOLEAN";
  if (only("string")) return "VARCHAR";
  if (only("int", "int64")) return "BIGINT";
  if (only("int", "int64", "bigint")) return "HUGEINT";
  if (only("int", "float")) return "DOUBLE";
  return "JSON";
}

/** Quotes an SQL identifier (DuckDB and PostgreSQL). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes an SQL string literal. DuckDB's parser ends a statement's text at U+0000, so a text holding one is written
 * as literals joined by `chr(0)` (the same string value).
 */
export function quoteLiteral(s: string): string {
  if (s.includes("\u0000")) return `(${s.split("\u0000").map(quoteLiteral).join(" || chr(0) || ")})`;
  return `'${s.replaceAll("'", "''")}'`;
}

/** JSONPath for one key of an object, safe for any key (dots, quotes, spaces, unicode). */
export function jsonPathFor(key: string): string {
  return `$.${JSON.stringify(key)}`;
}

/**
 * The DuckDB expression that extracts `key` from the JSON column `jsonColumn` as `type`.
 * Strings "NaN"/"Infinity"/"-Infinity" cast to the matching doubles.
 */
export function extractExpr(jsonColumn: string, key: string, type: ColumnType): string {
  const path = quoteLiteral(jsonPathFor(key));
  const col = quoteIdent(jsonColumn);
  switch (type) {
    case "JSON":
      return `json_extract(${col}, ${path})`;
    case "VARCHAR":
      return `json_extract_string(${col}, ${path})`;
    case "HUGEINT":
      // Parquet has no 128-bit integer: DECIMAL(38,0) keeps every digit (kindOf sends larger values to JSON).
      return `TRY_CAST(json_extract_string(${col}, ${path}) AS DECIMAL(38,0))`;
    default:
      return `TRY_CAST(json_extract_string(${col}, ${path}) AS ${type})`;
  }
}

/**
 * Output column names for metric keys: the key itself, unless it equals a reserved (fixed) column name or an
 * earlier key's column, in which case "metrics.<key>" (then a numeric suffix) is used. Comparison is
 * case-insensitive, as DuckDB's identifiers are.
 */
export function metricColumnNames(keys: string[], reserved: readonly string[]): Map<string, string> {
  const used = new Set(reserved.map((r) => r.toLowerCase()));
  const out = new Map<string, string>();
  for (const key of keys) {
    // No SQL identifier can hold U+0000 (DuckDB's parser ends the text there): U+FFFD in the column's name.
    let name = key.replaceAll("\u0000", "\ufffd");
    // An empty key would be a zero-length identifier, which DuckDB and PostgreSQL reject.
    if (name === "" || used.has(name.toLowerCase())) name = `metrics.${name}`;
    let i = 2;
    const base = name;
    while (used.has(name.toLowerCase())) name = `${base}_${i++}`;
    used.add(name.toLowerCase());
    out.set(key, name);
  }
  return out;
}

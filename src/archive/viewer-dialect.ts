/**
 * The SQL pieces in which the viewer's reads differ between DuckDB and PostgreSQL, and the bound-parameter list.
 * Values never enter SQL text here: each piece takes a parameter placeholder from `Params`.
 */
import type { ArchiveKind } from "./archive.js";

export type RowsFn = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** Bound parameters, numbered as both drivers expect ($1, $2, ...). */
export class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** RFC 6901 JSON Pointer of a key path (DuckDB's json_extract takes it; any key is safe in it). */
export function jsonPointer(path: string[]): string {
  return path.map((k) => `/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

/** A whole number for SQL text: `fallback` when missing, else truncated into [0, max]. */
export function int(n: number | undefined, fallback: number, max: number): number {
  if (n === undefined || !Number.isFinite(n)) return fallback;
  return Math.max(0, Math.min(max, Math.trunc(n)));
}

/** A nullable column value as text. */
export function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** A nullable column value as a number (bigints beyond 2^53 become doubles: used for sizes and steps). */
export function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  return typeof v === "number" ? v : Number(v);
}

export class ViewerDialect {
  constructor(readonly kind: ArchiveKind) {}

  get pg(): boolean {
    return this.kind === "postgres";
  }
  /** The JSON value at `path` inside JSON column `col` (JSON text out in both backends). */
  jsonAt(col: string, path: string[], p: Params): string {
    return this.pg ? `(${col} #> CAST(${p.add(path)} AS TEXT[]))` : `json_extract(${col}, ${p.add(jsonPointer(path))})`;
  }

  /** The number stored in the list `vals` for the key parameter `key` of the keyset `keys` (NULL when absent). */
  typedValue(vals: string, keys: string, key: string): string {
    return this.pg
      ? `${vals}[array_position(${keys}, CAST(${key} AS TEXT))]`
      : `${vals}[list_position(${keys}, CAST(${key} AS VARCHAR))]`;
  }

  /** The number a JSON value `j` holds (numbers, and the strings NaN/±Infinity), else NULL. */
  jsonNumber(j: string): string {
    if (this.pg) {
      return `(CASE jsonb_typeof(${j}) WHEN 'number' THEN CAST(${j} #>> '{}' AS DOUBLE PRECISION)
        WHEN 'string' THEN CASE WHEN ${j} #>> '{}' IN ('NaN', 'Infinity', '-Infinity') THEN CAST(${j} #>> '{}' AS DOUBLE PRECISION) END END)`;
    }
    return `(CASE WHEN json_type(${j}) IN ('DOUBLE', 'BIGINT', 'UBIGINT', 'HUGEINT', 'INTEGER') THEN TRY_CAST(json_extract_string(${j}, '$') AS DOUBLE)
      WHEN json_type(${j}) = 'VARCHAR' AND json_extract_string(${j}, '$') IN ('NaN', 'Infinity', '-Infinity') THEN CAST(json_extract_string(${j}, '$') AS DOUBLE) END)`;
  }

  jsonString(j: string): string {
    return this.pg ? `(${j} #>> '{}')` : `json_extract_string(${j}, '$')`;
  }

  epoch(col: string): string {
    return this.pg ? `CAST(extract(epoch FROM ${col}) AS DOUBLE PRECISION)` : `epoch(${col})`;
  }

  isNan(v: string): string {
    return this.pg ? `${v} = CAST('NaN' AS DOUBLE PRECISION)` : `isnan(${v})`;
  }

  inf(sign: "" | "-"): string {
    return `CAST('${sign}Infinity' AS ${this.pg ? "DOUBLE PRECISION" : "DOUBLE"})`;
  }

  /** A JSON array of strings, as a list the backend compares with. */
  textList(values: string[], p: Params): string {
    const j = p.add(JSON.stringify(values));
    return this.pg
      ? `ARRAY(SELECT jsonb_array_elements_text(CAST(${j} AS JSONB)))`
      : `from_json(CAST(${j} AS VARCHAR), '["VARCHAR"]')`;
  }

  /**
   * `col` is one of the list `list` (textList): DuckDB's list_contains, which filters the column first (an IN over
   * the unnested list read every column of a large table), PostgreSQL's IN.
   */
  inList(col: string, list: string): string {
    return this.pg ? `${col} IN (SELECT * FROM unnest(${list}))` : `list_contains(${list}, ${col})`;
  }

  runtimeExpr(): string {
    return `(${this.epoch("heartbeat_at")} - ${this.epoch("created_at")})`;
  }

  sweepExpr(): string {
    return this.pg
      ? `coalesce(sweep_info ->> 'sweep_name', sweep_info ->> 'sweep_id')`
      : `coalesce(json_extract_string(sweep_info, '$.sweep_name'), json_extract_string(sweep_info, '$.sweep_id'))`;
  }
}

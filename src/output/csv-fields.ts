/**
 * The fields of wandb-download's CSV spools (csv-spool.ts) and the casts that type them at close. One CSV field per
 * value; an empty unquoted field is a missing key, i.e. SQL NULL:
 * - finite number → its shortest JS text (as JSON); NaN/±Infinity → the bare tokens NaN, Infinity, -Infinity
 *   (DuckDB's DOUBLE cast reads them); bigint → its exact digits; boolean → true/false; null → null
 * - string → its JSON text, CSV-quoted; object/array → strict JSON text (stringifyWellFormed: a lone surrogate as U+FFFD), CSV-quoted.
 * JSON text never holds a raw newline; only a fixed field such as an odd run id could (it is CSV-quoted then, which
 * DuckDB's reader handles).
 */
import { type ColumnType, quoteIdent } from "../model/flatten.js";
import { type JsonValue, stringifyWellFormed } from "../model/json.js";
import type { PartKind } from "../model/parquet-part-sql.js";
import { csvDoubleSql } from "../model/sql-json.js";

/**
 * DuckDB's CSV reader refuses lines longer than max_line_size and reads in buffers of buffer_size (by default
 * 16 × max_line_size, allocated up front). So both are sized from the longest line actually spooled, with floors.
 */
export function csvReaderSizes(longestLineChars: number): { maxLineSize: number; bufferSize: number } {
  const maxLineSize = Math.max(2 << 20, 3 * longestLineChars + 1024); // UTF-8 is at most 3 bytes per UTF-16 unit
  return { maxLineSize, bufferSize: Math.max(32 << 20, 2 * maxLineSize) };
}

/** CSV-quotes a text if it needs it (an empty text is quoted too, so that it is not read as NULL). */
export function csvText(s: string): string {
  if (s === "" || /[",\n\r]/.test(s)) return `"${s.replaceAll('"', '""')}"`;
  return s;
}

function quoted(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/** The CSV field of a number (empty for null): JSON text, or NaN/Infinity/-Infinity. */
export function csvNumber(n: number | null): string {
  if (n === null) return "";
  if (Number.isFinite(n)) return String(n);
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/** The CSV field of a JSON value: strict JSON text DuckDB accepts (stringifyWellFormed), CSV-quoted. */
export function csvJson(v: JsonValue): string {
  return quoted(stringifyWellFormed(v));
}

/** The text a metric value's CSV field holds once read (metricField without its CSV quotes): a typed part's text. */
export function metricText(v: JsonValue): string {
  switch (typeof v) {
    case "number":
      return csvNumber(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    default:
      return v === null ? "null" : stringifyWellFormed(v);
  }
}

export function metricField(v: JsonValue): string {
  return typeof v === "string" || (typeof v === "object" && v !== null) ? quoted(metricText(v)) : metricText(v);
}

/** The final Parquet column of one metric key and the DuckDB expression that makes it from spool column `col`. */
export interface MetricColumn {
  key: string;
  /** The spool (VARCHAR) column holding the key's values. */
  spoolColumn: string;
  /** The column type the key's kinds call for (HUGEINT is written as DECIMAL(38,0): `type`). */
  baseType: ColumnType;
  type: ColumnType | "DECIMAL(38,0)";
  expr: string;
}

export function metricExpr(col: string, type: ColumnType): { type: ColumnType | "DECIMAL(38,0)"; expr: string } {
  return metricExprOf(quoteIdent(col), type);
}

/** metricExpr of an SQL expression `c` giving a spool field's text. */
function metricExprOf(c: string, type: ColumnType): { type: ColumnType | "DECIMAL(38,0)"; expr: string } {
  switch (type) {
    case "VARCHAR":
      return { type, expr: `json_extract_string(CAST(${c} AS JSON), '$')` };
    case "JSON":
      // Bare non-finite tokens become the strict JSON strings "NaN"/"Infinity"/"-Infinity".
      return {
        type,
        expr: `CASE WHEN ${c} IN ('NaN', 'Infinity', '-Infinity') THEN to_json(${c}) ELSE CAST(${c} AS JSON) END`,
      };
    case "HUGEINT":
      // Parquet has no 128-bit integer (DuckDB would write a lossy DOUBLE); DECIMAL(38,0) is exact.
      return { type: "DECIMAL(38,0)", expr: `TRY_CAST(${c} AS DECIMAL(38,0))` };
    default:
      return { type, expr: `TRY_CAST(${c} AS ${type})` };
  }
}

/**
 * The final column (type `type`, from the key's kinds over every run) of a typed part's column `col`: the same value
 * metricExpr makes from the field text the row path writes. Numbers and booleans are cast directly where the kinds
 * allow no other value (a DOUBLE column holds integers only when every value was a safe integer); otherwise the value
 * is first turned into that field text.
 */
export function partExpr(col: string, type: ColumnType, kind: PartKind): string {
  const c = quoteIdent(col);
  const direct: Partial<Record<PartKind, ColumnType[]>> = {
    double: ["DOUBLE", "BIGINT", "HUGEINT"],
    int: ["DOUBLE", "BIGINT", "HUGEINT"],
    bool: ["BOOLEAN"],
  };
  if (direct[kind]?.includes(type)) {
    if (type === "HUGEINT") return `CAST(${c} AS DECIMAL(38,0))`;
    return kind === "bool" ? c : `CAST(${c} AS ${type})`;
  }
  const text =
    kind === "double"
      ? csvDoubleSql(c)
      : kind === "int"
        ? `CAST(${c} AS VARCHAR)`
        : kind === "bool"
          ? `CASE WHEN ${c} THEN 'true' WHEN NOT ${c} THEN 'false' END`
          : c;
  return metricExprOf(text, type).expr;
}

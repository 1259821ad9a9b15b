/**
 * The SQL of one W&B parquet export file as a typed part of wandb-download's Parquet spool
 * (src/output/columnar-history.ts): the columns split as the row path splits them (parquet-sql.ts), numbers and
 * booleans kept typed, other values as the spool's field text.
 */
import type { ParquetColumn } from "./parquet-reader.js";
import { fixedColumns, INT_TYPES, objectSql, splitColumns } from "./parquet-sql.js";

/**
 * How a typed part of wandb-download's Parquet spool (src/output/columnar-history.ts) holds a metric: DOUBLE, BIGINT
 * or BOOLEAN as the export has it, or `text`: the spool's CSV field text (strings and nested values as JSON text,
 * integers beyond int64 as digits).
 */
export type PartKind = "double" | "int" | "bool" | "text";

/**
 * One file's history columns as wandb-download's Parquet spool holds them (a typed part), each metric's kind bit,
 * and the file's fixed columns; or null when a column is not mapped with certainty (decode rows instead). Every
 * expression is NULL where the row lacks the key.
 */
export interface PartFilePlan {
  /** `_timestamp` as DOUBLE ("NULL::DOUBLE" without the column). */
  timestamp: string;
  /** `_runtime` as DOUBLE. */
  runtime: string;
  wandbMetadata: string;
  /** The JSON text of `extra`, with `member` (the text of one more `"key":value` member, or NULL) last. */
  extra: (member: string) => string;
  /** Metric keys in the file's column order. */
  metrics: { key: string; part: PartKind; expr: string; kind: string }[];
}

export function planPartFile(columns: readonly ParquetColumn[], stringKeys: ReadonlySet<string>): PartFilePlan | null {
  const fixed = fixedColumns(columns);
  if (fixed === null) return null;
  const split = splitColumns(columns, stringKeys);
  if (split === null) return null;
  const metrics = split.metrics.map(({ name, value, nested, x, base, kind }) => {
    const part: PartKind =
      base === "DOUBLE" || base === "FLOAT"
        ? "double"
        : base === "BOOLEAN"
          ? "bool"
          : base !== null && INT_TYPES.has(base)
            ? "int"
            : "text";
    const expr =
      part === "double"
        ? `CAST(${x} AS DOUBLE)`
        : part === "int"
          ? `CAST(${x} AS BIGINT)`
          : part === "bool"
            ? x
            : nested
              ? `CASE WHEN ${x} IS NULL THEN NULL ELSE ${value} END`
              : value;
    return { key: name, part, expr, kind };
  });
  return {
    timestamp: fixed.ts ?? "NULL::DOUBLE",
    // + 0.0 turns -0 into 0, as the row path's text of it ("0") reads
    runtime: fixed.rt === undefined ? "NULL::DOUBLE" : `(${fixed.rt} + 0.0)`,
    wandbMetadata: split.wandb,
    extra: (member) => objectSql(split.extra, member),
    metrics,
  };
}

/**
 * The SELECT of runs_history.parquet: the stored history (history_rows: numbers in vals by keyset, other values in
 * rest) flattened into one typed column per metric key. planHistory reads what every SELECT of one export shares
 * (metric keys and types, which keys can be in vals or rest, a temporary table of keyset positions); selectHistory
 * writes the SELECT of some runs or all.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { type ExportFilter, maskToKinds } from "../archive/index.js";
import {
  type ColumnType,
  columnTypeFor,
  KIND_BITS,
  metricColumnNames,
  quoteIdent,
  quoteLiteral,
} from "../model/flatten.js";
import { HISTORY_FIXED_COLUMNS } from "../model/records.js";
import { doubleSql } from "../model/sql-json.js";
import { whereClause } from "./copy.js";

/** The JSON type each metric column is read as by json_transform (HUGEINT as text, cast afterwards). */
function transformType(type: ColumnType): string {
  return type === "HUGEINT" ? "VARCHAR" : type;
}

/** Kind bits of values stored in vals (history-split.ts): numbers; a null value reads as a missing one. */
const NUMBER_BITS = KIND_BITS.int | KIND_BITS.float | KIND_BITS.null;

/** The temporary table of each keyset's positions of the export's metric keys (built by planHistory). */
const KEYSET_MAP = "dr_wandb$keyset_map";

/** What the SELECTs of one export share (planHistory). */
export interface HistoryPlan {
  filter: ExportFilter;
  /** The metric columns: SQL expression and alias, in key order. */
  exprs: string[];
  /** json_transform's structure of the keys read from rest (empty: rest is not read). */
  restStructure: string;
}

/**
 * Reads the metric keys of `filter` and their column types (metric_keys), which keys some keyset has (read from
 * vals) and which can have values in rest (keys with a non-number kind, or every key while rows stored before
 * schema version 3 remain; none when no row has a rest), and makes the temporary table of keyset positions.
 */
export async function planHistory(conn: DuckDBConnection, filter: ExportFilter): Promise<HistoryPlan> {
  const where = whereClause(filter);
  const reader = await conn.runAndReadAll(
    `SELECT key, bit_or(kinds)::INTEGER AS kinds FROM metric_keys ${where} GROUP BY key ORDER BY key`,
  );
  const keys: { key: string; type: ColumnType; mask: number }[] = reader.getRows().map((r) => ({
    key: String(r[0]),
    type: columnTypeFor(maskToKinds(Number(r[1]))),
    mask: Number(r[1]),
  }));
  if (keys.length === 0) return { filter, exprs: [], restStructure: "" };
  const names = metricColumnNames(
    keys.map((k) => k.key),
    HISTORY_FIXED_COLUMNS,
  );
  const keyList = `[${keys.map((k) => quoteLiteral(k.key)).join(", ")}]::VARCHAR[]`;
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE ${quoteIdent(KEYSET_MAP)} AS
     SELECT entity, project, keyset, list_transform(${keyList}, lambda k: list_position(keys, k)) AS pm
     FROM history_keysets ${where}`,
  );
  const inKeysets = new Set(
    (await conn.runAndReadAll(`SELECT DISTINCT unnest(keys) FROM history_keysets ${where}`))
      .getRows()
      .map((r) => String(r[0])),
  );
  const restRows = (
    await conn.runAndReadAll(
      `SELECT count(*) FILTER (WHERE rest IS NOT NULL), count(*) FILTER (WHERE rest IS NOT NULL AND keyset IS NULL)
       FROM history_rows ${where}`,
    )
  ).getRows()[0] ?? [0, 0];
  const anyRest = Number(restRows[0]) > 0;
  const legacy = Number(restRows[1]) > 0;
  // A key holding U+FFFD may stand for one whose numbers went to rest: a lone surrogate, or U+0000 in PostgreSQL
  // (history-split.ts typedKey), both stored as U+FFFD; its column reads vals, then rest.
  const restKeys = keys.filter((k) => anyRest && (legacy || (k.mask & ~NUMBER_BITS) !== 0 || k.key.includes("\ufffd")));
  const S = quoteIdent("dr_wandb$s");
  const restField = new Map(restKeys.map((k, i) => [k.key, `struct_extract_at(${S}, ${i + 1})`]));
  const exprs = keys.map((k, j) => {
    const alias = quoteIdent(names.get(k.key)!);
    const v = inKeysets.has(k.key) ? `vals[pm[${j + 1}]]` : null;
    const r = restField.get(k.key) ?? null;
    let typed: string | null = null;
    let rest: string | null = r;
    switch (k.type) {
      case "DOUBLE":
        typed = v;
        break;
      case "BIGINT":
        typed = v === null ? null : `CAST(${v} AS BIGINT)`;
        break;
      case "HUGEINT":
        // Parquet has no 128-bit integer (DuckDB would write DOUBLE): DECIMAL(38,0) keeps every digit.
        typed = v === null ? null : `CAST(${v} AS DECIMAL(38,0))`;
        rest = r === null ? null : `TRY_CAST(${r} AS DECIMAL(38,0))`;
        break;
      case "JSON":
        // a number as the JSON text the stored strict JSON of the row path gives (json_transform's own printing)
        typed = v === null ? null : `json_transform('{"v":' || (${doubleSql(v)}) || '}', '{"v":"JSON"}').v`;
        break;
      default:
        // BOOLEAN, VARCHAR: no number is ever among its values
        typed = null;
    }
    const parts = [typed, rest].filter((x): x is string => x !== null);
    const expr =
      parts.length === 0
        ? `CAST(NULL AS ${k.type === "HUGEINT" ? "DECIMAL(38,0)" : k.type})`
        : parts.length === 1
          ? parts[0]!
          : `coalesce(${parts.join(", ")})`;
    return `${expr} AS ${alias}`;
  });
  // Built as text, not with JSON.stringify of an object: that would move integer-like keys ("0", "10") to the
  // front and treat "__proto__" specially, and the fields are read by position.
  const restStructure =
    restKeys.length === 0
      ? ""
      : `{${restKeys.map((k) => `${JSON.stringify(k.key)}:${JSON.stringify(transformType(k.type))}`).join(",")}}`;
  return { filter, exprs, restStructure };
}

/**
 * The SELECT for runs_history.parquet of the plan's filter (or of `runIds` in it): fixed columns, then one typed
 * column per metric key, in the order of (entity, project, run_id, step).
 *
 * Numbers are read from vals by position: the plan's temporary table gives each keyset the positions of the export's
 * keys in it (NULL where it lacks one), joined to the rows before the sort; a key's value is `vals[pm[j]]`, cast to
 * the key's column type. Values in `rest` are parsed ONCE per row by json_transform into a typed STRUCT whose fields
 * are read by position (any key: dots, quotes, case variants, the empty key). Memory is bounded by the width of one
 * chunk of rows, not by the table: the narrow stored rows are sorted first (spilling beyond the budget); DuckDB
 * keeps the sorted order through the projections above it (preserve_insertion_order, on by default), which test/e2e
 * checks on the files.
 */
export function selectHistory(
  plan: HistoryPlan,
  opts: { partitionColumns?: boolean; runIds?: readonly string[] } = {},
): string {
  const fixed = [
    ...(opts.partitionColumns ? ["entity", "project"] : []),
    ...HISTORY_FIXED_COLUMNS.map((c) => quoteIdent(c)),
  ].join(", ");
  let where = whereClause(plan.filter);
  if (opts.runIds !== undefined) {
    // list_contains, not IN: DuckDB 1.5 scans every column of the table for an IN list (0.7 s per part of an
    // archive of 4M rows) but filters the run_id column first for this (30 ms)
    const list = `[${opts.runIds.map(quoteLiteral).join(", ")}]::VARCHAR[]`;
    where = `${where ? `${where} AND` : "WHERE"} list_contains(${list}, run_id)`;
  }
  const rowsFrom = `SELECT * FROM history_rows ${where}`;
  if (plan.exprs.length === 0) return `SELECT ${fixed} FROM (${rowsFrom} ORDER BY entity, project, run_id, step)`;
  const S = quoteIdent("dr_wandb$s");
  const inner = [
    "entity",
    "project",
    ...HISTORY_FIXED_COLUMNS.map((c) => quoteIdent(c)),
    "vals",
    "pm",
    ...(plan.restStructure ? [`json_transform(rest, ${quoteLiteral(plan.restStructure)}) AS ${S}`] : []),
  ].join(", ");
  const sorted = `SELECT h.*, m.pm FROM (${rowsFrom}) h LEFT JOIN ${quoteIdent(KEYSET_MAP)} m
    ON m.entity = h.entity AND m.project = h.project AND m.keyset = h.keyset
    ORDER BY h.entity, h.project, h.run_id, h.step`;
  return `SELECT ${fixed}, ${plan.exprs.join(", ")} FROM (SELECT ${inner} FROM (${sorted}))`;
}

/** planHistory and selectHistory in one (one SELECT per export). */
export async function historySelect(
  conn: DuckDBConnection,
  filter: ExportFilter,
  opts: { partitionColumns?: boolean; runIds?: readonly string[] } = {},
): Promise<string> {
  return selectHistory(await planHistory(conn, filter), opts);
}

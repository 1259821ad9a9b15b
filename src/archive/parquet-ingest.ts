/**
 * Columnar ingest of W&B parquet history exports into the DuckDB archive: DuckDB reads the downloaded files itself
 * and `INSERT INTO history_rows SELECT … FROM read_parquet(…)` stores each row in SQL, instead of decoding every row
 * to JS (src/model/parquet-reader.ts) and splitting it there (history-split.ts). The SQL stores what the row path
 * stores:
 *   - numeric columns (DOUBLE, FLOAT widened exactly, integers within ±(2^53 - 1)) go to vals, as doubles, in one
 *     keyset per file; every other value goes to the JSON text of `rest` (NULL when a row has none);
 *   - a NULL top-level column is a missing key; keys keep the file's column order, except that integer-like keys
 *     ("0", "17") come first in ascending order, as in a JS object; `_step`/`_timestamp`/`_runtime`/`_wandb` are
 *     the fixed columns, other `_` keys go to `extra`;
 *   - DOUBLE (and FLOAT, widened exactly) as JS `String(n)` (shortest round trip, integral values without ".0",
 *     exponents as "1e+21"), NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity"; integer columns as their
 *     exact digits; BOOLEAN; VARCHAR as `JSON.stringify(s)`, except that a top-level VARCHAR holding an integer
 *     literal outside int64, in a key historyKeys does not report as a string, is written as that integer;
 *   - STRUCT as an object (NULL fields as null), LIST as an array (NULL items as null), recursively;
 *   - `_timestamp` to microseconds as Math.round(sec * 1e6), NULL when not finite or beyond year 9999.
 * Metric kinds (metric_keys, KindTracker) are computed in SQL with the same rules as `kindOf`.
 * Any column type not listed (DECIMAL, HUGEINT, UBIGINT, MAP, ARRAY, DATE, TIMESTAMP, BLOB, JSON, ENUM, UNION …),
 * a non-integer `_step`, odd names (NUL, `__proto__`, names equal but for case), or a step present twice make
 * `planParquetFile` or `ingestParquet` refuse: the caller then decodes the rows as before.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { quoteIdent } from "../model/flatten.js";
import { describeParquet, readParquetSql, stepRange, stepStats } from "../model/parquet-reader.js";
import { type FilePlan, planParquetFile } from "../model/parquet-sql.js";
import type { ParquetSource } from "./archive.js";

export interface IngestTarget {
  entity: string;
  project: string;
  run_id: string;
}

/** The columns of history_rows selectSql gives, in its order. */
export const INGEST_COLUMNS = `entity, project, run_id, step, "timestamp", runtime, wandb_metadata, extra, keyset, vals, rest`;

/**
 * The SELECT of one file's history rows in [minStep, maxStep): INGEST_COLUMNS (JSON text as VARCHAR), the numbers
 * in vals following `keyset` (the id of plan.typed's keys; null when there are none). Parameters $1-$3: entity,
 * project, run_id.
 */
export function selectSql(
  path: string,
  plan: FilePlan,
  minStep: number,
  maxStep: number,
  keyset: number | null,
): string {
  const vals = keyset === null ? "NULL::DOUBLE[]" : `[${plan.typed.map(([, e]) => e).join(", ")}]`;
  return `SELECT $1, $2, $3, CAST("_step" AS BIGINT), ${plan.timestamp}, ${plan.runtime}, ${plan.wandbMetadata}, ${plan.extra}, ${keyset === null ? "NULL::INTEGER" : keyset}, ${vals}, ${plan.rest}
 FROM ${readParquetSql(path)} WHERE ${stepRange(minStep, maxStep)}`;
}

/**
 * Inserts the rows of `src` into `history` (inside the caller's transaction; the range must hold no stored rows),
 * and returns the rows written, the highest step and the kind bits of each metric key seen; or null, having written
 * nothing, when some file cannot be mapped with certainty or a step is present twice (decode the rows instead).
 */
export async function ingestParquet(
  conn: DuckDBConnection,
  target: IngestTarget,
  src: ParquetSource,
  keysetId: (keys: string[]) => Promise<number>,
): Promise<{ rows: number; maxStep: number; kinds: Map<string, number> } | null> {
  const stringKeys = new Set(src.stringKeys);
  const plans: FilePlan[] = [];
  for (const p of src.paths) {
    const plan = planParquetFile(await describeParquet(conn, p), stringKeys);
    if (plan === null) return null;
    plans.push(plan);
  }
  const stats = await stepStats(conn, src);
  if (stats === null || stats.rows !== stats.total) return null;
  const kinds = new Map<string, number>();
  let rows = 0;
  for (let i = 0; i < src.paths.length; i++) {
    const path = src.paths[i]!;
    const plan = plans[i]!;
    if (plan.kinds.length > 0) {
      const r = await conn.runAndReadAll(
        `SELECT ${plan.kinds.map(([k, e]) => `bit_or(CASE WHEN ${quoteIdent(k)} IS NULL THEN NULL ELSE ${e} END)::INTEGER`).join(", ")}
         FROM ${readParquetSql(path)} WHERE ${stepRange(src.minStep, src.maxStep)}`,
      );
      const row = r.getRows()[0] ?? [];
      plan.kinds.forEach(([k], j) => {
        const m = row[j];
        if (m !== null && m !== undefined) kinds.set(k, (kinds.get(k) ?? 0) | Number(m));
      });
    }
    const keyset = plan.typed.length === 0 ? null : await keysetId(plan.typed.map(([k]) => k));
    const res = await conn.run(
      `INSERT INTO history_rows (${INGEST_COLUMNS}) ${selectSql(path, plan, src.minStep, src.maxStep, keyset)}`,
      [target.entity, target.project, target.run_id],
    );
    rows += Number(res.rowsChanged);
  }
  return { rows, maxStep: stats.maxStep, kinds };
}

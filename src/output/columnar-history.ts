/**
 * The columnar path of wandb-download's Parquet writer: W&B's parquet history exports (downloaded files) are read by
 * DuckDB, which writes their rows as the history spool's CSV lines itself (planCsvFile, src/model/parquet-sql.ts),
 * with the fields, value kinds and key order that the row path (parquet-reader.ts, toHistoryRecord, CsvSpool.add)
 * gives, and without a JavaScript object per row. `write` returns null, having written nothing, for what it cannot
 * map with certainty (a column type or name planCsvFile refuses, a step present twice, a run id with a line break):
 * the caller then decodes those rows. `DR_WANDB_DOWNLOAD_COLUMNAR=0` turns the path off (every row decoded).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { tempPathFor, unlinkIfExists } from "../model/atomic-file.js";
import { duckdbThreads } from "../model/duckdb-resources.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import type { ParquetSource } from "../model/parquet-decode.js";
import { describeParquet, readParquetSql, stepRange, stepStats } from "../model/parquet-reader.js";
import { type CsvFilePlan, jsKeyOrder, planCsvFile } from "../model/parquet-sql.js";
import { doubleSql } from "../model/sql-json.js";
import type { CsvSpool } from "./csv-spool.js";

// Python's datetime range in Unix seconds (src/output/rows.ts).
const MIN_SECONDS = -62135596800;
const MAX_SECONDS = 253402300799;

/**
 * The spool's timestamp fields of a `_timestamp` DOUBLE `t`, as toUtcInstant makes them (CPython's
 * `datetime.fromtimestamp`: the fraction's microseconds rounded half to even), and the `"_timestamp":value` member
 * that historyExtra adds to `extra` when `t` is not NULL but cannot be a datetime.
 */
function instantSql(t: string): { seconds: string; micros: string; extraMember: string } {
  const us = `round_even((${t} - trunc(${t})) * 1e6, 0)`;
  const carry = `CASE WHEN ${us} >= 1e6 THEN 1 WHEN ${us} < 0 THEN -1 ELSE 0 END`;
  const seconds = `(trunc(${t}) + ${carry})`;
  const valid = `(isfinite(${t}) AND ${seconds} BETWEEN ${MIN_SECONDS} AND ${MAX_SECONDS})`;
  return {
    seconds: `CASE WHEN ${valid} THEN CAST(${seconds} AS BIGINT) END`,
    micros: `CASE WHEN ${valid} THEN CAST(${us} - 1e6 * (${carry}) AS BIGINT) END`,
    extraMember: `CASE WHEN ${t} IS NOT NULL AND NOT ${valid} THEN '"_timestamp":' || ${doubleSql(t)} END`,
  };
}

/** The SELECT of one file's spool fields (without the run id), metric `j` as `m{j}` for j < width. */
function fileSelect(
  path: string,
  plan: CsvFilePlan,
  at: ReadonlyMap<string, number>,
  width: number,
  src: ParquetSource,
): string {
  const ts = instantSql(plan.timestamp);
  const byPosition = new Map<number, string>();
  for (const m of plan.metrics) {
    const j = at.get(m.key);
    if (j !== undefined) byPosition.set(j, m.field);
  }
  const metrics = Array.from({ length: width }, (_, j) => `${byPosition.get(j) ?? "NULL::VARCHAR"} AS "m${j}"`);
  const fields = [
    `CAST("_step" AS BIGINT) AS "s"`,
    `${ts.seconds} AS "ts"`,
    `${ts.micros} AS "tu"`,
    `${plan.runtime} AS "u"`,
    `${plan.wandbMetadata} AS "w"`,
    `${plan.extra(ts.extraMember)} AS "x"`,
    ...metrics,
  ];
  return `SELECT ${fields.join(", ")} FROM ${readParquetSql(path)} WHERE ${stepRange(src.minStep, src.maxStep)}`;
}

/** One DuckDB in-memory database (opened on first use) writing spool parts; `close` when the writer is done. */
export class ColumnarHistory {
  private db: { instance: DuckDBInstance; conn: DuckDBConnection; tempDir: string } | null = null;

  private async connection(): Promise<DuckDBConnection> {
    if (this.db === null) {
      const tempDir = await mkdtemp(join(tmpdir(), "dr-wandb-duckdb-"));
      const instance = await DuckDBInstance.create(":memory:", {
        temp_directory: tempDir,
        memory_limit: "64MiB",
        threads: duckdbThreads(),
      });
      traceDuckDB(instance);
      this.db = { instance, conn: await instance.connect(), tempDir };
    }
    return this.db.conn;
  }

  /**
   * Appends the rows of `src` in [minStep, maxStep) to `spool` as rows of run `runId`, in step order, and returns
   * how many; or null, having written nothing, when they must be decoded instead.
   */
  async write(spool: CsvSpool, runId: string, src: ParquetSource): Promise<number | null> {
    if (process.env.DR_WANDB_DOWNLOAD_COLUMNAR === "0" || /[\n\r]/.test(runId)) return null;
    const conn = await this.connection();
    const stringKeys = new Set(src.stringKeys);
    const plans: CsvFilePlan[] = [];
    for (const p of src.paths) {
      const plan = planCsvFile(await describeParquet(conn, p), stringKeys);
      if (plan === null) return null;
      plans.push(plan);
    }
    const stats = await stepStats(conn, src);
    if (stats === null || stats.rows !== stats.total) return null;
    if (stats.rows === 0) return 0;
    // Each key's kinds, and where the row path first meets it: its first row (by step), then its place among that
    // row's keys (the file's columns in JS key order).
    const seen = new Map<string, { step: bigint; order: number; kinds: number }>();
    for (let i = 0; i < plans.length; i++) {
      const metrics = jsKeyOrder(plans[i]!.metrics, (m) => m.key);
      if (metrics.length === 0) continue;
      const aggregates = metrics.map((m) => {
        const x = quoteIdent(m.key);
        return `bit_or(CASE WHEN ${x} IS NULL THEN NULL ELSE ${m.kind} END)::INTEGER, min(CASE WHEN ${x} IS NOT NULL THEN "_step" END)::BIGINT`;
      });
      const r = await conn.runAndReadAll(
        `SELECT ${aggregates.join(", ")} FROM ${readParquetSql(src.paths[i]!)} WHERE ${stepRange(src.minStep, src.maxStep)}`,
      );
      const row = r.getRows()[0] ?? [];
      metrics.forEach((m, order) => {
        const kinds = row[2 * order];
        const step = row[2 * order + 1];
        if (kinds === null || kinds === undefined || typeof step !== "bigint") return;
        const had = seen.get(m.key);
        if (had === undefined || step < had.step)
          seen.set(m.key, { step, order, kinds: Number(kinds) | (had?.kinds ?? 0) });
        else had.kinds |= Number(kinds);
      });
    }
    const keys = [...seen].sort(([, a], [, b]) => (a.step < b.step ? -1 : a.step > b.step ? 1 : a.order - b.order));
    const positions = spool.positions(keys.map(([k]) => k));
    const at = new Map<string, number>();
    keys.forEach(([k, s], n) => {
      at.set(k, positions[n]!);
      spool.noteKinds(positions[n]!, s.kinds);
    });
    const width = positions.length === 0 ? 0 : Math.max(...positions) + 1;
    const union = src.paths.map((p, i) => fileSelect(p, plans[i]!, at, width, src)).join(" UNION ALL ");
    const columns = ["s", "ts", "tu", "u", "w", "x", ...Array.from({ length: width }, (_, j) => `m${j}`)];
    const part = tempPathFor(spool.file.finalPath, "spool");
    try {
      await conn.run(
        `COPY (SELECT ${quoteLiteral(runId)} AS "r", ${columns.map((c) => quoteIdent(c)).join(", ")} ` +
          `FROM (${union}) ORDER BY "s") TO ${quoteLiteral(part)} ` +
          `(FORMAT csv, HEADER false, DELIMITER ',', QUOTE '"', ESCAPE '"')`,
      );
      await spool.appendPart(part, stats.rows);
    } finally {
      await unlinkIfExists(part);
    }
    return stats.rows;
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    if (db === null) return;
    await untraceDuckDB(db.instance);
    db.conn.closeSync();
    db.instance.closeSync();
    await rm(db.tempDir, { recursive: true, force: true });
  }
}

/**
 * The columnar path of wandb-download's Parquet writer: W&B's parquet history exports (downloaded files) are read by
 * DuckDB, which writes each run's rows, in step order, to a typed Parquet part of the history spool (planPartFile,
 * src/model/parquet-part-sql.ts: numbers and booleans kept as DOUBLE, BIGINT and BOOLEAN, other values as the spool's
 * field text), noting the value kinds and key order that the row path (parquet-reader.ts, toHistoryRecord,
 * CsvSpool.add) would; at close the spool casts them to the same final columns (csv-fields.ts partExpr). No
 * JavaScript object per row, and no number formatted as text. `write` returns null, having written nothing, for
 * what it cannot map with certainty (a column type or name planPartFile refuses, a step present twice, a key typed
 * two ways in one run's files): the caller then decodes those rows. `DR_WANDB_DOWNLOAD_COLUMNAR=0` turns the path
 * off (every row decoded).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { tempPathFor, unlinkIfExists } from "../model/atomic-file.js";
import {
  duckdbMemoryLimit,
  duckdbThreads,
  exportMemoryFor,
  rowGroupSize,
  SCRATCH_PARQUET_OPTIONS,
} from "../model/duckdb-resources.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import type { ParquetSource } from "../model/parquet-decode.js";
import { type PartFilePlan, type PartKind, planPartFile } from "../model/parquet-part-sql.js";
import { describeParquet, readParquetSql, stepRange, stepStats } from "../model/parquet-reader.js";
import { jsKeyOrder } from "../model/parquet-sql.js";
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

const PART_TYPES: Record<PartKind, string> = { double: "DOUBLE", int: "BIGINT", bool: "BOOLEAN", text: "VARCHAR" };

/** The SELECT of one file's part columns (without the run id): metric `j` as `m{j}`, for each position in `at`. */
function fileSelect(
  path: string,
  plan: PartFilePlan,
  at: ReadonlyMap<number, { key: string; part: PartKind }>,
  src: ParquetSource,
): string {
  const ts = instantSql(plan.timestamp);
  const exprs = new Map(plan.metrics.map((m) => [m.key, m.expr]));
  const metrics = [...at].map(([j, m]) => `${exprs.get(m.key) ?? `NULL::${PART_TYPES[m.part]}`} AS "m${j}"`);
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
  private limit = "";

  /** The in-memory DuckDB the parts are written with (row-parts.ts uses it too). */
  async connection(): Promise<DuckDBConnection> {
    if (this.db === null) {
      const tempDir = await mkdtemp(join(tmpdir(), "dr-wandb-duckdb-"));
      this.limit = duckdbMemoryLimit("export");
      const instance = await DuckDBInstance.create(":memory:", {
        temp_directory: tempDir,
        memory_limit: this.limit,
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
    if (process.env.DR_WANDB_DOWNLOAD_COLUMNAR === "0") return null;
    const conn = await this.connection();
    const stringKeys = new Set(src.stringKeys);
    const plans: PartFilePlan[] = [];
    let widest = 0;
    for (const p of src.paths) {
      const columns = await describeParquet(conn, p);
      const plan = planPartFile(columns, stringKeys);
      if (plan === null) return null;
      plans.push(plan);
      widest = Math.max(widest, columns.length);
    }
    // A wide history (thousands of keys) gets the budget its chunks need, as the export plans it.
    const limit = exportMemoryFor({ readerBufferBytes: 0, columns: widest + 8, threads: Number(duckdbThreads()) });
    if (limit !== this.limit) {
      await conn.run(`SET memory_limit = ${quoteLiteral(limit)}`);
      this.limit = limit;
    }
    const stats = await stepStats(conn, src);
    if (stats === null || stats.rows !== stats.total) return null;
    if (stats.rows === 0) return 0;
    // Each key's kinds and part column type, and where the row path first meets it: its first row (by step), then
    // its place among that row's keys (the file's columns in JS key order).
    const seen = new Map<string, { step: bigint; order: number; kinds: number; part: PartKind }>();
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
      for (let order = 0; order < metrics.length; order++) {
        const m = metrics[order]!;
        const kinds = row[2 * order];
        const step = row[2 * order + 1];
        if (kinds === null || kinds === undefined || typeof step !== "bigint") continue;
        const had = seen.get(m.key);
        if (had === undefined) seen.set(m.key, { step, order, kinds: Number(kinds), part: m.part });
        else if (had.part !== m.part)
          return null; // one key typed two ways in one run's files: decode
        else {
          had.kinds |= Number(kinds);
          if (step < had.step) Object.assign(had, { step, order });
        }
      }
    }
    const keys = [...seen].sort(([, a], [, b]) => (a.step < b.step ? -1 : a.step > b.step ? 1 : a.order - b.order));
    const positions = spool.positions(keys.map(([k]) => k));
    const at = new Map<number, { key: string; part: PartKind }>();
    keys.forEach(([key, s], n) => {
      at.set(positions[n]!, { key, part: s.part });
      spool.noteKinds(positions[n]!, s.kinds);
    });
    const union = src.paths.map((p, i) => fileSelect(p, plans[i]!, at, src)).join(" UNION ALL ");
    const columns = ["s", "ts", "tu", "u", "w", "x", ...[...at.keys()].map((j) => `m${j}`)];
    const part = tempPathFor(spool.finalPath, "spool");
    try {
      await conn.run(
        `COPY (SELECT ${quoteLiteral(runId)} AS "r", ${columns.map((c) => quoteIdent(c)).join(", ")} ` +
          `FROM (${union}) ORDER BY "s") TO ${quoteLiteral(part)} ` +
          `(FORMAT parquet, ${SCRATCH_PARQUET_OPTIONS}, ROW_GROUP_SIZE ${rowGroupSize(columns.length + 1)})`,
      );
      await spool.addPart(part, stats.rows, new Map([...at].map(([j, m]) => [j, m.part])));
    } catch (e) {
      await unlinkIfExists(part);
      throw e;
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

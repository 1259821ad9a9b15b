/**
 * The Parquet output. Rows are spooled, as they arrive, to hidden files beside the outputs (history and system
 * metrics: a CSV with one column position per metric key, see csv-spool.ts; runs: NDJSON), while the kinds of value
 * each metric key takes are noted. At close, an in-memory DuckDB turns each spool into a typed, zstd-compressed
 * Parquet file with one `COPY (SELECT … FROM read_csv(spool, columns={…})) TO temp.parquet` (the runs spool read a
 * line at a time, each line parsed with `from_json`), and the temp files are renamed into place.
 *
 * - runs: typed scalar columns, TIMESTAMPTZ created_at/heartbeat_at, VARCHAR[] tags, JSON for nested parts.
 * - histories: run_id, step BIGINT, timestamp TIMESTAMPTZ, runtime DOUBLE, wandb_metadata JSON, extra JSON, then
 *   one column per metric key, typed by columnTypeFor (a key named like a fixed column becomes "metrics.<key>").
 * - system metrics (optional): run_id, timestamp, runtime, then one column per metric key.
 *
 * Every value reaches DuckDB as text and is cast there, so NaN/±Infinity and integers beyond 2^53 arrive exactly.
 */
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { DuckDBInstance } from "@duckdb/node-api";
import { fsyncPath, tempPathFor, unlinkIfExists } from "../model/atomic-file.js";
import {
  duckdbMemoryLimit,
  duckdbThreads,
  exportMemoryFor,
  rowGroupSize,
  SCRATCH_PARQUET_OPTIONS,
} from "../model/duckdb-resources.js";
import { metricColumnNames, quoteLiteral } from "../model/flatten.js";
import { collectGarbage } from "../model/heap.js";
import { stringifyWellFormed } from "../model/json.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import { decodeParquetSources, type ParquetSource } from "../model/parquet-decode.js";
import { HISTORY_FIXED_COLUMNS, RUN_FIELDS, type RunRecord, type SystemMetricsRecord } from "../model/records.js";
import { BaseProjectWriter, type HistoryBatches, type PendingFile } from "./base-writer.js";
import { ColumnarHistory } from "./columnar-history.js";
import { csvNumber } from "./csv-fields.js";
import { CsvSpool } from "./csv-spool.js";
import { historyRows, tsFields } from "./history-rows.js";
import { RowParts } from "./row-parts.js";
import { rowTimestamp, runObject } from "./rows.js";
import { NdjsonSpool, RUN_ROW_GROUP, runsReaderBufferBytes, runsSelect } from "./runs-spool.js";
import type { OutputPaths, ProjectWriterOptions } from "./types.js";

export const SYSTEM_METRICS_FIXED_COLUMNS = ["run_id", "timestamp", "runtime"] as const;

const HISTORY_SPOOL_COLUMNS = [
  ["r", "VARCHAR"],
  ["s", "BIGINT"],
  ["ts", "BIGINT"],
  ["tu", "BIGINT"],
  ["u", "VARCHAR"],
  ["w", "VARCHAR"],
  ["x", "VARCHAR"],
] as const;

const SYSTEM_SPOOL_COLUMNS = [
  ["r", "VARCHAR"],
  ["ts", "BIGINT"],
  ["tu", "BIGINT"],
  ["u", "VARCHAR"],
] as const;

const TIMESTAMP_EXPR = `CAST(make_timestamp("ts" * 1000000 + "tu") AS TIMESTAMPTZ)`;

/** Every row of a spool: its fixed columns' expressions, then its metric columns named for the file. */
function spoolSelect(spool: CsvSpool, fixed: readonly string[], reserved: readonly string[]): string[] {
  const names = metricColumnNames(
    spool.metricColumns().map((c) => c.key),
    reserved,
  );
  return spool.selectAll(fixed, names);
}

export function historiesSelect(spool: CsvSpool): string[] {
  const fixed = [
    `"r" AS "run_id"`,
    `"s" AS "step"`,
    `${TIMESTAMP_EXPR} AS "timestamp"`,
    `TRY_CAST("u" AS DOUBLE) AS "runtime"`,
    `CAST("w" AS JSON) AS "wandb_metadata"`,
    `CAST("x" AS JSON) AS "extra"`,
  ];
  return spoolSelect(spool, fixed, HISTORY_FIXED_COLUMNS);
}

export function systemMetricsSelect(spool: CsvSpool): string[] {
  const fixed = [`"r" AS "run_id"`, `${TIMESTAMP_EXPR} AS "timestamp"`, `TRY_CAST("u" AS DOUBLE) AS "runtime"`];
  return spoolSelect(spool, fixed, SYSTEM_METRICS_FIXED_COLUMNS);
}

interface Target {
  spool: CsvSpool | NdjsonSpool;
  finalPath: string;
  /** The Parquet temp file, once COPY has started writing it. */
  tempPath: string | null;
  /** The file's rows, as SELECTs to write one after the other. */
  select: () => string[];
}

class ParquetProjectWriter extends BaseProjectWriter {
  protected readonly withHistory: boolean;
  protected readonly withSystemMetrics: boolean;
  private readonly targets: Target[];

  constructor(
    outputDir: string,
    private readonly runs: NdjsonSpool,
    private readonly histories: CsvSpool | null,
    private readonly systemMetrics: CsvSpool | null,
    paths: OutputPaths,
  ) {
    super(outputDir);
    this.withHistory = histories !== null;
    this.withSystemMetrics = systemMetrics !== null;
    // Rename order: the runs file last.
    this.targets = [];
    if (histories !== null && paths.histories !== null)
      this.targets.push({
        spool: histories,
        finalPath: paths.histories,
        tempPath: null,
        select: () => historiesSelect(histories),
      });
    if (systemMetrics !== null && paths.systemMetrics !== null)
      this.targets.push({
        spool: systemMetrics,
        finalPath: paths.systemMetrics,
        tempPath: null,
        select: () => systemMetricsSelect(systemMetrics),
      });
    this.targets.push({
      spool: runs,
      finalPath: paths.runs,
      tempPath: null,
      select: () => [runsSelect(runs.file.tempPath, runs.longestLine)],
    });
  }

  override readonly takesParquet = true;
  private readonly columnar = new ColumnarHistory();

  protected async writeRunRows(
    run: RunRecord,
    history: HistoryBatches | null,
    systemMetrics: SystemMetricsRecord[] | null,
    parquet: readonly ParquetSource[],
  ): Promise<number> {
    let rows = 0;
    const h = this.histories;
    if (h !== null && history !== null) {
      // The exports' rows come first (their steps precede the batches'): written by DuckDB where it can.
      const parts =
        process.env.DR_WANDB_DOWNLOAD_COLUMNAR === "0" ? null : new RowParts(h, () => this.columnar.connection());
      for (const src of parquet)
        rows +=
          (await this.columnar.write(h, run.run_id, src)) ??
          (await historyRows(h, run, decodeParquetSources([src], run.run_id), parts));
      rows += await historyRows(h, run, history, parts);
    }
    const s = this.systemMetrics;
    if (s !== null && systemMetrics !== null) {
      for (const row of systemMetrics) {
        s.add(`${s.textField(row.run_id)},${tsFields(rowTimestamp(row))},${csvNumber(row.runtime)}`, row.metrics);
        if (s.full) await s.drain();
      }
    }
    await this.runs.add(`${stringifyWellFormed(runObject(run))}\n`);
    return rows;
  }

  protected async finishFiles(): Promise<PendingFile[]> {
    await this.columnar.close();
    for (const t of this.targets) await t.spool.finish();
    // The conversion is DuckDB's: the download's JavaScript garbage is collected first, not kept beside it.
    collectGarbage();
    const tempDir = await mkdtemp(join(tmpdir(), "dr-wandb-duckdb-"));
    let instance: DuckDBInstance | null = null;
    let conn: DuckDBConnection | null = null;
    try {
      instance = await DuckDBInstance.create(":memory:", {
        temp_directory: tempDir,
        memory_limit: duckdbMemoryLimit(),
      });
      traceDuckDB(instance);
      conn = await instance.connect();
      await conn.run("SET TimeZone = 'UTC'");
      const out: PendingFile[] = [];
      for (const t of this.targets) {
        t.tempPath = tempPathFor(t.finalPath);
        const columns = t.spool instanceof CsvSpool ? t.spool.keys().length + 7 : RUN_FIELDS.length;
        // The runs file's rows carry JSON cells of KB each (config, summary, system_attrs): a row group of the
        // width-based size held every run at once (10,000 runs: over 100 MiB); 1,024 runs are a few tens of MB.
        const rowGroup = t.spool instanceof CsvSpool ? rowGroupSize(columns) : RUN_ROW_GROUP;
        // The runs file is small but its JSON cells are big, and a wide spool's chunks are big: one thread reads
        // them with about half the memory of two.
        const threads = !(t.spool instanceof CsvSpool) || columns > 256 ? 1 : Number(duckdbThreads());
        await conn.run(`SET threads = ${threads}`);
        // The budget, planned from what is read: the reader holds whole lines (a single value may be hundreds of
        // MB), so a spool with long lines gets room for a few of its buffers per thread beyond the usual budget.
        const buffer =
          t.spool instanceof CsvSpool ? t.spool.readerBufferBytes() : runsReaderBufferBytes(t.spool.longestLine);
        // and its large lines (every run of the file is in one chunk) are held in a few copies while the JSON is
        // parsed and written.
        const largestValueBytes = t.spool instanceof CsvSpool ? 0 : t.spool.largeLineBytes;
        await conn.run(
          `SET memory_limit = ${quoteLiteral(exportMemoryFor({ readerBufferBytes: buffer, columns, threads, largestValueBytes }))}`,
        );
        const selects = t.select();
        // Several segments: each written alone, then read back in order (one multi-file read_parquet keeps the
        // files' order; a UNION ALL of different readers does not). The spool goes as soon as they are written.
        const pieces: string[] = [];
        if (selects.length > 1) {
          for (const [k, select] of selects.entries()) {
            const piece = join(tempDir, `piece-${k}.parquet`);
            await conn.run(
              `COPY (${select}) TO ${quoteLiteral(piece)} (FORMAT parquet, ${SCRATCH_PARQUET_OPTIONS}, ROW_GROUP_SIZE ${rowGroup})`,
            );
            pieces.push(piece);
          }
          await t.spool.remove();
        }
        const rows =
          pieces.length === 0 ? selects[0]! : `SELECT * FROM read_parquet([${pieces.map(quoteLiteral).join(", ")}])`;
        await conn.run(
          `COPY (${rows}) TO ${quoteLiteral(t.tempPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${rowGroup})`,
        );
        for (const piece of pieces) await unlinkIfExists(piece);
        await fsyncPath(t.tempPath);
        await t.spool.remove(); // converted: delete the spool now, to free the disk early
        out.push(pendingRename(t));
      }
      return out;
    } finally {
      if (instance) await untraceDuckDB(instance);
      conn?.closeSync();
      instance?.closeSync();
      await rm(tempDir, { recursive: true, force: true });
    }
  }

  protected async removeTempFiles(): Promise<void> {
    await this.columnar.close().catch(() => undefined);
    for (const t of this.targets) {
      await t.spool.remove();
      if (t.tempPath !== null) await unlinkIfExists(t.tempPath);
    }
  }
}

function pendingRename(t: Target): PendingFile {
  return {
    commit: async () => {
      await rename(t.tempPath!, t.finalPath);
      t.tempPath = null;
      return t.finalPath;
    },
    abort: async () => {
      if (t.tempPath !== null) await unlinkIfExists(t.tempPath);
    },
  };
}

export async function openParquetWriter(opts: ProjectWriterOptions, paths: OutputPaths): Promise<ParquetProjectWriter> {
  const made: { remove(): Promise<void> }[] = [];
  try {
    const runs = await NdjsonSpool.create(paths.runs);
    made.push(runs);
    const histories = paths.histories === null ? null : await CsvSpool.create(paths.histories, HISTORY_SPOOL_COLUMNS);
    if (histories) made.push(histories);
    const sys = paths.systemMetrics === null ? null : await CsvSpool.create(paths.systemMetrics, SYSTEM_SPOOL_COLUMNS);
    return new ParquetProjectWriter(opts.outputDir, runs, histories, sys, paths);
  } catch (e) {
    for (const f of made) await f.remove();
    throw e;
  }
}

/**
 * Parquet export of the archive, under the original dr_wandb's file names. Always written by DuckDB's COPY (zstd);
 * a PostgreSQL archive is first streamed into a temporary DuckDB database. Each file is written whole: to
 * `<name>.tmp-<pid>` in the same folder, then renamed. The COPY steps are in copy.ts, the history file in
 * history-export.ts.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { type Archive, ArchiveError, type ExportFilter, firstLine, isDuckDBExportSource } from "../archive/index.js";
import { isProcessAlive, removeStaleTempFiles } from "../model/atomic-file.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import { collectGarbage } from "../model/heap.js";
import { RUN_JSON_COMPONENTS, RUN_SCALAR_COLUMNS } from "../model/records.js";
import {
  copyOrderedToParquet,
  copyToParquet,
  copyToPartitioned,
  RUN_ROW_GROUP,
  startExport,
  whereClause,
  withCopyBudget,
} from "./copy.js";
import { exportHistory, historySelect, MANIFEST_NAME } from "./history-export.js";

export interface ArchiveExportOptions {
  outputDir: string;
  /** Only this entity's runs (all entities when absent). */
  entity?: string;
  /** Only this project's runs (all projects when absent). */
  project?: string;
  /**
   * Write the history as a Hive-partitioned Parquet dataset `runs_history/entity=…/project=…/*.parquet` (one table
   * for Spark, Trino, DuckDB, polars) instead of the single runs_history.parquet, for archives that outgrow one file.
   */
  partitioned?: boolean;
}

/** The standard run fields of every runs_metadata*.parquet file, as in the original. */
export const RUN_STANDARD_COLUMNS = ["run_id", "run_name", "state", "project", "entity", "created_at"] as const;

/** The files an export writes (their temp files, left by a killed export, are removed before the next one). */
const EXPORT_FILES = [
  "runs_metadata.parquet",
  ...RUN_JSON_COMPONENTS.map((c) => `runs_metadata_${c}.parquet`),
  "runs_history.parquet",
  "runs_system_metrics.parquet",
  MANIFEST_NAME,
];

/** Removes what a killed earlier export left: temp files and temp/old dataset folders of dead processes. */
async function removeStaleExportTemps(outputDir: string): Promise<void> {
  await removeStaleTempFiles(outputDir, EXPORT_FILES);
  let names: string[] = [];
  try {
    names = await readdir(outputDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\.runs_history(?:\.parquet)?\.(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(n);
    if (m && !isProcessAlive(Number(m[1]))) await rm(join(outputDir, n), { recursive: true, force: true });
  }
}

/**
 * Writes runs_metadata.parquet, runs_metadata_{component}.parquet (6), runs_history.parquet and
 * runs_system_metrics.parquet into `outputDir`, for the runs of `entity`/`project` when given (else everything).
 */
export async function exportArchive(archive: Archive, opts: ArchiveExportOptions): Promise<{ files: string[] }> {
  // The hook is part of Archive; an object from plain JavaScript without it gets this error rather than a TypeError.
  if (!isDuckDBExportSource(archive as unknown)) {
    throw new ArchiveError("EXPORT", `the ${archive.kind} archive at ${archive.location} cannot be exported`);
  }
  const outputDir = resolve(opts.outputDir);
  await mkdir(outputDir, { recursive: true });
  await removeStaleExportTemps(outputDir);
  // The export is DuckDB's work: the sync's JavaScript garbage (a listing's parsed runs) is collected first, so its
  // heap pages are returned instead of sitting beside DuckDB's buffers until V8 next allocates.
  collectGarbage();
  const filter: ExportFilter = {};
  if (opts.entity !== undefined) filter.entity = opts.entity;
  if (opts.project !== undefined) filter.project = opts.project;
  return archive.withDuckDBTables(filter, async (conn) => {
    startExport(conn);
    // Row order is part of the files' contract (runs by creation, history by run and step, segments in file
    // order): the archive turns insertion order off for its writes; the export turns it back on.
    const order = String(
      (await conn.runAndReadAll("SELECT current_setting('preserve_insertion_order')")).getRows()[0]![0],
    );
    await conn.run("SET preserve_insertion_order = true");
    try {
      return await exportTables(conn, filter, outputDir, opts);
    } finally {
      await conn.run(`SET preserve_insertion_order = ${order === "true" ? "true" : "false"}`).catch(() => undefined);
    }
  });
}

async function exportTables(
  conn: DuckDBConnection,
  filter: ExportFilter,
  outputDir: string,
  opts: ArchiveExportOptions,
): Promise<{ files: string[] }> {
  const files: string[] = [];
  const where = whereClause(filter);
  const standard = RUN_STANDARD_COLUMNS.map((c) => quoteIdent(c));
  const otherScalars = RUN_SCALAR_COLUMNS.filter((c) => !(RUN_STANDARD_COLUMNS as readonly string[]).includes(c)).map(
    (c) => quoteIdent(c),
  );
  const components = RUN_JSON_COMPONENTS.map((c) => quoteIdent(c));
  const metaCols = [...standard, ...otherScalars, "tags", "deleted", ...components].join(", ");
  // The runs in order once (chunk by chunk when their JSON cells are large); each component's file is read from it
  // in that order, with no sort of its own.
  // Measured under the export's budget: a single value of hundreds of MB is read whole to take its length.
  let size: unknown[] = [];
  await withCopyBudget(conn, RUN_JSON_COMPONENTS.length, async () => {
    const sizes = RUN_JSON_COMPONENTS.map((c) => `coalesce(length(CAST(${quoteIdent(c)} AS VARCHAR)), 0)`);
    try {
      size = (
        await conn.runAndReadAll(`SELECT count(*), coalesce(sum(${sizes.join(" + ")}), 0) FROM runs ${where}`)
      ).getRows()[0]!;
    } catch (e) {
      throw new ArchiveError("EXPORT", `measuring the runs to export: ${firstLine(e)}`, { cause: e });
    }
  });
  const metadata = await copyOrderedToParquet(
    conn,
    {
      cols: metaCols,
      table: "runs",
      where,
      group: ["entity", "project"],
      range: "created_at",
      tieBreak: "run_id",
      rows: Number(size[0]),
      payloadBytes: Number(size[1]),
    },
    outputDir,
    "runs_metadata.parquet",
    RUN_ROW_GROUP,
  );
  files.push(metadata);
  for (const c of RUN_JSON_COMPONENTS) {
    files.push(
      await copyToParquet(
        conn,
        `SELECT ${[...standard, quoteIdent(c)].join(", ")} FROM read_parquet(${quoteLiteral(metadata)})`,
        outputDir,
        `runs_metadata_${c}.parquet`,
        RUN_ROW_GROUP,
      ),
    );
  }
  if (opts.partitioned) {
    files.push(await copyToPartitioned(conn, await historySelect(conn, filter, { partitionColumns: true }), outputDir));
  } else {
    files.push(await exportHistory(conn, filter, outputDir));
  }
  files.push(
    await copyToParquet(
      conn,
      `SELECT run_id, "timestamp", runtime, metrics FROM system_metrics ${where} ORDER BY entity, project, run_id, "timestamp"`,
      outputDir,
      "runs_system_metrics.parquet",
    ),
  );
  return { files };
}

/** DuckDB resource settings shared by every DuckDB instance dr-wandb opens (archive, exports, writers). */
import type { DuckDBConnection } from "@duckdb/node-api";
import { envSetting } from "./env-setting.js";

/**
 * DuckDB's memory budget (its own default is 80% of the machine's RAM, and its buffer pool fills up to the budget
 * with cached pages of a growing archive). Two budgets:
 * - "write" (the archive while syncing): 64 MiB. Inserts stream; this keeps a long sync's memory flat (500,000 rows
 *   of 30 metrics written in 4.9 s with 64 MiB, 4.5 s with 128 MiB, 60 MB less peak RSS; 2026-12-07).
 *   DR_WANDB_DUCKDB_MEMORY overrides it.
 * - "export" (writing Parquet): 96 MiB. Exports are planned to fit it whatever the width of the history: the narrow
 *   stored rows of a part of about 2M cells are sorted (spilling beyond the budget), rest parsed once per row, and
 *   row groups sized by the table's width (rowGroupSize). DR_WANDB_DUCKDB_EXPORT_MEMORY overrides it.
 */
export const WRITE_MEMORY_MIB = 64;
export const EXPORT_MEMORY_MIB = 96;

export function duckdbMemoryLimit(
  purpose: "write" | "export" = "export",
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (purpose === "write") return envSetting(env, "DR_WANDB_DUCKDB_MEMORY") ?? `${WRITE_MEMORY_MIB}MiB`;
  return envSetting(env, "DR_WANDB_DUCKDB_EXPORT_MEMORY") ?? `${EXPORT_MEMORY_MIB}MiB`;
}

/** Strings shorter than this (UTF-16 units) are not measured for a memory plan: any budget holds them. */
export const LARGE_VALUE_CHARS = 1 << 20;

/** The UTF-8 size of `s` when it is long enough to plan memory for (LARGE_VALUE_CHARS), else 0. */
export function largeValueBytes(s: string): number {
  return s.length < LARGE_VALUE_CHARS ? 0 : Buffer.byteLength(s, "utf8");
}

/**
 * Copies of a large value planned for (measured on 2026-12-03, one value of 60 MB): a write with 6 copies beside
 * 64 MiB ran out (364 of 408 MiB used when the next 57 MiB block was asked for), with 10 it passes; wandb-download's
 * runs file of two 48 MB values ran out with 6, passes with 8. Budgets, not RSS: a 200 MB value's sync peaks at
 * ~2.5 GB RSS under a 2 GiB write budget (docs/reliability.md).
 */
export const VALUE_COPIES = { write: 10, export: 8 } as const;

/**
 * The write budget for a transaction holding a single value of `largestValueBytes` (a config, summary or history
 * cell of hundreds of MB): the usual budget, or 64 MiB plus room for VALUE_COPIES.write copies of the value (the
 * Appender's chunk, the staged row, its JSON cast, the stored row, the row it replaces and the WAL), planned before
 * the value is appended. A user's DR_WANDB_DUCKDB_MEMORY is kept as it is.
 */
export function writeMemoryFor(largestValueBytes: number, env: NodeJS.ProcessEnv = process.env): string {
  const base = duckdbMemoryLimit("write", env);
  if (envSetting(env, "DR_WANDB_DUCKDB_MEMORY") !== undefined) return base;
  const needMiB = Math.ceil((64 * 2 ** 20 + VALUE_COPIES.write * largestValueBytes) / 2 ** 20);
  return needMiB > WRITE_MEMORY_MIB ? `${needMiB}MiB` : base;
}

/**
 * The bytes of large values (LARGE_VALUE_CHARS and up) that one statement over one of the archive's tables is
 * planned to hold at once: the sum over the table's text columns of each column's longest value, from DuckDB's column
 * statistics (kept per row group, so no data is read: a scan to measure the values would itself need the memory it
 * is meant to plan); the largest over runs, history_rows and system_metrics. It covers one huge value per column (a huge
 * config beside a huge summary), not several in one column. Views have no statistics: for the PostgreSQL archive's
 * export (views over CSV files) the longest CSV record it copied counts instead (LONGEST_CSV_TABLE).
 */
export async function largestStoredValue(conn: DuckDBConnection): Promise<number> {
  let largest = 0;
  for (const table of ["runs", "history_rows", "system_metrics"]) {
    try {
      const r = await conn.runAndReadAll(
        `SELECT coalesce(sum(m), 0) FROM (
           SELECT column_name, max(TRY_CAST(regexp_extract(stats, 'Max String Length: ([0-9]+)', 1) AS BIGINT)) AS m
           FROM pragma_storage_info('${table}') GROUP BY column_name) WHERE m >= ${LARGE_VALUE_CHARS}`,
      );
      largest = Math.max(largest, Number(r.getRows()[0]?.[0] ?? 0));
    } catch {
      // a view, not a stored table: no statistics
    }
  }
  try {
    // the PostgreSQL archive's export: its views over CSV files have no statistics, their longest record is noted
    const r = await conn.runAndReadAll(`SELECT max(bytes) FROM "${LONGEST_CSV_TABLE}"`);
    const bytes = Number(r.getRows()[0]?.[0] ?? 0);
    if (bytes >= LARGE_VALUE_CHARS) largest = Math.max(largest, bytes);
  } catch {
    // not such an export
  }
  return largest;
}

/** The table in which the PostgreSQL archive's export notes its CSV files' longest record (largestStoredValue). */
export const LONGEST_CSV_TABLE = "dr_wandb$longest_csv_record";

/**
 * The export budget for writing a table of `columns` columns read from a file whose reader allocates buffers of
 * `readerBufferBytes`: the usual budget, or more when the data needs it, planned before the COPY: DuckDB's readers
 * hold whole lines (a single value may be hundreds of MB), and one chunk of 2,048 rows of a wide table holds
 * 2,048 cells per column in each operator (about 48 bytes a cell through reader, casts and writer), and the
 * largest single value of the table (`largestValueBytes`) is held in a few copies (read, cast, Parquet page,
 * compressed page) by the writer. A user's
 * DR_WANDB_DUCKDB_EXPORT_MEMORY is kept as it is.
 */
export function exportMemoryFor(
  need: { readerBufferBytes: number; columns: number; threads: number; largestValueBytes?: number },
  env: NodeJS.ProcessEnv = process.env,
): string {
  const base = duckdbMemoryLimit("export", env);
  if (envSetting(env, "DR_WANDB_DUCKDB_EXPORT_MEMORY") !== undefined) return base;
  const bytes =
    64 * 2 ** 20 +
    need.threads * (4 * need.readerBufferBytes + need.columns * 2048 * 48) +
    VALUE_COPIES.export * (need.largestValueBytes ?? 0);
  const needMiB = Math.ceil(bytes / 2 ** 20);
  return needMiB > EXPORT_MEMORY_MIB ? `${needMiB}MiB` : base;
}

/**
 * DuckDB threads: 1 by default (the sync's own work runs beside it on the other core; a second DuckDB thread cost
 * more CPU than it saved time: writing 500,000 rows of 30 metrics took 6.2 CPU s with 2 threads and 4.4 with one,
 * in the same wall time; 2026-12-07); DR_WANDB_DUCKDB_THREADS overrides it.
 */
export function duckdbThreads(env: NodeJS.ProcessEnv = process.env): string {
  return envSetting(env, "DR_WANDB_DUCKDB_THREADS") ?? "1";
}

/**
 * Rows per Parquet row group: DuckDB's default (122,880) for ordinary widths, fewer for wide tables so that one row
 * group (held in memory while it is written) stays around 2M cells; never fewer than one chunk of 2,048 rows.
 * (Measured on 26,000 rows of 1,126 columns at 160 MiB: 2,048-row groups write in ~2 s; 8,192-row groups thrash
 * the buffer pool for minutes; DuckDB's default runs out of memory.)
 */
export function rowGroupSize(columns: number): number {
  return Math.max(2048, Math.min(122_880, Math.floor(2_000_000 / Math.max(1, columns))));
}

/**
 * Parquet options of the scratch files dr-wandb writes and reads back once (wandb-download's spool parts and pieces,
 * the export's sorted chunks): no dictionary, whose analysis hashes every value of every column. Measured on 400,000
 * rows of 37 columns (20 runs of S2's parquet exports): written in 301-320 ms against 380-436 ms with DuckDB's default,
 * the files 2% larger (2026-12-08). In S2's whole `wandb-download` (4M rows) that is ~1 CPU-s of ~58, below the noise
 * of two runs each by hand (56.9 and 62.4 CPU-s against 59.4 and 57.4). The files the user gets keep their
 * dictionaries.
 */
export const SCRATCH_PARQUET_OPTIONS = "DICTIONARY_SIZE_LIMIT 1";

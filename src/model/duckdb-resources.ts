/** DuckDB resource settings shared by every DuckDB instance dr-wandb opens (archive, exports, writers). */
import { totalmem } from "node:os";

/**
 * DuckDB's memory budget. Its default is 80% of the machine's RAM; dr-wandb caps it at a quarter of RAM, between
 * 512 MiB and 2 GiB (work beyond that spills to disk). This is a ceiling, not what is used: narrow tables stay far
 * below it, but exporting a wide history (thousands of metric columns) needs room for a row group.
 * DR_WANDB_DUCKDB_MEMORY (e.g. "1GB") overrides it.
 */
export function duckdbMemoryLimit(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DR_WANDB_DUCKDB_MEMORY) return env.DR_WANDB_DUCKDB_MEMORY;
  return `${Math.round(Math.min(2048, Math.max(512, totalmem() / 4 / 2 ** 20)))}MiB`;
}

/** DuckDB threads: 2 by default (the sync's own work runs beside it); DR_WANDB_DUCKDB_THREADS overrides it. */
export function duckdbThreads(env: NodeJS.ProcessEnv = process.env): string {
  return env.DR_WANDB_DUCKDB_THREADS ?? "2";
}

/**
 * Rows per Parquet row group: DuckDB's default (122,880) for ordinary widths, fewer for very wide tables so that
 * one row group (held in memory while it is written) stays around 8M cells.
 */
export function rowGroupSize(columns: number): number {
  return Math.max(2048, Math.min(122_880, Math.floor(8_000_000 / Math.max(1, columns))));
}

/** DuckDB resource settings shared by every DuckDB instance dr-wandb opens (archive, exports, writers). */
/**
 * DuckDB's memory budget (its own default is 80% of the machine's RAM, and its buffer pool fills up to the budget
 * with cached pages of a growing archive). Two budgets:
 * - "write" (the archive while syncing): 128 MiB. Inserts stream; this keeps a long sync's memory flat.
 *   DR_WANDB_DUCKDB_MEMORY overrides it.
 * - "export" (writing Parquet): 512 MiB. Row groups are sized by the table's width (rowGroupSize), so a history with
 *   thousands of metric columns still fits; sorts beyond it spill to disk. DR_WANDB_DUCKDB_EXPORT_MEMORY overrides it.
 */
export function duckdbMemoryLimit(
  purpose: "write" | "export" = "export",
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (purpose === "write") return env.DR_WANDB_DUCKDB_MEMORY ?? "128MiB";
  return env.DR_WANDB_DUCKDB_EXPORT_MEMORY ?? "512MiB";
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

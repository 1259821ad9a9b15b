/** DuckDB resource settings shared by every DuckDB instance dr-wandb opens (archive, exports, writers). */
/**
 * DuckDB's memory budget (its own default is 80% of the machine's RAM, and its buffer pool fills up to the budget
 * with cached pages of a growing archive). Two budgets:
 * - "write" (the archive while syncing): 128 MiB. Inserts stream; this keeps a long sync's memory flat.
 *   DR_WANDB_DUCKDB_MEMORY overrides it.
 * - "export" (writing Parquet): 160 MiB. Exports are planned to fit it whatever the width of the history: the narrow
 *   stored rows are sorted (spilling beyond the budget), each row's metrics parsed once into a typed struct, and
 *   row groups sized by the table's width (rowGroupSize). DR_WANDB_DUCKDB_EXPORT_MEMORY overrides it.
 */
export function duckdbMemoryLimit(
  purpose: "write" | "export" = "export",
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (purpose === "write") return env.DR_WANDB_DUCKDB_MEMORY ?? "128MiB";
  return env.DR_WANDB_DUCKDB_EXPORT_MEMORY ?? "160MiB";
}

/**
 * The export budget for writing a table of `columns` columns read from a file whose reader allocates buffers of
 * `readerBufferBytes`: the usual budget, or more when the data needs it, planned before the COPY: DuckDB's readers
 * hold whole lines (a single value may be hundreds of MB), and one chunk of 2,048 rows of a wide table holds
 * 2,048 cells per column in each operator (about 48 bytes a cell through reader, casts and writer). A user's
 * DR_WANDB_DUCKDB_EXPORT_MEMORY is kept as it is.
 */
export function exportMemoryFor(
  need: { readerBufferBytes: number; columns: number; threads: number },
  env: NodeJS.ProcessEnv = process.env,
): string {
  const base = duckdbMemoryLimit("export", env);
  if (env.DR_WANDB_DUCKDB_EXPORT_MEMORY !== undefined) return base;
  const bytes = 64 * 2 ** 20 + need.threads * (4 * need.readerBufferBytes + need.columns * 2048 * 48);
  const needMiB = Math.ceil(bytes / 2 ** 20);
  return needMiB > 160 ? `${needMiB}MiB` : base;
}

/** DuckDB threads: 2 by default (the sync's own work runs beside it); DR_WANDB_DUCKDB_THREADS overrides it. */
export function duckdbThreads(env: NodeJS.ProcessEnv = process.env): string {
  return env.DR_WANDB_DUCKDB_THREADS ?? "2";
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

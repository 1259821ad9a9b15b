/** DuckDB resource settings shared by every DuckDB instance dr-wandb opens (archive, exports, writers). */
/**
 * DuckDB's memory budget (its own default is 80% of the machine's RAM, and its buffer pool fills up to the budget
 * with cached pages of a growing archive). Two budgets:
 * - "write" (the archive while syncing): 128 MiB. Inserts stream; this keeps a long sync's memory flat.
 *   DR_WANDB_DUCKDB_MEMORY overrides it.
 * - "export" (writing Parquet): 160 MiB. Row groups are sized by the table's width (rowGroupSize), so a history with
 *   thousands of metric columns mostly fits; sorts beyond it spill to disk. A COPY that still runs out of memory
 *   (very wide or very long rows) is retried once with 2 GiB (see copyWithMemoryRetry; 512 MiB still ran out in CI on
 *   the edge profile after a failed first attempt). 512 MiB for every export
 *   was no faster on a 400k-row history and cost ~270 MB more peak RSS. DR_WANDB_DUCKDB_EXPORT_MEMORY overrides it
 *   (then without the retry).
 */
export function duckdbMemoryLimit(
  purpose: "write" | "export" = "export",
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (purpose === "write") return env.DR_WANDB_DUCKDB_MEMORY ?? "128MiB";
  return env.DR_WANDB_DUCKDB_EXPORT_MEMORY ?? "160MiB";
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

/** The budget an export COPY is retried with after running out of memory, or null when the user set the budget. */
export function exportRetryMemoryLimit(env: NodeJS.ProcessEnv = process.env): string | null {
  return env.DR_WANDB_DUCKDB_EXPORT_MEMORY === undefined ? "2GiB" : null;
}

/**
 * Runs `copy` (a COPY … TO parquet on `conn`); if DuckDB runs out of memory, runs it once more with the larger
 * retry budget, then sets `restore` back as the connection's memory limit.
 */
export async function copyWithMemoryRetry(
  conn: { run(sql: string): Promise<unknown> },
  restore: string,
  copy: () => Promise<void>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  try {
    await copy();
  } catch (e) {
    const retry = exportRetryMemoryLimit(env);
    if (retry === null || !/Out of Memory/i.test(e instanceof Error ? e.message : String(e))) throw e;
    await conn.run(`SET memory_limit = '${retry}'`);
    try {
      await copy();
    } finally {
      await conn.run(`SET memory_limit = '${restore}'`).catch(() => undefined);
    }
  }
}

/**
 * DuckDB's native allocator (its bundled jemalloc) for our commands, set before DuckDB is loaded (imported right
 * after gc-policy.ts by the bins; DuckDB itself is only loaded by the commands, lazily).
 *
 * DuckDB builds jemalloc with two arenas that keep freed pages for a second (`dirty_decay_ms:1000`). Our jobs free
 * and allocate native memory at a high rate (a Parquet part, a transaction, a conversion every few ms), so tens of
 * MB of freed pages sat in the process's resident memory at its peak. The commands default to one arena whose freed
 * pages are returned after ~10 ms (DEFAULT_ALLOCATOR_CONF; jemalloc purges as the arena allocates, and with every
 * thread in one arena that is often; this build runs no background purging thread even when asked to). Measured on S5
 * (`npm run bench`'s 50 runs x 20,000 steps), three runs each, 2026-12-07: `wandb-download` 284-299 MB instead of
 * 318-330 MB, `sync` 321-337 MB instead of 374-386 MB, for ~0.9 s more system time in a run of 13-15 s. Returning
 * pages at once (`dirty_decay_ms:0`) cut more (251-273 MB) but cost 3.3 s of system time: each freed page is
 * faulted back in when used again.
 *
 * jemalloc reads DUCKDB_JE_MALLOC_CONF (its option string, which overrides DuckDB's built-in one) when DuckDB's
 * library first allocates, so setting it in this process works. A user's own DUCKDB_JE_MALLOC_CONF is kept as it is.
 */
export const DEFAULT_ALLOCATOR_CONF = "narenas:1,dirty_decay_ms:10,muzzy_decay_ms:0";

/** The allocator options for an environment: the user's if set, else ours. */
export function allocatorConf(env: NodeJS.ProcessEnv): string {
  const own = env.DUCKDB_JE_MALLOC_CONF;
  return own !== undefined && own.trim() !== "" ? own : DEFAULT_ALLOCATOR_CONF;
}

process.env.DUCKDB_JE_MALLOC_CONF = allocatorConf(process.env);

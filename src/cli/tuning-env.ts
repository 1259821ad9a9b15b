/**
 * The tuning variables (DR_WANDB_* memory, batch and switch settings, README "Memory settings"), checked before a
 * command runs: a value the module reading it would not use (a typo, a unit DuckDB does not know, "false" for a
 * switch of 0 and 1) is a usage error naming the variable, instead of being ignored, or failing later as a DuckDB
 * error. An unset or blank variable means the default. The modules still read the variables themselves; this only
 * refuses what they would misread.
 */

/** What a variable holds, and the message for a value that is not that. */
interface Rule {
  ok: (v: string) => boolean;
  want: string;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Rule => ({
  ok: (v) => /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max,
  want: max === Number.MAX_SAFE_INTEGER ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`,
});

/** DuckDB's memory sizes: a positive number and a unit of KB/KiB to TB/TiB (DuckDB reads a bare number as an error). */
const MEMORY_SIZE = /^(?:\d+(?:\.\d*)?|\.\d+)(?:e\d+)?\s*(?:k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)$/i;
const memory: Rule = {
  ok: (v) => MEMORY_SIZE.test(v) && Number.parseFloat(v) > 0,
  want: "a memory size such as 64MiB or 1GB",
};

const decimal = (min: number): Rule => ({
  ok: (v) => /^\d+(?:\.\d+)?$/.test(v) && Number(v) >= min,
  want: `a number of at least ${min}`,
});

const toggle: Rule = { ok: (v) => v === "0" || v === "1", want: "0 or 1" };

/** Every tuning variable and its rule (the defaults and meanings: README.md, "Memory settings"). */
export const TUNING_RULES: Readonly<Record<string, Rule>> = {
  DR_WANDB_DUCKDB_MEMORY: memory,
  DR_WANDB_DUCKDB_EXPORT_MEMORY: memory,
  DR_WANDB_DUCKDB_CHECKPOINT: memory,
  DR_WANDB_DUCKDB_THREADS: int(1, 1024),
  DR_WANDB_MAX_BUFFERED_CELLS: int(1),
  DR_WANDB_SPOOL_CELLS: int(0),
  DR_WANDB_WINDOW_CELLS: int(1),
  DR_WANDB_BATCH_CELLS: int(1),
  DR_WANDB_EXPORT_SEGMENT_CELLS: int(1),
  DR_WANDB_EXPORT_CHUNK_BYTES: int(1),
  DR_WANDB_LARGE_HEAP_MB: decimal(0),
  DR_WANDB_HEAP_GROWING_PERCENT: int(0, 1000),
  DR_WANDB_YOUNG_GROWTH_FACTOR: int(0, 16),
  DR_WANDB_MEMORY_TRACE_MS: int(1),
  DR_WANDB_COLUMNAR: toggle,
  DR_WANDB_DOWNLOAD_COLUMNAR: toggle,
  DR_WANDB_IMPORT_FAST: toggle,
  DR_WANDB_COLLECT_BEFORE_NATIVE: toggle,
  DR_WANDB_MEMORY_TRACE_GC: toggle,
};

/** The first tuning variable of `env` holding a value its reader would not use, as a one-line message; else null. */
export function tuningEnvProblem(env: NodeJS.ProcessEnv): string | null {
  for (const [name, rule] of Object.entries(TUNING_RULES)) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") continue;
    if (rule.ok(raw.trim())) continue;
    const shown = raw.length > 40 ? `${raw.slice(0, 37)}...` : raw;
    return `${name}=${JSON.stringify(shown)}: expected ${rule.want} (or unset it)`;
  }
  return null;
}

/**
 * V8's heap policies for our commands, set before anything else runs (imported first by the bins).
 *
 * Old generation: V8 schedules the next full collection when the heap reaches its live size times a growing factor,
 * which on a machine with a large heap limit is up to 4: a sync whose live JavaScript data is ~100 MB (parsed listing
 * pages, records waiting for their transaction) grew its heap to 520 MB before collecting (measured with
 * DR_WANDB_MEMORY_TRACE, docs/benchmarks.md). A factor of 1.5 collects at 150 MB for ~5% more CPU. This is not a
 * cap: the heap still grows to whatever the live data needs (a 200 MB config value still works), it is only
 * collected sooner. DR_WANDB_HEAP_GROWING_PERCENT overrides the 50 (0: V8's own policy).
 *
 * Young generation: V8 starts it at two 1 MiB semi-spaces and doubles them (up to 16 MiB each, 32 MiB with both)
 * whenever many of its objects survive a scavenge, which our commands' decoding does all the time; the grown young
 * generation then stays committed for the rest of the run. A growth factor of 1 keeps it at its starting size. Its
 * maximum (`--max-semi-space-size`) is read only when the process starts, but the growth factor is read at every
 * resize, so it can be set here. Measured 2026-12-07 on `npm run bench`'s fakes (peak RSS, by hand, one or two runs
 * each): S5 `sync` 270-272 MB against 296-324, S2 `sync` 333 against 367 and S2 `wandb-download` 328 against 369,
 * with no more CPU measured (more scavenges, each of a smaller space). DR_WANDB_YOUNG_GROWTH_FACTOR overrides the 1
 * (0: V8's own growth). This is Node 20's V8 (11.3); later V8 sources raise the factor to at least 2
 * (`DEFINE_MIN_VALUE_IMPLICATION(semi_space_growth_factor, 2)`), where the setting would change nothing: the test
 * of gc-policy.test.ts that measures the young generation then fails, saying the policy was lost.
 */
import { setFlagsFromString } from "node:v8";

/** The whole-number setting of `raw` (within [0, max]), or `fallback` when unset or not such a number. */
export function policySetting(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= max ? n : fallback;
}

export const HEAP_GROWING_PERCENT = 50;
export const YOUNG_GROWTH_FACTOR = 1;

/** The V8 flags of the policies for an environment (none for a setting of 0). */
export function gcFlags(env: NodeJS.ProcessEnv): string[] {
  const flags: string[] = [];
  const percent = policySetting(env.DR_WANDB_HEAP_GROWING_PERCENT, HEAP_GROWING_PERCENT, 1000);
  if (percent > 0) flags.push(`--heap-growing-percent=${percent}`);
  const growth = policySetting(env.DR_WANDB_YOUNG_GROWTH_FACTOR, YOUNG_GROWTH_FACTOR, 16);
  if (growth > 0) flags.push(`--semi-space-growth-factor=${growth}`);
  return flags;
}

for (const flag of gcFlags(process.env)) setFlagsFromString(flag);

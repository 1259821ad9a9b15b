/**
 * V8's heap-growing policy for our commands, set before anything else runs (imported first by the bins).
 *
 * V8 schedules the next full collection when the heap reaches its live size times a growing factor, which on a
 * machine with a large heap limit is up to 4: a sync whose live JavaScript data is ~100 MB (parsed listing pages,
 * records waiting for their transaction) grew its heap to 520 MB before collecting (measured with
 * DR_WANDB_MEMORY_TRACE, docs/benchmarks.md). A factor of 1.5 collects at 150 MB for ~5% more CPU. This is not a
 * cap: the heap still grows to whatever the live data needs (a 200 MB config value still works), it is only
 * collected sooner. DR_WANDB_HEAP_GROWING_PERCENT overrides the 50 (0: V8's own policy).
 */
import { setFlagsFromString } from "node:v8";

const raw = process.env.DR_WANDB_HEAP_GROWING_PERCENT;
const percent = raw === undefined || raw.trim() === "" ? 50 : Math.floor(Number(raw));
if (Number.isFinite(percent) && percent > 0 && percent <= 1000) {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

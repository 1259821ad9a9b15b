/**
 * A full JavaScript garbage collection on demand, before a phase that needs native memory and no JavaScript objects
 * (DuckDB converting a spool, exporting the archive): the garbage of the download phase would otherwise stay in the
 * heap, counted in the peak resident memory, until V8 next decides to collect. V8 hands the pages of a collected heap
 * back to the system, so the native phase starts lower.
 *
 * Node exposes `gc` only under `--expose-gc`; setting that flag at run time makes V8 install it on contexts created
 * afterwards, so one new context is made to take it from (once; its function collects the whole isolate's heap).
 * DR_WANDB_COLLECT_BEFORE_NATIVE=0 turns this off.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gcFn: (() => void) | null | undefined;

function gcFunction(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  gcFn = null;
  try {
    const global = (globalThis as { gc?: () => void }).gc;
    if (typeof global === "function") gcFn = global;
    else {
      setFlagsFromString("--expose-gc");
      const fn = runInNewContext("gc") as unknown;
      if (typeof fn === "function") gcFn = fn as () => void;
    }
  } catch {
    gcFn = null; // an embedder that refuses the flag: collection stays V8's own business
  }
  return gcFn;
}

/** Collects the JavaScript heap now when that is possible and not turned off; returns whether it ran. */
export function collectGarbage(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.DR_WANDB_COLLECT_BEFORE_NATIVE === "0") return false;
  const fn = gcFunction();
  if (fn === null) return false;
  fn();
  collections++;
  return true;
}

let collections = 0;

/** How many collections collectGarbage has run in this process (for tests and traces). */
export function collectionsRun(): number {
  return collections;
}

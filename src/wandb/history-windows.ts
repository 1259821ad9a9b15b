/**
 * How a history scan is cut into requests, and their answers put in order: the windows of a step range (the SDK's
 * fixed windows, or windows sized by the steps liveData lists), the rows of an answer kept to its window, and a
 * bounded pipeline that fetches windows a few at a time and yields them in order. Pure helpers of history.ts.
 */
import type { JsonValue } from "../model/json.js";
import { stepOf } from "./decode.js";
import type { HistoryRow } from "./types.js";

export interface Window {
  lo: number;
  hi: number;
  /** Rows the window must hold (its known steps), when known. */
  expected?: number;
}

/**
 * The windows covering [from, stop): the SDK's fixed windows where the steps are unknown, and where they are known
 * (from `known.from` on), windows of up to `maxRows` known steps each, from one group's first step to the next's.
 */
export function* planWindows(
  from: number,
  stop: number,
  pageSize: number,
  known: { from: number; steps: number[] } | undefined,
  maxRows: number,
): Generator<Window> {
  if (!known || known.from >= stop) {
    for (const [lo, hi] of stepWindows(from, stop, pageSize)) yield { lo, hi };
    return;
  }
  const knownFrom = Math.max(from, known.from);
  for (const [lo, hi] of stepWindows(from, knownFrom, pageSize)) yield { lo, hi };
  const steps = known.steps.filter((st) => st >= knownFrom && st < stop);
  for (let i = 0; i < steps.length; i += maxRows) {
    const lo = i === 0 ? knownFrom : steps[i]!;
    const hi = i + maxRows < steps.length ? steps[i + maxRows]! : stop;
    yield { lo, hi, expected: Math.min(maxRows, steps.length - i) };
  }
}

/** The distinct steps of `steps` in [lo, hi), ascending. */
export function sortedUniqueIn(steps: number[], lo: number, hi: number): number[] {
  const kept = steps.filter((st) => st >= lo && st < hi).sort((a, b) => a - b);
  return kept.filter((st, i) => i === 0 || st !== kept[i - 1]);
}

/** The windows [off, min(off + size, stop)) from `from` to `stop`, generated lazily. */
export function* stepWindows(from: number, stop: number, size: number): Generator<[number, number]> {
  for (let off = from; off < stop; off += size) yield [off, Math.min(off + size, stop)];
}

/** Rows with lo <= step < hi, in step order, one per step. */
export function inWindow(rows: HistoryRow[], lo: number, hi: number): HistoryRow[] {
  const kept = rows.filter((r) => {
    const s = stepOf(r);
    return s !== null && s >= lo && s < hi;
  });
  kept.sort((a, b) => stepOf(a)! - stepOf(b)!);
  return kept.filter((r, i) => i === 0 || stepOf(r) !== stepOf(kept[i - 1]!));
}

/** The rows of the first spec of a sampledHistory answer ([[row, ...]]). */
export function firstSpecRows(v: JsonValue | undefined): JsonValue[] {
  if (!Array.isArray(v)) return [];
  const first = v[0];
  return Array.isArray(first) ? first : [];
}

/**
 * Runs `fetch` over `items` with up to `depth` in flight and yields the results in order. Stopping early (or an
 * error) aborts what is still in flight.
 */
export async function* ordered<I, T>(
  items: Iterable<I>,
  fetch: (item: I, signal: AbortSignal) => Promise<T>,
  depth: number,
  signal?: AbortSignal,
): AsyncGenerator<T> {
  const ac = new AbortController();
  const onCallerAbort = () => ac.abort(signal?.reason);
  if (signal?.aborted) ac.abort(signal.reason);
  else signal?.addEventListener("abort", onCallerAbort, { once: true });
  const combined = ac.signal;
  const source = items[Symbol.iterator]();
  const inflight: Promise<T>[] = [];
  const launch = (): boolean => {
    const next = source.next();
    if (next.done) return false;
    const p = fetch(next.value, combined);
    p.catch(() => undefined); // observed when awaited; avoids unhandled rejections for abandoned ones
    inflight.push(p);
    return true;
  };
  try {
    while (inflight.length < depth && launch()) {
      // fill the pipeline
    }
    while (inflight.length > 0) {
      const result = await inflight.shift()!;
      launch();
      yield result;
    }
  } finally {
    signal?.removeEventListener("abort", onCallerAbort);
    ac.abort(new Error("history scan stopped"));
  }
}

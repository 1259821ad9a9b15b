/**
 * How a history scan is cut into requests, and their answers put in order: the windows of a step range (the SDK's
 * fixed windows, or windows sized by the steps liveData lists), the rows of an answer kept to its window, and a
 * bounded pipeline that fetches windows a few at a time and yields them in order. Pure helpers of history.ts.
 */
import type { JsonValue } from "../model/json.js";
import { decodeRow, stepOf } from "./decode.js";
import { LazyLines } from "./lazy-lines.js";
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

/** One request's answer lines (row JSON texts, or left in the answer's bytes) and the step range it asked for. */
export interface Segment {
  lines: JsonValue[] | LazyLines;
  lo: number;
  hi: number;
}

/** Lines read from an answer's bytes at a time. */
const LAZY_BLOCK = 512;

/**
 * The rows of answer segments, decoded `chunkRows` at a time and handed out as they are decoded (a window's rows are
 * never all objects at once: its consumer packs each chunk before the next is decoded), keeping exactly the rows
 * `inWindow` keeps, after any row already given (`given`): steps in [lo, hi) above `floor`, one per step, the first
 * the server sent. Rows come in the server's order, which is step order (the real server's, and this module's
 * contract); a row of a server out of order that inWindow would keep is still given, once, after the rows above it
 * (the archive stores rows by step). Each line is dropped once decoded.
 */
export class WindowRows {
  /** The highest step given so far. */
  floor: number;
  /** Rows given by the current segment. */
  count = 0;
  private given: number[] = [];
  private givenSet: Set<number> | null = null;

  constructor(floor = Number.NEGATIVE_INFINITY) {
    this.floor = floor;
  }

  /**
   * Decodes a segment. `resume` (a window read again after its first answer proved down-sampled): the rows given by
   * the previous segment count as given, and `below` is the floor before it.
   */
  *decode(seg: Segment, chunkRows: number, operation: string, resume?: { below: number }): Generator<HistoryRow[]> {
    const { lines, lo, hi } = seg;
    const below = resume ? resume.below : this.floor;
    if (!resume) {
      this.count = 0;
      this.given = [];
      this.givenSet = null;
    }
    let chunk: HistoryRow[] = [];
    const lazy = lines instanceof LazyLines ? lines : null;
    const total = lines.length;
    // Lines left in the answer's bytes are read LAZY_BLOCK at a time (each read's texts dropped once decoded).
    let block: JsonValue[] = lazy === null ? (lines as JsonValue[]) : [];
    let base = 0;
    for (let i = 0; i < total; i++) {
      if (lazy !== null && i - base >= block.length) {
        base = i;
        // checked as JSON strings when lifted (lazy-lines.ts): only misuse (reading after release) throws here
        block = lazy.take(i, i + LAZY_BLOCK);
      }
      const row = decodeRow(block[i - base]!, operation);
      block[i - base] = null;
      const s = stepOf(row);
      if (s === null || s < lo || s >= hi || s <= below || !this.fresh(s)) continue;
      chunk.push(row);
      if (chunk.length >= chunkRows) {
        yield chunk;
        chunk = [];
      }
    }
    if (lazy !== null) lazy.release();
    else (lines as JsonValue[]).length = 0;
    if (chunk.length > 0) yield chunk;
  }

  /** Whether step `s` is not yet given by this segment (and notes it given). */
  private fresh(s: number): boolean {
    const last = this.given.length > 0 ? this.given[this.given.length - 1]! : Number.NEGATIVE_INFINITY;
    if (this.givenSet === null) {
      if (s > last) {
        this.given.push(s);
        this.count++;
        if (s > this.floor) this.floor = s;
        return true;
      }
      // out of order (or repeated): from here on, membership by set
      this.givenSet = new Set(this.given);
    }
    if (this.givenSet.has(s)) return false;
    this.givenSet.add(s);
    this.count++;
    if (s > this.floor) this.floor = s;
    return true;
  }
}

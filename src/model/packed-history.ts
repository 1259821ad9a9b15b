/**
 * History records held compactly while they wait to be written (src/sync/spool.ts): a batch of HistoryRecord objects
 * costs 40-80 bytes of JavaScript heap per cell (a property pointing at a heap number, per row); packed, a number
 * cell is 8 bytes of a Float64Array and a row ~30 bytes. `unpackHistory` gives back records equal to the packed
 * ones: the same keys in the same order (an own `__proto__` key included), numbers bit for bit (NaN, ±Infinity, -0),
 * every other value (bigint, string, boolean, null, nested objects and arrays) as the same value it was.
 *
 * The layout, per batch of one run: each row's step, timestamp and runtime in Float64Arrays (a null timestamp or
 * runtime, and a `wandb_metadata` other than `{}`, flagged per row); each row's key lists (metrics keys, then extra
 * keys) as the id of a shape shared by rows with the same lists; the row's cells in shape order in one Float64Array,
 * and the cells that are not numbers beside it, by cell index.
 */

import { isJsonObject } from "./json.js";
import type { JsonObject, JsonValue } from "./json-value.js";
import { type HistoryRecord, literalKey } from "./records.js";

/** A packed batch: plain data (typed arrays, arrays and a Map), so that v8.serialize writes it as it is. */
export interface PackedHistory {
  readonly packed: 1;
  readonly runId: string;
  readonly rows: number;
  /** Cells of metrics and extra values. */
  readonly cells: number;
  readonly steps: Float64Array;
  readonly times: Float64Array;
  readonly runtimes: Float64Array;
  /** Per row: FLAG_* bits. */
  readonly flags: Uint8Array;
  /** Per row: index into `shapes`. */
  readonly shapeOf: Uint32Array;
  /** Per shape: its metrics keys then its extra keys, and how many of them are metrics keys. */
  readonly shapes: { keys: string[]; metrics: number }[];
  readonly values: Float64Array;
  /** Cell index → the value of a cell that is not a number (absent: every cell is a number). */
  readonly others: Map<number, JsonValue> | null;
  /** Row index → its `wandb_metadata` where that is not an empty object. */
  readonly meta: Map<number, JsonValue> | null;
}

const FLAG_NO_TIME = 1;
const FLAG_NO_RUNTIME = 2;
const FLAG_META = 4;
/** The row has a cell that is not a number (in `others`). */
const FLAG_OTHER = 8;

function isEmptyObject(v: JsonValue): boolean {
  return isJsonObject(v) && Object.getPrototypeOf(v) === Object.prototype && Object.keys(v).length === 0;
}

function sameKeys(a: readonly string[], b: readonly string[], from: number): boolean {
  for (let i = 0; i < b.length; i++) if (a[from + i] !== b[i]) return false;
  return true;
}

/**
 * Packs a batch of one run's records, or returns null when the batch is not in the shape packing keeps exactly
 * (records of several runs, metrics or extra that are not plain objects): such a batch is kept as it is.
 */
export function packHistory(batch: readonly HistoryRecord[]): PackedHistory | null {
  const n = batch.length;
  if (n === 0) return null;
  const runId = batch[0]!.run_id;
  const shapeOf = new Uint32Array(n);
  const shapes: { keys: string[]; metrics: number }[] = [];
  const index = new Map<string, number>();
  let last = -1;
  let cells = 0;
  for (let r = 0; r < n; r++) {
    const rec = batch[r]!;
    if (rec.run_id !== runId || !isJsonObject(rec.metrics) || !isJsonObject(rec.extra)) return null;
    const mk = Object.keys(rec.metrics);
    const ek = Object.keys(rec.extra);
    let id = last;
    if (id < 0 || !fits(shapes[id]!, mk, ek)) {
      const sig = `${mk.join("\u0000")}\u0001${ek.join("\u0000")}`;
      id = index.get(sig) ?? -1;
      if (id < 0) {
        id = shapes.length;
        shapes.push({ keys: ek.length === 0 ? mk : mk.concat(ek), metrics: mk.length });
        index.set(sig, id);
      }
      last = id;
    }
    shapeOf[r] = id;
    cells += mk.length + ek.length;
  }
  const steps = new Float64Array(n);
  const times = new Float64Array(n);
  const runtimes = new Float64Array(n);
  const flags = new Uint8Array(n);
  const values = new Float64Array(cells);
  let others: Map<number, JsonValue> | null = null;
  const other = (cell: number, v: JsonValue) => {
    others ??= new Map();
    others.set(cell, v);
  };
  let meta: Map<number, JsonValue> | null = null;
  const counts = new Uint32Array(shapes.length);
  for (let r = 0; r < n; r++) counts[shapeOf[r]!]!++;
  const packers = shapes.map((sh, i) => (counts[i]! >= COMPILE_MIN_ROWS ? compiledFor(sh).pack : null));
  let c = 0;
  for (let r = 0; r < n; r++) {
    const rec = batch[r]!;
    steps[r] = rec.step;
    let f = 0;
    if (rec.timestamp === null) f |= FLAG_NO_TIME;
    else times[r] = rec.timestamp;
    if (rec.runtime === null) f |= FLAG_NO_RUNTIME;
    else runtimes[r] = rec.runtime;
    if (!isEmptyObject(rec.wandb_metadata)) {
      f |= FLAG_META;
      meta ??= new Map();
      meta.set(r, rec.wandb_metadata);
    }
    const id = shapeOf[r]!;
    const packer = packers[id];
    if (packer) {
      if (packer(rec.metrics, rec.extra, values, c, other)) f |= FLAG_OTHER;
      c += shapes[id]!.keys.length;
    } else {
      // Object.values lists them in Object.keys's order: the shape's
      for (const part of [rec.metrics, rec.extra]) {
        for (const v of Object.values(part)) {
          if (typeof v === "number") values[c] = v;
          else {
            other(c, v);
            f |= FLAG_OTHER;
          }
          c++;
        }
      }
    }
    flags[r] = f;
  }
  return { packed: 1, runId, rows: n, cells, steps, times, runtimes, flags, shapeOf, shapes, values, others, meta };
}

function fits(shape: { keys: string[]; metrics: number }, mk: string[], ek: string[]): boolean {
  return (
    shape.metrics === mk.length &&
    shape.keys.length === mk.length + ek.length &&
    sameKeys(shape.keys, mk, 0) &&
    sameKeys(shape.keys, ek, mk.length)
  );
}

type Maker = (src: ArrayLike<JsonValue>, at: number) => { metrics: JsonObject; extra: JsonObject };

type Packer = (
  metrics: JsonObject,
  extra: JsonObject,
  values: Float64Array,
  at: number,
  other: (cell: number, v: JsonValue) => void,
) => boolean;

/**
 * Per shape, functions with its keys written out: reading them is then a monomorphic property load (not a keyed
 * lookup per cell), and records are built with object literals (objects filled key by key with 30+ keys fall into
 * V8's dictionary mode: more memory, slower to read; src/model/records.ts's splitter does the same). Made once per
 * shape (keys in this order), for shapes with at least COMPILE_MIN_ROWS rows in a batch.
 */
const compiled = new Map<string, { pack: Packer; make: Maker }>();
const COMPILED_MAX = 1024;
/** Rows of shapes seen fewer times than this in a batch are handled with loops (compiling would cost more). */
const COMPILE_MIN_ROWS = 8;

function compiledFor(shape: { keys: string[]; metrics: number }): { pack: Packer; make: Maker } {
  const sig = `${shape.metrics}\u0001${shape.keys.join("\u0000")}`;
  let f = compiled.get(sig);
  if (f === undefined) {
    const entries = shape.keys.map((k, i) => `${literalKey(k)}: s[a + ${i}]`);
    const make = new Function(
      "s",
      "a",
      `return { metrics: {${entries.slice(0, shape.metrics).join(",")}}, extra: {${entries.slice(shape.metrics).join(",")}} };`,
    ) as Maker;
    // an own "__proto__" data property is what m["__proto__"] reads (it shadows Object.prototype's accessor)
    const reads = shape.keys.map(
      (k, i) =>
        `v = ${i < shape.metrics ? "m" : "e"}[${JSON.stringify(k)}]; if (typeof v === "number") f[a + ${i}] = v; else { o(a + ${i}, v); any = true; }`,
    );
    const pack = new Function(
      "m",
      "e",
      "f",
      "a",
      "o",
      `let v; let any = false; ${reads.join("\n")} return any;`,
    ) as Packer;
    f = { pack, make };
    if (compiled.size >= COMPILED_MAX) compiled.clear();
    compiled.set(sig, f);
  }
  return f;
}

function buildLoop(
  shape: { keys: string[]; metrics: number },
  s: ArrayLike<JsonValue>,
  a: number,
): { metrics: JsonObject; extra: JsonObject } {
  const metrics: JsonObject = {};
  const extra: JsonObject = {};
  for (let i = 0; i < shape.keys.length; i++) {
    const k = shape.keys[i]!;
    const target = i < shape.metrics ? metrics : extra;
    if (k === "__proto__")
      Object.defineProperty(target, k, { value: s[a + i], enumerable: true, writable: true, configurable: true });
    else target[k] = s[a + i]!;
  }
  return { metrics, extra };
}

/** The records of a packed batch (new objects, equal to the packed ones). */
export function unpackHistory(p: PackedHistory): HistoryRecord[] {
  const counts = new Uint32Array(p.shapes.length);
  for (let r = 0; r < p.rows; r++) counts[p.shapeOf[r]!]!++;
  const built: (Maker | null)[] = p.shapes.map((s, i) => (counts[i]! >= COMPILE_MIN_ROWS ? compiledFor(s).make : null));
  const out: HistoryRecord[] = new Array(p.rows);
  const scratch: JsonValue[] = [];
  let c = 0;
  for (let r = 0; r < p.rows; r++) {
    const id = p.shapeOf[r]!;
    const shape = p.shapes[id]!;
    const width = shape.keys.length;
    const f = p.flags[r]!;
    let src: ArrayLike<JsonValue> = p.values as unknown as ArrayLike<JsonValue>;
    let at = c;
    if (f & FLAG_OTHER) {
      const others = p.others!;
      scratch.length = width;
      for (let i = 0; i < width; i++) scratch[i] = others.has(c + i) ? others.get(c + i)! : p.values[c + i]!;
      src = scratch;
      at = 0;
    }
    const maker = built[id];
    const { metrics, extra } = maker ? maker(src, at) : buildLoop(shape, src, at);
    c += width;
    out[r] = {
      run_id: p.runId,
      step: p.steps[r]!,
      timestamp: f & FLAG_NO_TIME ? null : p.times[r]!,
      runtime: f & FLAG_NO_RUNTIME ? null : p.runtimes[r]!,
      wandb_metadata: f & FLAG_META ? p.meta!.get(r)! : {},
      metrics,
      extra,
    };
  }
  return out;
}

/** History rows and system-metric events of a generated run, computed on demand from its RunSpec. */

import { FLOAT_STEP_ROWS } from "./encode.js";
import { type KeySpec, keyValue } from "./keys.js";
import type { FObject, FValue } from "./model.js";
import { hash3, round, unit } from "./random.js";
import type { RunSpec, Segment } from "./spec.js";

// ---------------------------------------------------------------------------------------------------------------
// Steps and rows

export function specRowCount(spec: RunSpec): number {
  let n = 0;
  for (const s of spec.segments) n += s.count;
  return n;
}
export function specFirstStep(spec: RunSpec): number {
  for (const s of spec.segments) if (s.count > 0) return s.startStep;
  return -1;
}
export function specLastStep(spec: RunSpec): number {
  for (let i = spec.segments.length - 1; i >= 0; i--) {
    const s = spec.segments[i]!;
    if (s.count > 0) return s.startStep + (s.count - 1) * s.stride;
  }
  return -1;
}
function rowRuntime(spec: RunSpec, seg: Segment, j: number, step: number): number {
  return round(seg.t0 + j * seg.dt + unit(hash3(spec.seed, 0x7171, step)) * seg.dt * 0.25, 6);
}
/** Unix seconds of the run's last row (its creation time for a run without history). */
export function lastRowEpoch(spec: RunSpec): number {
  const seg = lastSegment(spec);
  if (!seg) return spec.createdEpoch;
  const j = seg.count - 1;
  return spec.createdEpoch + rowRuntime(spec, seg, j, seg.startStep + j * seg.stride);
}
function lastSegment(spec: RunSpec): Segment | undefined {
  for (let i = spec.segments.length - 1; i >= 0; i--) if (spec.segments[i]!.count > 0) return spec.segments[i];
  return undefined;
}

/** Builds row j of segment seg. */
type RowFactory = (vals: FValue[], step: number, rt: number, ts: number) => FObject;
const factories = new WeakMap<KeySpec[], RowFactory | null>();
/**
 * For a dense key list (every key on every row) a compiled object-literal factory: rows then share one hidden class
 * instead of growing key by key through a megamorphic keyed store (about 3x faster for 30 keys).
 */
function rowFactory(keys: KeySpec[]): RowFactory | null {
  let f = factories.get(keys);
  if (f !== undefined) return f;
  f = null;
  if (keys.length > 0 && keys.length <= 200 && keys.every((k) => k.period === 1)) {
    const props = keys.map((k, i) => `${JSON.stringify(k.name)}: vals[${i}]`);
    f = new Function(
      "vals",
      "step",
      "rt",
      "ts",
      `return {"_step": step, ${props.join(", ")}, "_runtime": rt, "_timestamp": ts};`,
    ) as RowFactory;
  }
  factories.set(keys, f);
  return f;
}
const scratch: FValue[] = [];

export function makeRow(spec: RunSpec, seg: Segment, j: number): FObject {
  const step = seg.startStep + j * seg.stride;
  const rt = rowRuntime(spec, seg, j, step);
  const keys0 = spec.keys;
  const factory = rowFactory(keys0);
  if (factory !== null) {
    const seed = spec.seed;
    for (let i = 0; i < keys0.length; i++) {
      const k = keys0[i]!;
      scratch[i] =
        k.kind === "float"
          ? (spec.scale * k.a) / (1 + step * k.b * spec.rate) + k.c + (unit(hash3(seed, k.id, step)) - 0.5) * k.d
          : keyValue(seed, spec.scale, spec.rate, k, step);
    }
    const r = factory(scratch, step, rt, spec.createdEpoch + rt);
    if (spec.floatStepEvery > 0 && step % spec.floatStepEvery === 0) FLOAT_STEP_ROWS.add(r);
    return r;
  }
  const row: FObject = { _step: step };
  const keys = spec.keys;
  const seed = spec.seed;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k.period === 1 || step % k.period === k.phase) {
      if (k.kind === "float") {
        row[k.name] =
          (spec.scale * k.a) / (1 + step * k.b * spec.rate) + k.c + (unit(hash3(seed, k.id, step)) - 0.5) * k.d;
      } else row[k.name] = keyValue(seed, spec.scale, spec.rate, k, step);
    }
  }
  row._runtime = rt;
  row._timestamp = spec.createdEpoch + rt;
  if (spec.floatStepEvery > 0 && step % spec.floatStepEvery === 0) FLOAT_STEP_ROWS.add(row);
  return row;
}

/** Calls fn for each row with minStep <= _step < maxStep, in step order. */
export function forEachRow(spec: RunSpec, minStep: number, maxStep: number, fn: (row: FObject) => void): void {
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    for (let j = lo; j < hi; j++) fn(makeRow(spec, seg, j));
  }
}

/** Index range [lo, hi) of the rows of seg with minStep <= step < maxStep. */
export function segRange(seg: Segment, minStep: number, maxStep: number): [number, number] {
  const lo = Math.max(0, Math.ceil((minStep - seg.startStep) / seg.stride));
  const hi = Math.min(seg.count, Math.ceil((maxStep - seg.startStep) / seg.stride));
  return [lo, Math.max(lo, hi)];
}

/** Steps (only) with minStep <= step < maxStep. */
export function stepsIn(spec: RunSpec, minStep: number, maxStep: number): number[] {
  const out: number[] = [];
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    for (let j = lo; j < hi; j++) out.push(seg.startStep + j * seg.stride);
  }
  return out;
}

/** Number of rows with minStep <= step < maxStep. */
export function countRows(spec: RunSpec, minStep: number, maxStep: number): number {
  let n = 0;
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    n += hi - lo;
  }
  return n;
}

/** The row at a step, or undefined when no row has that step. */
export function rowAtStep(spec: RunSpec, step: number): FObject | undefined {
  for (const seg of spec.segments) {
    const d = step - seg.startStep;
    if (d >= 0 && d % seg.stride === 0 && d / seg.stride < seg.count) return makeRow(spec, seg, d / seg.stride);
  }
  return undefined;
}

/**
 * Summary from history: the last value of every key among rows with step >= fromStep (all rows when null), merged
 * over `base` (so keys set by setSummary or logged earlier stay), plus `_step`, `_runtime`, `_timestamp`, `_wandb`.
 */
export function computeSummary(spec: RunSpec, base: FObject | null, fromStep: number | null): FObject {
  const out: FObject = base ? { ...base } : {};
  const found = new Set<string>();
  const want = spec.keys.length;
  let lastRow: FObject | undefined;
  // Walk rows backwards until every key was seen (bounded by the largest period) or rows run out.
  for (let si = spec.segments.length - 1; si >= 0 && found.size < want; si--) {
    const seg = spec.segments[si]!;
    for (let j = seg.count - 1; j >= 0 && found.size < want; j--) {
      const step = seg.startStep + j * seg.stride;
      if (fromStep !== null && step < fromStep) {
        si = -1;
        break;
      }
      const row = makeRow(spec, seg, j);
      if (!lastRow) lastRow = row;
      for (const k in row) {
        if (k === "_step" || k === "_runtime" || k === "_timestamp" || found.has(k)) continue;
        found.add(k);
        out[k] = row[k]!;
      }
    }
  }
  if (lastRow) {
    out._step = lastRow._step!;
    out._runtime = lastRow._runtime!;
    out._timestamp = lastRow._timestamp!;
    out._wandb = { runtime: Math.round(lastRow._runtime as number) };
  } else if (!out._wandb) out._wandb = { runtime: 0 };
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// System metrics

const SYSTEM_KEYS = [
  "system.cpu",
  "system.memory_percent",
  "system.gpu.0.gpu",
  "system.gpu.0.memoryAllocated",
  "system.gpu.0.temp",
  "system.proc.memory.rssMB",
  "system.proc.cpu.threads",
  "system.disk.\\.usagePercent",
  "system.network.sent",
];

/** System-metric events: {"_wandb": true, "_timestamp", "_runtime", "system.*"}. */
export function makeEvents(spec: RunSpec, n: number): FObject[] {
  const out: FObject[] = [];
  const total = Math.max(10, lastRowEpoch(spec) - spec.createdEpoch);
  for (let i = 0; i < n; i++) {
    const rt = round(((i + 1) * total) / n, 6);
    const row: FObject = { _wandb: true, _timestamp: spec.createdEpoch + rt, _runtime: rt };
    for (let k = 0; k < SYSTEM_KEYS.length; k++) {
      const h = hash3(spec.seed, 0xe0 + k, i);
      const name = SYSTEM_KEYS[k]!;
      row[name] =
        name === "system.proc.cpu.threads"
          ? 8 + (h % 24)
          : name === "system.network.sent"
            ? 1000 * (i + 1) + (h % 1000)
            : round(unit(h) * 100, 4);
    }
    out.push(row);
  }
  return out;
}

/** The run's systemMetrics snapshot: the latest event's system.* values. */
export function systemSnapshot(spec: RunSpec, n: number): FObject {
  const evs = makeEvents(spec, Math.max(1, n));
  const last = evs[evs.length - 1]!;
  const out: FObject = {};
  for (const k in last) if (k.startsWith("system.")) out[k] = last[k]!;
  return out;
}

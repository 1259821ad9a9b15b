/**
 * A memory sampler for measuring where the process's memory goes, off unless DR_WANDB_MEMORY_TRACE names a file.
 *
 * Every DR_WANDB_MEMORY_TRACE_MS (default 200) it appends one JSON line to that file: resident memory (rss), the
 * JavaScript heap (heapUsed/heapTotal), memory V8 knows outside its heap (external, of which arrayBuffers: Buffers,
 * undici bodies), and DuckDB's own memory (the buffer manager's `duckdb_memory()` summed over every DuckDB instance
 * open in the process, read on a connection of the sampler's own). At exit it appends one summary line: the sample
 * with the highest rss, each field's maximum, and the kernel's high-water mark (VmHWM). With
 * DR_WANDB_MEMORY_TRACE_GC=1 under `node --expose-gc` each sample first runs a full collection (heapUsed is then
 * the live set; slow, for diagnosis only). Numbers only: no argument,
 * no environment value and nothing the user synced is written.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";

interface Tracked {
  instance: DuckDBInstance;
  conn?: DuckDBConnection;
  busy?: Promise<void>;
  closing: boolean;
  bytes: number;
  tempBytes: number;
}

export interface MemorySample {
  t: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** V8's own malloc'd memory outside the heap (compiler zones, parser), getHeapStatistics().malloced_memory. */
  v8Malloced: number;
  duckdb: number;
  duckdbTemp: number;
}

const tracked = new Set<Tracked>();
let file: string | undefined;
let started = 0;
let gcFirst = false;
let peak: MemorySample | undefined;
const max: Record<string, number> = {};

const MB = 2 ** 20;
const round = (n: number) => Math.round((n / MB) * 10) / 10;

function inMb(s: MemorySample): Record<string, number> {
  const out: Record<string, number> = { t: Math.round(s.t) / 1000 };
  for (const [k, v] of Object.entries(s)) if (k !== "t") out[k] = round(v);
  return out;
}

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

const SQL =
  "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT, coalesce(sum(temporary_storage_bytes), 0)::BIGINT FROM duckdb_memory()";

function pollDuckDB(t: Tracked): void {
  if (t.busy || t.closing) return;
  t.busy = (async () => {
    try {
      t.conn ??= await t.instance.connect();
      if (t.closing) return;
      const r = await t.conn.runAndReadAll(SQL);
      const row = r.getRows()[0];
      t.bytes = Number(row?.[0] ?? 0);
      t.tempBytes = Number(row?.[1] ?? 0);
    } catch {
      // an instance being closed: its last reading stands
    }
  })().finally(() => {
    t.busy = undefined;
  });
}

function sample(): void {
  if (file === undefined) return;
  // Diagnosis only (node --expose-gc): a full collection first, so heapUsed is the live set.
  if (gcFirst) (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  let duckdb = 0;
  let duckdbTemp = 0;
  for (const t of tracked) {
    duckdb += t.bytes;
    duckdbTemp += t.tempBytes;
    pollDuckDB(t);
  }
  const s: MemorySample = {
    t: performance.now() - started,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    v8Malloced: getHeapStatistics().malloced_memory,
    duckdb,
    duckdbTemp,
  };
  if (!peak || s.rss > peak.rss) peak = s;
  for (const [k, v] of Object.entries(s)) if (k !== "t") max[k] = Math.max(max[k] ?? 0, v);
  try {
    appendFileSync(file, `${JSON.stringify(inMb(s))}\n`);
  } catch {
    file = undefined; // the trace is a diagnostic: a full disk must not stop the job
  }
}

/** Starts the sampler when DR_WANDB_MEMORY_TRACE is set (once per process). */
export function startMemoryTrace(env: NodeJS.ProcessEnv = process.env): void {
  const f = env.DR_WANDB_MEMORY_TRACE;
  if (!f || file !== undefined) return;
  try {
    writeFileSync(f, "");
  } catch {
    return;
  }
  file = f;
  started = performance.now();
  const ms = Math.max(20, Number(env.DR_WANDB_MEMORY_TRACE_MS) || 200);
  gcFirst = env.DR_WANDB_MEMORY_TRACE_GC === "1";
  setInterval(sample, ms).unref();
  process.on("exit", () => {
    sample();
    if (file === undefined || !peak) return;
    const hwm = vmHwm();
    const maxMb: Record<string, number> = {};
    for (const [k, v] of Object.entries(max)) maxMb[k] = round(v);
    try {
      appendFileSync(
        file,
        `${JSON.stringify({ summary: { atPeakRss: inMb(peak), max: maxMb, vmHwm: hwm === null ? null : round(hwm) } })}\n`,
      );
    } catch {
      // diagnostic only
    }
  });
}

/** Counts this DuckDB instance's memory in the trace (no-op when the trace is off). */
export function traceDuckDB(instance: DuckDBInstance): void {
  if (file === undefined) return;
  tracked.add({ instance, closing: false, bytes: 0, tempBytes: 0 });
}

/** Stops sampling an instance before it is closed: waits for a reading in flight and closes the sampler's connection. */
export async function untraceDuckDB(instance: DuckDBInstance): Promise<void> {
  for (const t of tracked) {
    if (t.instance !== instance) continue;
    t.closing = true;
    tracked.delete(t);
    await t.busy;
    try {
      t.conn?.closeSync();
    } catch {
      // already closed with the instance
    }
  }
}

/**
 * Reads W&B parquet history exports (downloaded to local files) with DuckDB, and turns DuckDB values into JsonValues
 * exactly: DOUBLE NaN/±Infinity stay numbers, BIGINT within 2^53 becomes a number and beyond it a bigint, STRUCT an
 * object, LIST/ARRAY an array, VARCHAR a string. Two parquet-specific rules:
 *   - a NULL top-level column means the row lacks that key (W&B rows simply omit keys they did not log);
 *   - an integer too wide for int64 is exported as VARCHAR holding its digits; a VARCHAR holding an integer literal
 *     outside the int64 range, in a key that historyKeys does not report as a string, becomes a bigint.
 * Several files (their order is not guaranteed) are merged by `_step`, each streamed, never loaded whole.
 */
import type { DuckDBConnection, DuckDBInstance, DuckDBResult, DuckDBValue } from "@duckdb/node-api";
import type { JsonObject, JsonValue } from "../model/json.js";
import { normaliseStep } from "../model/records.js";
import type { HistoryRow } from "./types.js";

type DuckModule = typeof import("@duckdb/node-api");
let duckModule: Promise<DuckModule> | undefined;
function loadDuck(): Promise<DuckModule> {
  duckModule ??= import("@duckdb/node-api");
  return duckModule;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT_LITERAL = /^-?\d{19,}$/;

/** Converts one DuckDB value (from a parquet column) to a JSON value, losslessly. */
export function duckToJson(v: DuckDBValue, duck: DuckModule): JsonValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "number":
    case "boolean":
    case "string":
      return v;
    case "bigint":
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v instanceof duck.DuckDBListValue || v instanceof duck.DuckDBArrayValue) {
    return v.items.map((x) => duckToJson(x, duck));
  }
  if (v instanceof duck.DuckDBStructValue) {
    const out: JsonObject = {};
    for (const k of Object.keys(v.entries)) setKey(out, k, duckToJson(v.entries[k]!, duck));
    return out;
  }
  if (v instanceof duck.DuckDBMapValue) {
    const out: JsonObject = {};
    for (const e of v.entries) setKey(out, String(e.key), duckToJson(e.value, duck));
    return out;
  }
  if (v instanceof duck.DuckDBDecimalValue) {
    if (v.scale === 0) return duckToJson(v.value, duck);
    return v.toDouble();
  }
  if (v instanceof duck.DuckDBUnionValue) return duckToJson(v.value, duck);
  if (v instanceof duck.DuckDBBlobValue) return Buffer.from(v.bytes).toString("base64");
  // Dates, times, timestamps, UUIDs, intervals: their canonical text.
  return String(v);
}

function setKey(o: JsonObject, k: string, v: JsonValue): void {
  if (k === "__proto__")
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function quoteString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export interface ParquetReadOptions {
  minStep: number;
  maxStep: number;
  /** Keys historyKeys reports as strings (their VARCHAR digits are never turned into numbers). */
  stringKeys?: ReadonlySet<string>;
  batchSize?: number;
}

/** One DuckDB in-memory database for reading exports (opened on first use). */
export class ParquetReader {
  private instance: Promise<DuckDBInstance> | undefined;

  private db(): Promise<DuckDBInstance> {
    this.instance ??= loadDuck().then((d) =>
      d.DuckDBInstance.create(":memory:", { threads: "2", memory_limit: "64MiB" }),
    );
    return this.instance;
  }

  /**
   * Opens every file (so that unreadable files fail before any row is produced) and returns an iterator of row
   * batches, merged across files by `_step`, deduplicated by step, with minStep <= _step < maxStep.
   */
  async open(paths: string[], options: ParquetReadOptions): Promise<AsyncGenerator<HistoryRow[]>> {
    const duck = await loadDuck();
    const db = await this.db();
    const streams: FileStream[] = [];
    try {
      for (const p of paths) {
        const conn = await db.connect();
        const s = new FileStream(conn, duck, options.stringKeys ?? new Set());
        streams.push(s);
        await s.start(p, options.minStep, options.maxStep);
      }
    } catch (e) {
      for (const s of streams) s.close();
      throw e;
    }
    return mergeStreams(streams, options.batchSize ?? 2048);
  }

  close(): void {
    const inst = this.instance;
    this.instance = undefined;
    if (inst) inst.then((i) => i.closeSync()).catch(() => undefined);
  }
}

class FileStream {
  private result: DuckDBResult | undefined;
  private names: string[] = [];
  private buffer: HistoryRow[] = [];
  private pos = 0;
  private done = false;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly duck: DuckModule,
    private readonly stringKeys: ReadonlySet<string>,
  ) {}

  async start(path: string, minStep: number, maxStep: number): Promise<void> {
    const lo = Math.max(Number.MIN_SAFE_INTEGER, Math.floor(minStep));
    const hi = Number.isFinite(maxStep) ? Math.ceil(maxStep) : Number.MAX_SAFE_INTEGER;
    this.result = await this.conn.stream(
      `SELECT * FROM read_parquet(${quoteString(path)}) WHERE "_step" >= ${lo} AND "_step" < ${hi} ORDER BY "_step"`,
    );
    this.names = this.result.columnNames();
  }

  /** The next row, or undefined at the end. */
  async next(): Promise<HistoryRow | undefined> {
    while (this.pos >= this.buffer.length) {
      if (this.done || !this.result) return undefined;
      const chunk = await this.result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) {
        this.done = true;
        this.close();
        return undefined;
      }
      this.buffer = chunk.getRows().map((r) => this.toRow(r));
      this.pos = 0;
    }
    return this.buffer[this.pos++];
  }

  private toRow(values: DuckDBValue[]): HistoryRow {
    const row: HistoryRow = {};
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) continue; // a NULL column: the row lacks the key
      const name = this.names[i]!;
      let j = duckToJson(v, this.duck);
      if (typeof j === "string" && INT_LITERAL.test(j) && !this.stringKeys.has(name)) {
        const b = BigInt(j);
        if (b < INT64_MIN || b > INT64_MAX) j = b;
      }
      setKey(row, name, j);
    }
    if ("_step" in row) {
      const s = normaliseStep(row._step);
      if (s !== null) row._step = s;
    }
    return row;
  }

  close(): void {
    try {
      this.conn.closeSync();
    } catch {
      // already closed
    }
  }
}

async function* mergeStreams(streams: FileStream[], batchSize: number): AsyncGenerator<HistoryRow[]> {
  try {
    const heads: (HistoryRow | undefined)[] = [];
    for (const s of streams) heads.push(await s.next());
    let batch: HistoryRow[] = [];
    let lastStep = Number.NEGATIVE_INFINITY;
    for (;;) {
      let best = -1;
      let bestStep = Number.POSITIVE_INFINITY;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h === undefined) continue;
        const st = typeof h._step === "number" ? h._step : Number.POSITIVE_INFINITY;
        if (best < 0 || st < bestStep) {
          best = i;
          bestStep = st;
        }
      }
      if (best < 0) break;
      const row = heads[best]!;
      heads[best] = await streams[best]!.next();
      if (bestStep === lastStep) continue; // the same step in two files: keep the first
      lastStep = bestStep;
      batch.push(row);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    for (const s of streams) s.close();
  }
}

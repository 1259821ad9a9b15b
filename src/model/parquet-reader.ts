/**
 * Reads W&B parquet history exports (downloaded to local files) with DuckDB, and turns DuckDB values into JsonValues
 * exactly: DOUBLE NaN/±Infinity stay numbers, BIGINT within 2^53 becomes a number and beyond it a bigint, STRUCT an
 * object, LIST/ARRAY an array, VARCHAR a string. Two parquet-specific rules:
 *   - a NULL top-level column means the row lacks that key (W&B rows simply omit keys they did not log);
 *   - an integer too wide for int64 is exported as VARCHAR holding its digits; a VARCHAR holding an integer literal
 *     outside the int64 range, in a key that historyKeys does not report as a string, becomes a bigint.
 * Several files (their order is not guaranteed) are merged by `_step`, each streamed, never loaded whole.
 * Shared by the W&B client (scanHistory's row path) and the archive (parquet-ingest's columnar path), so it lives in
 * model/: neither stage imports the other.
 */
import type {
  DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBResult,
  DuckDBType,
  DuckDBValue,
} from "@duckdb/node-api";
import { type DuckModule, loadDuckDB } from "./duckdb-module.js";
import type { JsonObject, JsonValue } from "./json.js";
import { traceDuckDB, untraceDuckDB } from "./memory-trace.js";
import { normaliseStep } from "./records.js";

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

export interface ParquetColumn {
  name: string;
  type: DuckDBType;
}

/** A plain signed or unsigned (up to 32 bits) integer type: a `_step` column both ingest paths read the same. */
export function isIntegerType(t: DuckDBType): boolean {
  if (t.alias !== undefined && t.alias !== null && t.alias !== "") return false;
  return ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"].includes(t.toString());
}

export function readParquetSql(path: string): string {
  return `read_parquet(${quoteString(path)})`;
}

export function stepRange(lo: number, hi: number): string {
  const l = Math.max(Number.MIN_SAFE_INTEGER, Math.floor(lo));
  const h = Number.isFinite(hi) ? Math.ceil(hi) : Number.MAX_SAFE_INTEGER;
  return `"_step" >= ${l} AND "_step" < ${h}`;
}

/** The columns of a parquet file as DuckDB reads them. */
export async function describeParquet(conn: DuckDBConnection, path: string): Promise<ParquetColumn[]> {
  const prepared = await conn.prepare(`SELECT * FROM ${readParquetSql(path)} LIMIT 0`);
  try {
    const out: ParquetColumn[] = [];
    for (let i = 0; i < prepared.columnCount; i++)
      out.push({ name: prepared.columnName(i), type: prepared.columnType(i) });
    return out;
  } finally {
    prepared.destroySync();
  }
}

/** Rows (distinct steps), all rows and the highest step in range, over all files; null without an integer `_step`. */
export async function stepStats(
  conn: DuckDBConnection,
  src: { paths: readonly string[]; minStep: number; maxStep: number },
): Promise<{ rows: number; total: number; maxStep: number } | null> {
  for (const p of src.paths) {
    const step = (await describeParquet(conn, p)).find((c) => c.name === "_step");
    if (!step || !isIntegerType(step.type)) return null;
  }
  if (src.paths.length === 0) return { rows: 0, total: 0, maxStep: -1 };
  const union = src.paths
    .map((p) => `SELECT "_step" FROM ${readParquetSql(p)} WHERE ${stepRange(src.minStep, src.maxStep)}`)
    .join(" UNION ALL ");
  const r = await conn.runAndReadAll(
    `SELECT count(DISTINCT "_step")::BIGINT, count(*)::BIGINT, max("_step")::BIGINT FROM (${union})`,
  );
  const [rows, total, max] = r.getRows()[0]!;
  return { rows: Number(rows), total: Number(total), maxStep: max === null ? -1 : Number(max) };
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
    this.instance ??= loadDuckDB().then((d) =>
      d.DuckDBInstance.create(":memory:", { threads: "2", memory_limit: "64MiB" }).then((i) => {
        traceDuckDB(i);
        return i;
      }),
    );
    return this.instance;
  }

  /**
   * Opens every file (so that unreadable files fail before any row is produced) and returns an iterator of row
   * batches, merged across files by `_step`, deduplicated by step, with minStep <= _step < maxStep.
   */
  async open(paths: string[], options: ParquetReadOptions): Promise<AsyncGenerator<JsonObject[]>> {
    const duck = await loadDuckDB();
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

  /** Distinct steps, all rows and the highest step in [minStep, maxStep); null when a file lacks an integer `_step`. */
  async stats(
    paths: readonly string[],
    minStep: number,
    maxStep: number,
  ): Promise<{ rows: number; total: number; maxStep: number } | null> {
    const conn = await (await this.db()).connect();
    try {
      return await stepStats(conn, { paths, minStep, maxStep });
    } finally {
      conn.closeSync();
    }
  }

  close(): void {
    const inst = this.instance;
    this.instance = undefined;
    if (inst)
      inst
        .then(async (i) => {
          await untraceDuckDB(i);
          i.closeSync();
        })
        .catch(() => undefined);
  }
}

/** A JSON object literal key for generated code ("__proto__" as a computed key, so it stays an own property). */
function literalKey(name: string): string {
  return name === "__proto__" ? '["__proto__"]' : JSON.stringify(name);
}

type RowBuilder = (cols: (JsonValue | undefined)[][], r: number) => JsonObject;

/**
 * A function that builds one row as an object literal of the given columns. An object filled key by key with 30+
 * keys falls into V8's dictionary mode (about 2.5x the memory and slower to build, enumerate and stringify); a
 * literal with fixed keys keeps fast properties. Keys keep the column order, as before.
 */
function rowBuilder(names: readonly string[], present: readonly number[]): RowBuilder {
  const body = present.map((i) => `${literalKey(names[i]!)}: c[${i}][r]`).join(",\n");
  return new Function("c", "r", `return {${body}};`) as RowBuilder;
}

/** Row builders cached per file, by the set of non-NULL columns (a row omits the keys it did not log). */
const MAX_BUILDERS = 256;

class FileStream {
  private result: DuckDBResult | undefined;
  private names: string[] = [];
  private stepColumn = -1;
  private buffer: JsonObject[] = [];
  private pos = 0;
  private done = false;
  private readonly builders = new Map<string, RowBuilder>();

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
    this.stepColumn = this.names.indexOf("_step");
  }

  /** The next row, or undefined at the end. */
  async next(): Promise<JsonObject | undefined> {
    while (this.pos >= this.buffer.length) {
      if (this.done || !this.result) return undefined;
      const chunk = await this.result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) {
        this.done = true;
        this.close();
        return undefined;
      }
      this.buffer = this.toRows(chunk);
      this.pos = 0;
    }
    return this.buffer[this.pos++];
  }

  /** One chunk's rows, converted column by column (NULL cells become undefined: the row lacks that key). */
  private toRows(chunk: DuckDBDataChunk): JsonObject[] {
    const n = chunk.rowCount;
    const cols: (JsonValue | undefined)[][] = [];
    for (let c = 0; c < this.names.length; c++) cols.push(this.convertColumn(chunk.getColumnValues(c), c));
    const rows: JsonObject[] = new Array(n);
    const all = this.names.map((_, i) => i);
    for (let r = 0; r < n; r++) {
      let present: number[] | null = null;
      for (let c = 0; c < cols.length; c++) {
        if (cols[c]![r] === undefined) {
          present = [];
          for (let d = 0; d < cols.length; d++) if (cols[d]![r] !== undefined) present.push(d);
          break;
        }
      }
      const key = present === null ? "*" : present.join(",");
      let build = this.builders.get(key);
      if (build === undefined) {
        if (this.builders.size < MAX_BUILDERS) {
          build = rowBuilder(this.names, present ?? all);
          this.builders.set(key, build);
        } else {
          rows[r] = this.keyedRow(cols, r);
          continue;
        }
      }
      rows[r] = build(cols, r);
    }
    return rows;
  }

  /** The generic (slower) way to build a row, for files with very many NULL patterns. */
  private keyedRow(cols: (JsonValue | undefined)[][], r: number): JsonObject {
    const row: JsonObject = {};
    for (let c = 0; c < cols.length; c++) {
      const v = cols[c]![r];
      if (v !== undefined) setKey(row, this.names[c]!, v);
    }
    return row;
  }

  private convertColumn(values: DuckDBValue[], c: number): (JsonValue | undefined)[] {
    const name = this.names[c]!;
    const bigLiterals = !this.stringKeys.has(name);
    const isStep = c === this.stepColumn;
    const out: (JsonValue | undefined)[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      let j: JsonValue | undefined;
      if (v === null || v === undefined) j = undefined;
      else if (typeof v === "number" || typeof v === "boolean") j = v;
      else {
        j = duckToJson(v, this.duck);
        if (typeof j === "string" && bigLiterals && INT_LITERAL.test(j)) {
          const b = BigInt(j);
          if (b < INT64_MIN || b > INT64_MAX) j = b;
        }
      }
      if (isStep && j !== undefined) {
        const s = normaliseStep(j);
        if (s !== null) j = s;
      }
      out[i] = j;
    }
    return out;
  }

  close(): void {
    try {
      this.conn.closeSync();
    } catch {
      // already closed
    }
  }
}

async function* mergeStreams(streams: FileStream[], batchSize: number): AsyncGenerator<JsonObject[]> {
  try {
    const heads: (JsonObject | undefined)[] = [];
    for (const s of streams) heads.push(await s.next());
    let batch: JsonObject[] = [];
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

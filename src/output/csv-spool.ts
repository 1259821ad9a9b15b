/**
 * The row spool behind the Parquet writer: rows are appended, as they arrive, to a hidden CSV file in which every
 * metric key has a fixed column position (assigned when the key is first seen), while the kinds of value each key
 * takes are noted. At close DuckDB reads the spool with `read_csv` (all columns VARCHAR) and casts each metric
 * column to the type its kinds call for (src/model/flatten.ts columnTypeFor).
 *
 * Why CSV and not NDJSON with a nested metrics object: measured on this 2-core box, 1M rows × 30 metrics, NDJSON
 * plus one json_extract per key took 64 s (every extract re-parses the row), a multi-path json_extract 14 s, a
 * STRUCT-typed read_ndjson 11 s, and this CSV 6 s. CSV also has no trouble with keys that differ only in case.
 *
 * Field encoding (one CSV field per value; an empty unquoted field is a missing key, i.e. SQL NULL):
 * - finite number → its shortest JS text (as JSON); NaN/±Infinity → the bare tokens NaN, Infinity, -Infinity
 *   (DuckDB's DOUBLE cast reads them); bigint → its exact digits; boolean → true/false; null → null
 * - string → its JSON text, CSV-quoted; object/array → strict JSON text (stringifyStrict), CSV-quoted.
 * JSON text never holds a raw newline; only a fixed field such as an odd run id could (it is CSV-quoted then, which
 * DuckDB's reader handles).
 */

import { createReadStream } from "node:fs";
import { AtomicFile } from "../model/atomic-file.js";
import {
  type ColumnType,
  columnTypeFor,
  KIND_BITS,
  kindOf,
  quoteIdent,
  quoteLiteral,
  type ValueKind,
} from "../model/flatten.js";
import { type JsonObject, type JsonValue, stringifyStrict } from "../model/json.js";

const ALL_KINDS = Object.keys(KIND_BITS) as ValueKind[];
const INT_BIT = KIND_BITS.int;
const FLOAT_BIT = KIND_BITS.float;
const DECIMAL38 = 10n ** 38n;
/**
 * DuckDB's CSV reader refuses lines longer than max_line_size and reads in buffers of buffer_size (by default
 * 16 × max_line_size, allocated up front). So both are sized from the longest line actually spooled, with floors.
 */
export function csvReaderSizes(longestLineChars: number): { maxLineSize: number; bufferSize: number } {
  const maxLineSize = Math.max(2 << 20, 3 * longestLineChars + 1024); // UTF-8 is at most 3 bytes per UTF-16 unit
  return { maxLineSize, bufferSize: Math.max(32 << 20, 2 * maxLineSize) };
}

/** CSV-quotes a text if it needs it (an empty text is quoted too, so that it is not read as NULL). */
export function csvText(s: string): string {
  if (s === "" || /[",\n\r]/.test(s)) return `"${s.replaceAll('"', '""')}"`;
  return s;
}

function quoted(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/** The CSV field of a number (empty for null): JSON text, or NaN/Infinity/-Infinity. */
export function csvNumber(n: number | null): string {
  if (n === null) return "";
  if (Number.isFinite(n)) return String(n);
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/** The CSV field of a JSON value: strict JSON text, CSV-quoted when needed. */
export function csvJson(v: JsonValue): string {
  return quoted(stringifyStrict(v));
}

function metricField(v: JsonValue): string {
  switch (typeof v) {
    case "number":
      return csvNumber(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "string":
      return quoted(JSON.stringify(v));
    default:
      return v === null ? "null" : quoted(stringifyStrict(v));
  }
}

/** The final Parquet column of one metric key and the DuckDB expression that makes it from spool column `col`. */
export interface MetricColumn {
  key: string;
  /** The spool (VARCHAR) column holding the key's values. */
  spoolColumn: string;
  type: ColumnType | "DECIMAL(38,0)";
  expr: string;
}

export function metricExpr(col: string, type: ColumnType): { type: ColumnType | "DECIMAL(38,0)"; expr: string } {
  const c = quoteIdent(col);
  switch (type) {
    case "VARCHAR":
      return { type, expr: `json_extract_string(CAST(${c} AS JSON), '$')` };
    case "JSON":
      // Bare non-finite tokens become the strict JSON strings "NaN"/"Infinity"/"-Infinity".
      return {
        type,
        expr: `CASE WHEN ${c} IN ('NaN', 'Infinity', '-Infinity') THEN to_json(${c}) ELSE CAST(${c} AS JSON) END`,
      };
    case "HUGEINT":
      // Parquet has no 128-bit integer (DuckDB would write a lossy DOUBLE); DECIMAL(38,0) is exact.
      return { type: "DECIMAL(38,0)", expr: `TRY_CAST(${c} AS DECIMAL(38,0))` };
    default:
      return { type, expr: `TRY_CAST(${c} AS ${type})` };
  }
}

export class CsvSpool {
  private readonly keyIndex = new Map<string, number>();
  private readonly keyList: string[] = [];
  private readonly masks: number[] = [];
  /** Keys that hold an integer beyond 2^53 (which a DOUBLE column would round). */
  private readonly unsafeInts = new Set<number>();
  private text = "";
  private longestLine = 0;
  private quotedNewlines = false;
  rows = 0;
  /** The previous row's keys and their column positions. */
  private shapeKeys: string[] = [];
  private shapeIdx: number[] = [];
  // Per-row scratch, reused.
  private idx: number[] = [];
  private val: string[] = [];

  private constructor(
    readonly file: AtomicFile,
    /** The fixed leading columns: spool column name → how read_csv reads it. */
    readonly fixedColumns: readonly (readonly [string, string])[],
  ) {}

  static async create(finalPath: string, fixedColumns: readonly (readonly [string, string])[]): Promise<CsvSpool> {
    return new CsvSpool(await AtomicFile.create(finalPath, "spool"), fixedColumns);
  }

  private indexOf(k: string): number {
    let i = this.keyIndex.get(k);
    if (i === undefined) {
      i = this.keyList.length;
      this.keyIndex.set(k, i);
      this.keyList.push(k);
      this.masks.push(0);
    }
    return i;
  }

  /**
   * A text field for a fixed column (a run id), CSV-quoted when needed. DuckDB's parallel CSV scanner refuses quoted
   * newlines together with null_padding, so a value with one switches the read to a single thread.
   */
  textField(s: string): string {
    if (!this.quotedNewlines && /[\n\r]/.test(s)) this.quotedNewlines = true;
    return csvText(s);
  }

  /** Metric keys in first-seen order. */
  keys(): string[] {
    return this.keyList;
  }

  /** Appends one row: its fixed fields (already CSV fields, joined by ","), then its metrics. */
  add(fixed: string, metrics: JsonObject): void {
    const idx = this.idx;
    const val = this.val;
    const masks = this.masks;
    const shapeKeys = this.shapeKeys;
    const shapeIdx = this.shapeIdx;
    let sameShape = true;
    let n = 0;
    let pos = -1;
    let sorted = true;
    let line = fixed;
    for (const k in metrics) {
      const v = metrics[k]!;
      // Rows mostly repeat the previous row's keys in the same order: skip the map lookups then.
      let i: number;
      if (sameShape && shapeKeys[n] === k) i = shapeIdx[n]!;
      else {
        sameShape = false;
        i = this.indexOf(k);
      }
      let field: string;
      if (typeof v === "number") {
        masks[i]! |= Number.isSafeInteger(v) ? INT_BIT : FLOAT_BIT;
        field = csvNumber(v);
      } else {
        masks[i]! |= KIND_BITS[kindOf(v)];
        if (typeof v === "bigint") {
          this.unsafeInts.add(i);
          if (v >= DECIMAL38 || v <= -DECIMAL38) masks[i]! |= KIND_BITS.object; // beyond DECIMAL(38,0): JSON
        }
        field = metricField(v);
      }
      idx[n] = i;
      val[n] = field;
      n++;
      if (sorted) {
        if (i > pos) {
          line += i - pos === 1 ? `,${field}` : `${",".repeat(i - pos)}${field}`;
          pos = i;
        } else sorted = false;
      }
    }
    if (!sameShape || n !== shapeKeys.length) {
      this.shapeKeys = Object.keys(metrics);
      this.shapeIdx = idx.slice(0, n);
    }
    if (!sorted) {
      // Keys arrived out of column order: place the fields by position.
      const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => idx[a]! - idx[b]!);
      line = fixed;
      pos = -1;
      for (const at of order) {
        const i = idx[at]!;
        line += `${",".repeat(i - pos)}${val[at]}`;
        pos = i;
      }
    }
    if (line.length > this.longestLine) this.longestLine = line.length;
    this.text += `${line}\n`;
    this.rows++;
  }

  /**
   * The column positions of `keys` (new keys get the next ones, in the order given), for rows written by someone
   * else (appendPart), whose kinds bits per key are then given to `noteKinds`.
   */
  positions(keys: readonly string[]): number[] {
    const out = keys.map((k) => this.indexOf(k));
    this.shapeKeys = [];
    this.shapeIdx = [];
    return out;
  }

  noteKinds(i: number, mask: number): void {
    this.masks[i]! |= mask;
    if ((mask & (KIND_BITS.int64 | KIND_BITS.bigint)) !== 0) this.unsafeInts.add(i);
  }

  /**
   * Appends a file of `rows` spool lines (fields as `add` writes them; CSV-quoted as DuckDB's writer quotes; no raw
   * line break inside a field) after the rows so far. Returns its bytes.
   */
  async appendPart(path: string, rows: number): Promise<number> {
    await this.drain();
    let bytes = 0;
    let line = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      // Line lengths in bytes: at least the UTF-16 length csvReaderSizes expects.
      let from = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
        line += nl - from;
        if (line > this.longestLine) this.longestLine = line;
        line = 0;
        from = nl + 1;
      }
      line += chunk.length - from;
      bytes += chunk.length;
      await this.file.write(chunk);
    }
    if (line > this.longestLine) this.longestLine = line;
    this.rows += rows;
    return bytes;
  }

  /** True when enough text has gathered that the caller should `await drain()`. */
  get full(): boolean {
    return this.text.length >= 1 << 20;
  }

  async drain(): Promise<void> {
    if (this.text === "") return;
    const t = this.text;
    this.text = "";
    await this.file.write(t);
  }

  async finish(): Promise<void> {
    await this.drain();
    await this.file.finish({ sync: false });
  }

  kinds(i: number): ValueKind[] {
    const m = this.masks[i] ?? 0;
    return ALL_KINDS.filter((k) => (m & KIND_BITS[k]) !== 0);
  }

  /** The Parquet type of each metric key, in first-seen order. */
  metricColumns(): MetricColumn[] {
    return this.keyList.map((key, i) => {
      let t = columnTypeFor(this.kinds(i));
      // int + float is DOUBLE, unless some integer is beyond 2^53: then JSON keeps every digit.
      if (t === "DOUBLE" && this.unsafeInts.has(i)) t = "JSON";
      const spoolColumn = `m${i}`;
      return { key, spoolColumn, ...metricExpr(spoolColumn, t) };
    });
  }

  /** Bytes DuckDB's CSV reader allocates for each of its buffers when reading this spool. */
  readerBufferBytes(): number {
    return csvReaderSizes(this.longestLine).bufferSize;
  }

  /** `read_csv(...)` of this spool with every column as VARCHAR except the fixed ones' declared types. */
  readExpr(): string {
    const cols = [...this.fixedColumns, ...this.keyList.map((_, i) => [`m${i}`, "VARCHAR"] as const)];
    const columns = `{${cols.map(([n, t]) => `${quoteLiteral(n)}: ${quoteLiteral(t)}`).join(", ")}}`;
    const sizes = csvReaderSizes(this.longestLine);
    return (
      `read_csv(${quoteLiteral(this.file.tempPath)}, columns=${columns}, header=false, auto_detect=false, ` +
      `delim=',', quote='"', escape='"', null_padding=true, allow_quoted_nulls=false, ` +
      `max_line_size=${sizes.maxLineSize}, buffer_size=${sizes.bufferSize}` +
      `${this.quotedNewlines ? ", parallel=false" : ""})`
    );
  }
}

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
 * Field encoding and the final casts: csv-fields.ts.
 */

import { AtomicFile, unlinkIfExists } from "../model/atomic-file.js";
import { columnTypeFor, KIND_BITS, kindOf, quoteIdent, quoteLiteral, type ValueKind } from "../model/flatten.js";
import type { JsonObject } from "../model/json.js";
import type { PartKind } from "../model/parquet-part-sql.js";
import {
  csvNumber,
  csvReaderSizes,
  csvText,
  type MetricColumn,
  metricExpr,
  metricField,
  partExpr,
} from "./csv-fields.js";
import { TextBatch } from "./text-batch.js";

/** A CSV file of rows, or a typed Parquet part written by DuckDB (CsvSpool.addPart). */
type Segment = { csv: AtomicFile } | { part: string; kinds: ReadonlyMap<number, PartKind>; signature: string };

const ALL_KINDS = Object.keys(KIND_BITS) as ValueKind[];
const INT_BIT = KIND_BITS.int;
const FLOAT_BIT = KIND_BITS.float;
const DECIMAL38 = 10n ** 38n;
export class CsvSpool {
  private readonly keyIndex = new Map<string, number>();
  private readonly keyList: string[] = [];
  private readonly masks: number[] = [];
  /** Keys that hold an integer beyond 2^53 (which a DOUBLE column would round). */
  private readonly unsafeInts = new Set<number>();
  private readonly batch = new TextBatch();
  private longestLine = 0;
  private quotedNewlines = false;
  rows = 0;
  /** The previous row's keys and their column positions. */
  private shapeKeys: string[] = [];
  private shapeIdx: number[] = [];
  // Per-row scratch, reused.
  private idx: number[] = [];
  private val: string[] = [];

  /** The CSV file rows are appended to now; earlier ones, and typed parts, are in `segments`. */
  private file: AtomicFile;
  /** What the spool holds, in order: CSV files and typed Parquet parts (appendPart). */
  private readonly segments: Segment[] = [];
  private readonly csvFiles: AtomicFile[] = [];

  private constructor(
    file: AtomicFile,
    /** The fixed leading columns: spool column name → how read_csv reads it. */
    readonly fixedColumns: readonly (readonly [string, string])[],
  ) {
    this.file = file;
    this.csvFiles.push(file);
  }

  /** The final file this spool is for (its temp files are named after it). */
  get finalPath(): string {
    return this.file.finalPath;
  }

  static async create(finalPath: string, fixedColumns: readonly (readonly [string, string])[]): Promise<CsvSpool> {
    return new CsvSpool(await AtomicFile.create(finalPath, "spool"), fixedColumns);
  }

  /** The column position of metric key `k` (a new key gets the next one). */
  indexOf(k: string): number {
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
    this.batch.append(`${line}\n`);
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
   * Adds a typed Parquet part of `rows` rows after the rows so far: the fixed columns under their spool names (typed so
   * that the caller's fixed-column expressions read them as they read the CSV fields, e.g. a DOUBLE where the CSV
   * has a number's text) and metric column `m{i}` (spool position i) holding values as `kinds` says. The spool owns
   * the file from now on.
   */
  async addPart(path: string, rows: number, kinds: ReadonlyMap<number, PartKind>): Promise<void> {
    await this.drain();
    if (this.file.size > 0) {
      await this.file.finish({ sync: false });
      this.segments.push({ csv: this.file });
      this.file = await AtomicFile.create(this.file.finalPath, "spool");
      this.csvFiles.push(this.file);
    }
    const signature = [...kinds].map(([i, k]) => `${i}:${k}`).join(",");
    this.segments.push({ part: path, kinds, signature });
    this.rows += rows;
  }

  /** True when enough text has gathered that the caller should `await drain()`. */
  get full(): boolean {
    return this.batch.full;
  }

  async drain(): Promise<void> {
    await this.batch.drainTo(this.file);
  }

  async finish(): Promise<void> {
    await this.drain();
    await this.file.finish({ sync: false });
    if (this.file.size > 0 || this.segments.length === 0) this.segments.push({ csv: this.file });
  }

  /** Deletes the spool's files (idempotent). */
  async remove(): Promise<void> {
    for (const f of this.csvFiles) await f.abort();
    for (const seg of this.segments) if ("part" in seg) await unlinkIfExists(seg.part);
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
      return { key, spoolColumn, baseType: t, ...metricExpr(spoolColumn, t) };
    });
  }

  /**
   * Bytes DuckDB's CSV reader allocates for each of its buffers when reading this spool once finished: none when
   * every segment is a typed Parquet part (no CSV is read; S2's download then planned 196 MiB for its history file
   * instead of the 96 it needs).
   */
  readerBufferBytes(): number {
    if (!this.segments.some((seg) => "csv" in seg)) return 0;
    return csvReaderSizes(this.longestLine).bufferSize;
  }

  /**
   * The rows of every segment, in order, as one `SELECT <fixed>, <metric columns> FROM <segment>` per segment (their
   * results have the same columns; DuckDB's UNION ALL does not keep its inputs' order, so the caller writes them in
   * turn): the CSV files read with `read_csv` (every column VARCHAR except the fixed ones' declared types),
   * consecutive typed parts of the same columns with one `read_parquet`. `fixed`: the fixed columns' expressions
   * over the spool's fixed column names; `names`: each metric key's output column name.
   */
  selectAll(fixed: readonly string[], names: ReadonlyMap<string, string>): string[] {
    const columns = this.metricColumns();
    const out: string[] = [];
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      if ("csv" in seg) {
        const metrics = columns.map((c) => `${c.expr} AS ${quoteIdent(names.get(c.key)!)}`);
        out.push(`SELECT ${[...fixed, ...metrics].join(", ")} FROM ${this.csvRead(seg.csv.tempPath)}`);
        continue;
      }
      const paths = [seg.part];
      while (i + 1 < this.segments.length) {
        const next = this.segments[i + 1]!;
        if (!("part" in next) || next.signature !== seg.signature) break;
        paths.push(next.part);
        i++;
      }
      const metrics = columns.map((c, j) => {
        const kind = seg.kinds.get(j);
        const expr = kind === undefined ? `CAST(NULL AS ${c.type})` : partExpr(c.spoolColumn, c.baseType, kind);
        return `${expr} AS ${quoteIdent(names.get(c.key)!)}`;
      });
      out.push(
        `SELECT ${[...fixed, ...metrics].join(", ")} FROM read_parquet([${paths.map(quoteLiteral).join(", ")}])`,
      );
    }
    return out;
  }

  /** `read_csv(...)` of one CSV file of this spool. */
  private csvRead(path: string): string {
    const cols = [...this.fixedColumns, ...this.keyList.map((_, i) => [`m${i}`, "VARCHAR"] as const)];
    const columns = `{${cols.map(([n, t]) => `${quoteLiteral(n)}: ${quoteLiteral(t)}`).join(", ")}}`;
    const sizes = csvReaderSizes(this.longestLine);
    return (
      `read_csv(${quoteLiteral(path)}, columns=${columns}, header=false, auto_detect=false, ` +
      `delim=',', quote='"', escape='"', null_padding=true, allow_quoted_nulls=false, ` +
      `max_line_size=${sizes.maxLineSize}, buffer_size=${sizes.bufferSize}` +
      `${this.quotedNewlines ? ", parallel=false" : ""})`
    );
  }

  /** `read_csv(...)` of the first CSV file (for tests of the reader's options). */
  readExpr(): string {
    return this.csvRead(this.csvFiles[0]!.tempPath);
  }
}

/**
 * Decoded history rows (GraphQL pages: the live tails of running runs, and runs without exports) written by the
 * Parquet writer as typed parts of the history spool instead of CSV text: each metric key's values gathered in a
 * column (numbers in a Float64Array, booleans as 0/1, anything else as the text its CSV field would hold), handed to
 * DuckDB in data chunks and written by it to a Parquet part (the same columns the columnar path's parts have:
 * csv-spool.ts `addPart`). No number is formatted as text, and DuckDB parses none. The kinds and first-seen key order
 * noted are those `CsvSpool.add` notes for the same rows, so the final file is the same either way
 * (src/output/row-parts.test.ts). A row the parts do not take (a step that is not a safe integer, a value of 1 MB
 * or more, more than MAX_KEYS keys) goes to the CSV spool in its place, after the part so far (the caller's loop,
 * parquet.ts).
 * `DR_WANDB_DOWNLOAD_COLUMNAR=0` turns this off with the columnar path.
 */
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunk,
  type DuckDBType,
  VARCHAR,
} from "@duckdb/node-api";
import { tempPathFor, unlinkIfExists } from "../model/atomic-file.js";
import { rowGroupSize, SCRATCH_PARQUET_OPTIONS } from "../model/duckdb-resources.js";
import { KIND_BITS, kindOf, quoteLiteral } from "../model/flatten.js";
import { stringifyWellFormed } from "../model/json.js";
import type { PartKind } from "../model/parquet-part-sql.js";
import type { HistoryRecord } from "../model/records.js";
import { csvNumber, metricText } from "./csv-fields.js";
import type { CsvSpool } from "./csv-spool.js";
import { historyExtra, rowTimestamp } from "./rows.js";

/** A part is written when it holds `cells` values (rows × keys) or `rows` rows (tests make them small). */
export const rowPartLimits = { cells: 500_000, rows: 65_536 };
/** A row with more keys than this (with the part's) goes to the CSV spool: a column each would cost more. */
const MAX_KEYS = 512;
/** A value whose text is this long or longer goes to the CSV spool, whose reader is planned for long lines. */
const LARGE_TEXT = 1 << 20;
const CHUNK_ROWS = 2_048;

type ColKind = Exclude<PartKind, "int">;

/** What RowParts.add did with a row. */
export const ADDED = 0;
export const WRITE_FIRST = 1;
export const CSV = 2;

/** One metric key's values in the part being gathered. */
class Column {
  kind: ColKind;
  mask = 0;
  present: Uint8Array;
  nums: Float64Array;
  texts: (string | undefined)[] | null = null;

  constructor(
    readonly position: number,
    kind: ColKind,
    capacity: number,
  ) {
    this.kind = kind;
    this.present = new Uint8Array(capacity);
    this.nums = new Float64Array(kind === "text" ? 0 : capacity);
    if (kind === "text") this.texts = [];
  }

  grow(capacity: number): void {
    const p = new Uint8Array(capacity);
    p.set(this.present);
    this.present = p;
    if (this.kind !== "text") {
      const n = new Float64Array(capacity);
      n.set(this.nums);
      this.nums = n;
    }
  }

  /** Turns the values so far into the texts their CSV fields would hold. */
  toText(rows: number): void {
    const texts: (string | undefined)[] = [];
    for (let r = 0; r < rows; r++) {
      if (this.present[r] === 0) continue;
      const n = this.nums[r]!;
      texts[r] = this.kind === "bool" ? (n === 1 ? "true" : "false") : csvNumber(n);
    }
    this.kind = "text";
    this.texts = texts;
    this.nums = new Float64Array(0);
  }
}

const PART_TYPE: Record<ColKind, DuckDBType> = { double: DOUBLE, bool: BOOLEAN, text: VARCHAR };
const PART_SQL: Record<ColKind, string> = { double: "DOUBLE", bool: "BOOLEAN", text: "VARCHAR" };
const FIXED_TYPES: DuckDBType[] = [VARCHAR, BIGINT, BIGINT, BIGINT, DOUBLE, VARCHAR, VARCHAR];
const FIXED_SQL = `"r" VARCHAR, "s" BIGINT, "ts" BIGINT, "tu" BIGINT, "u" DOUBLE, "w" VARCHAR, "x" VARCHAR`;

/** The rows of one part being gathered, then written. */
export class RowParts {
  private rows = 0;
  private capacity = 256;
  private cells = 0;
  private columns: Column[] = [];
  private byKey = new Map<string, Column>();
  private runIds: string[] = [];
  private steps: number[] = [];
  private seconds: (number | null)[] = [];
  private micros: (number | null)[] = [];
  private runtimes: (number | null)[] = [];
  private wandb: string[] = [];
  private extras: string[] = [];
  /** Scratch: the texts of one row's values (add). */
  private readonly texts: string[] = [];

  constructor(
    private readonly spool: CsvSpool,
    private readonly conn: () => Promise<DuckDBConnection>,
  ) {}

  /**
   * Adds one row to the part and returns ADDED; or, having added nothing, WRITE_FIRST when the part must be written
   * (`flush`) before it can take the row (too many keys together), or CSV when no part takes it (a step that is not
   * a safe integer, a value of LARGE_TEXT or more, more than MAX_KEYS keys): the caller gives it to the CSV spool.
   * When `full`, `flush` is due.
   */
  add(row: HistoryRecord): typeof ADDED | typeof WRITE_FIRST | typeof CSV {
    const metrics = row.metrics;
    if (!Number.isSafeInteger(row.step)) return CSV;
    const t = rowTimestamp(row);
    const w = stringifyWellFormed(row.wandb_metadata);
    const x = stringifyWellFormed(historyExtra(row, t));
    if (w.length >= LARGE_TEXT || x.length >= LARGE_TEXT) return CSV;
    // First pass: the texts of the values that are neither numbers nor booleans (each checked for size), and how
    // many keys the part has not met yet.
    const texts = this.texts;
    texts.length = 0;
    let fresh = 0;
    let keys = 0;
    for (const k in metrics) {
      const v = metrics[k]!;
      keys++;
      if (typeof v !== "number" && typeof v !== "boolean") {
        if (typeof v === "string" && v.length >= LARGE_TEXT) return CSV; // not stringified only to be refused
        const text = metricText(v);
        if (text.length >= LARGE_TEXT) return CSV;
        texts.push(text);
      }
      if (!this.byKey.has(k)) fresh++;
    }
    if (keys > MAX_KEYS) return CSV;
    if (this.byKey.size + fresh > MAX_KEYS) return WRITE_FIRST;
    const r = this.rows;
    if (r === this.capacity) {
      this.capacity *= 2;
      for (const c of this.columns) c.grow(this.capacity);
    }
    this.runIds.push(row.run_id);
    this.steps.push(row.step);
    this.seconds.push(t === null ? null : t.seconds);
    this.micros.push(t === null ? null : t.micros);
    this.runtimes.push(row.runtime === 0 ? 0 : row.runtime); // -0 as the CSV path's "0" reads
    this.wandb.push(w);
    this.extras.push(x);
    let n = 0;
    let nextText = 0;
    for (const k in metrics) {
      const v = metrics[k]!;
      n++;
      let c = this.byKey.get(k);
      const kind: ColKind = typeof v === "number" ? "double" : typeof v === "boolean" ? "bool" : "text";
      if (c === undefined) {
        c = new Column(this.spool.indexOf(k), kind, this.capacity);
        this.byKey.set(k, c);
        this.columns.push(c);
      } else if (c.kind !== kind && c.kind !== "text") c.toText(r);
      c.mask |= KIND_BITS[kindOf(v)];
      c.present[r] = 1;
      if (kind === "text") c.texts![r] = texts[nextText++]!;
      else if (c.kind === "text") c.texts![r] = metricText(v);
      // -0 is an integer to the CSV path (its field "0"), so a part holds 0 too
      else c.nums[r] = typeof v === "number" ? (v === 0 ? 0 : v) : v ? 1 : 0;
    }
    this.rows++;
    this.cells += n + 1;
    return ADDED;
  }

  get full(): boolean {
    return this.rows >= rowPartLimits.rows || this.cells >= rowPartLimits.cells;
  }

  /** Writes the rows gathered so far as a part of the spool (nothing when there are none). */
  async flush(): Promise<void> {
    const rows = this.rows;
    if (rows === 0) return;
    const conn = await this.conn();
    const cols = this.columns;
    const types = [...FIXED_TYPES, ...cols.map((c) => PART_TYPE[c.kind])];
    const table = "row_part";
    await conn.run(
      `CREATE OR REPLACE TEMP TABLE ${table} (${FIXED_SQL}${cols.map((c) => `, "m${c.position}" ${PART_SQL[c.kind]}`).join("")})`,
    );
    const appender = await conn.createAppender(table, "main", "temp");
    const path = tempPathFor(this.spool.finalPath, "spool");
    try {
      for (let off = 0; off < rows; off += CHUNK_ROWS) {
        const n = Math.min(CHUNK_ROWS, rows - off);
        const dc = DuckDBDataChunk.create(types, n);
        const v = types.map((_, i) => dc.getColumnVector(i));
        for (let j = 0; j < n; j++) {
          const r = off + j;
          const s = this.seconds[r]!;
          const us = this.micros[r]!;
          v[0]!.setItem(j, this.runIds[r]!);
          v[1]!.setItem(j, BigInt(this.steps[r]!));
          v[2]!.setItem(j, s === null ? null : BigInt(s));
          v[3]!.setItem(j, us === null ? null : BigInt(us));
          v[4]!.setItem(j, this.runtimes[r]!);
          v[5]!.setItem(j, this.wandb[r]!);
          v[6]!.setItem(j, this.extras[r]!);
        }
        for (let i = 0; i < cols.length; i++) {
          const c = cols[i]!;
          const vec = v[7 + i]!;
          for (let j = 0; j < n; j++) {
            const r = off + j;
            if (c.present[r] === 0) vec.setItem(j, null);
            else if (c.kind === "double") vec.setItem(j, c.nums[r]!);
            else if (c.kind === "bool") vec.setItem(j, c.nums[r] === 1);
            else vec.setItem(j, c.texts![r]!);
          }
        }
        for (const x of v) x.flush();
        appender.appendDataChunk(dc);
      }
      appender.flushSync();
      appender.closeSync();
      await conn.run(
        `COPY ${table} TO ${quoteLiteral(path)} (FORMAT parquet, ${SCRATCH_PARQUET_OPTIONS}, ROW_GROUP_SIZE ${rowGroupSize(types.length)})`,
      );
      await conn.run(`DROP TABLE ${table}`);
      for (const c of cols) this.spool.noteKinds(c.position, c.mask);
      await this.spool.addPart(path, rows, new Map(cols.map((c) => [c.position, c.kind])));
    } catch (e) {
      try {
        appender.closeSync();
      } catch {
        // already closed, or the first error is the one to report
      }
      await unlinkIfExists(path);
      throw e;
    }
    this.reset();
  }

  private reset(): void {
    this.rows = 0;
    this.capacity = 256;
    this.cells = 0;
    this.columns = [];
    this.byKey = new Map();
    this.runIds = [];
    this.steps = [];
    this.seconds = [];
    this.micros = [];
    this.runtimes = [];
    this.wandb = [];
    this.extras = [];
  }
}

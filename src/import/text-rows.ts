/**
 * The text-row path of `dr-wandb import` (archives with writeRunStreamed: DuckDB). A history record whose row is
 * plain (every item one top-level key, each key once, `_step` an item, no other `_` key than `_step`, `_runtime`,
 * `_timestamp`, no integer-like key, a step above every step read so far) is written as one line of a text row file
 * (TextRowsFile, src/archive/archive.ts) instead of a HistoryRecord object: step, microseconds, runtime, the JSON of
 * the values that are not numbers, then one field per number, built from each item's `value_json` text. Any other
 * row takes the object path (RunLog.add), after the text rows. The stored result is the same as the object path's
 * (history-split.ts):
 *   - a value that parses to a JS number (NaN, ±Infinity and -0 included) is a number field, under the file's key
 *     list (TextRowsFile.keys, keys in the order the file first has them): its own `value_json` text where that
 *     text is JS's own for the number (canonicalKind), else numberText of the parsed number; DuckDB reads the same
 *     double from either;
 *   - the rest's JSON is what the object path writes for the other values: keys in item order (integer-like keys,
 *     which a JS object would list first, take the object path), each value either its own `value_json` text where
 *     that text is already what stringifyStrict writes (canonicalKind: true, false, null), or
 *     stringifyStrict(itemValue(item)); the kinds bits are kindOf's of the same values;
 *   - `_timestamp`/`_runtime` as asNumber(itemValue(item)), the step as normaliseStep(itemValue(item));
 *   - a text row's step is above every step read before it, so it is the first row of its step; every later row of
 *     that step (an object row) is written after it and overwrites it, as the object path's later row does.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TextRowsFile } from "../archive/index.js";
import { KIND_BITS, kindOf } from "../model/flatten.js";
import { stringifyStrict } from "../model/json.js";
import { asNumber, normaliseStep } from "../model/records.js";
import type { PbHistoryItem } from "./proto.js";
import type { RunLog } from "./run-log.js";
import { canonicalKind, isIndexKey, microsText, numberText } from "./value-text.js";
import { itemValue } from "./values.js";

const METRIC = 0;
const STEP = 1;
const RUNTIME = 2;
const TIMESTAMP = 3;
/** A key whose row takes the object path (`_wandb`, other `_` keys, integer-like keys, `__proto__`). */
const OTHER = 4;

interface KeyInfo {
  key: string;
  role: number;
  /** `"key":` */
  prefix: string;
  /** The row that last had this key (duplicates take the object path). */
  stamp: number;
  /** Kinds bits over the current file's rows. */
  mask: number;
  /** Index of this key's number field in the current file, or -1 (TextRowsFile.keys). */
  col: number;
}

const BIT_INT = KIND_BITS.int;
const BIT_FLOAT = KIND_BITS.float;

/** A metrics JSON text longer than this takes the object path (the reader's line limit: 2 MiB of UTF-8). */
const MAX_BODY = 600_000;
/**
 * Number fields of one file at most: a row that would make more takes the object path. DuckDB's CSV reader holds a
 * chunk per column: 1,000 of them ran out of the 64 MiB write budget; rows as objects need no column per key.
 */
const MAX_FIELDS = 256;

/** Text row files of one run, made in `dir` (which the caller removes). */
export class TextRows {
  private readonly keys = new Map<string, KeyInfo>();
  private stamp = 0;
  private buf = Buffer.allocUnsafe(8 * 2 ** 20);
  private used = 0;
  private count = 0;
  private minStep = 0;
  private maxStep = 0;
  private files = 0;
  private readonly rowInfos: KeyInfo[] = [];
  private readonly rowBits: number[] = [];
  /** Number values of the row being added: their keys and texts. */
  private readonly numInfos: KeyInfo[] = [];
  private readonly numTexts: string[] = [];
  /** Keys of the current file's number fields (TextRowsFile.keys). */
  private fileKeys: KeyInfo[] = [];
  /** Rows written as text (all files). */
  rows = 0;

  constructor(
    private readonly dir: string,
    private readonly fileRows = 20_000,
  ) {}

  private keyInfo(key: string): KeyInfo {
    let role = METRIC;
    if (key === "_step") role = STEP;
    else if (key === "_runtime") role = RUNTIME;
    else if (key === "_timestamp") role = TIMESTAMP;
    else if (key.startsWith("_") || key === "__proto__" || isIndexKey(key)) role = OTHER;
    const prefix = `${JSON.stringify(key)}:`;
    if (prefix.includes("\\ud")) role = OTHER; // a lone surrogate (see add)
    const info: KeyInfo = { key, role, prefix, stamp: 0, mask: 0, col: -1 };
    this.keys.set(key, info);
    return info;
  }

  /**
   * Adds one history record's row as text, updating `log` as RunLog.add would (rows, highest step, last time).
   * Returns false, having changed nothing, when the row must take the object path. Throws what itemValue throws.
   */
  add(items: PbHistoryItem[], log: RunLog): boolean {
    const stamp = ++this.stamp;
    let stepItem: PbHistoryItem | undefined;
    let runtimeItem: PbHistoryItem | undefined;
    let timeItem: PbHistoryItem | undefined;
    let body = "";
    let count = 0;
    let nums = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const nested = item.nestedKey;
      let key: string;
      if (nested !== undefined && nested.length > 0) {
        if (nested.length > 1) return false;
        key = nested[0]!;
      } else key = item.key ?? "";
      const info = this.keys.get(key) ?? this.keyInfo(key);
      if (info.stamp === stamp) return false;
      info.stamp = stamp;
      switch (info.role) {
        case METRIC: {
          const s = item.value === undefined ? item.valueJson : undefined;
          let bit = s === undefined || s === "" ? 0 : canonicalKind(s);
          let text: string | null = null;
          // numbers are fields of their own (vals), other values go to the rest's JSON
          let isNumber = bit === BIT_INT || bit === BIT_FLOAT;
          if (bit !== 0) text = s!;
          else if (s !== undefined && (s.length < 16 || s.includes(".") || s.includes("e") || s.includes("E"))) {
            // a number's text that is not JS's own (e.g. Python's 17 digits, "1e-05", "2.0"): parseValueJson's
            // number branch, then its text (numberText keeps -0)
            const c = s.charCodeAt(0);
            if ((c >= 48 && c <= 57) || c === 45) {
              const n = Number(s);
              if (Number.isFinite(n)) {
                text = numberText(n);
                bit = Number.isSafeInteger(n) ? BIT_INT : BIT_FLOAT;
                isNumber = true;
              }
            }
          }
          if (text === null) {
            const v = itemValue(item);
            bit = KIND_BITS[kindOf(v)];
            if (typeof v === "number") {
              text = numberText(v);
              isNumber = true;
            } else {
              text = stringifyStrict(v);
              // a lone surrogate (JSON.stringify writes it as \udXXX): DuckDB's JSON cast refuses it, its Appender not
              if (text.includes("\\ud")) return false;
            }
          }
          if (isNumber) {
            this.numInfos[nums] = info;
            this.numTexts[nums] = text;
            nums++;
          } else body += body.length === 0 ? info.prefix + text : `,${info.prefix}${text}`;
          this.rowInfos[count] = info;
          this.rowBits[count] = bit;
          count++;
          break;
        }
        case STEP:
          stepItem = item;
          break;
        case RUNTIME:
          runtimeItem = item;
          break;
        case TIMESTAMP:
          timeItem = item;
          break;
        default:
          return false;
      }
    }
    if (stepItem === undefined || body.length > MAX_BODY) return false;
    let added = 0;
    for (let i = 0; i < nums; i++) if (this.numInfos[i]!.col < 0) added++;
    if (this.fileKeys.length + added > MAX_FIELDS) return false;
    const step = normaliseStep(itemValue(stepItem));
    if (step === null || !Number.isSafeInteger(step) || step <= log.maxStep) return false;
    const time = timeItem === undefined ? null : asNumber(itemValue(timeItem));
    const runtime = runtimeItem === undefined ? null : asNumber(itemValue(runtimeItem));
    log.historyRows++;
    log.maxStep = step;
    if (time !== null) log.seen(time);
    if (step < log.fromStep) return true;
    for (let i = 0; i < count; i++) this.rowInfos[i]!.mask |= this.rowBits[i]!;
    let fields = "";
    if (nums > 0) {
      let width = 0;
      for (let i = 0; i < nums; i++) {
        const info = this.numInfos[i]!;
        if (info.col < 0) {
          info.col = this.fileKeys.length;
          this.fileKeys.push(info);
        }
        if (info.col + 1 > width) width = info.col + 1;
      }
      const cells: string[] = new Array(width).fill("\\N");
      for (let i = 0; i < nums; i++) cells[this.numInfos[i]!.col] = this.numTexts[i]!;
      fields = `\t${cells.join("\t")}`;
    }
    const rest = body.length === 0 ? "\\N" : `{${body}}`;
    const line = `${step}\t${microsText(time)}\t${numberText(runtime)}\t${rest}${fields}\n`;
    if (this.count === 0) this.minStep = step;
    this.maxStep = step;
    // into an off-heap buffer at once: held strings would outlive the young generation (old-space GC)
    if (this.used + line.length * 3 > this.buf.length) this.grow(line.length * 3);
    this.used += this.buf.write(line, this.used, "utf8");
    this.count++;
    this.rows++;
    return true;
  }

  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + need));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }

  /** True when the rows held should go to a file now. */
  get full(): boolean {
    return this.count >= this.fileRows || this.used >= 32_000_000;
  }

  /** Writes the rows held to a file (empty when none). */
  take(): TextRowsFile {
    const path = join(this.dir, `rows-${this.files++}.tsv`);
    writeFileSync(path, this.buf.subarray(0, this.used));
    const kinds = new Map<string, number>();
    for (const [k, info] of this.keys) {
      if (info.mask !== 0) {
        kinds.set(k, info.mask);
        info.mask = 0;
      }
    }
    const keys = this.fileKeys.map((info) => {
      info.col = -1;
      return info.key;
    });
    this.fileKeys = [];
    const file = { path, rows: this.count, minStep: this.minStep, maxStep: this.maxStep, keys, kinds };
    this.used = 0;
    this.count = 0;
    return file;
  }
}

/**
 * Large arrays of strings left in an answer's bytes until they are read. A HistoryPage answer is one `history` array
 * of row texts (JSON strings holding JSON): parsed whole, a 25 MB answer is its bytes, its text and every row's text
 * at once (~3x its size) for the moment its rows start to be decoded. liftStringArrays finds the arrays under a given
 * key in the bytes, so that only the rest (a few hundred bytes) is parsed as JSON; the rows are then parsed from the
 * bytes a block at a time (LazyLines.take) as they are decoded, and the bytes are dropped once the last is read.
 *
 * What is lifted is checked as it is found to be what JSON.parse would accept (strings with valid escapes and no raw
 * control characters, separated by commas): anything else, and the whole answer is parsed as before, so that a
 * malformed answer fails (and is retried) exactly as it did.
 */
import { randomUUID } from "node:crypto";
import type { JsonValue } from "../model/json.js";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN = 0x5b;
const CLOSE = 0x5d;

let created = 0;

/** How many arrays this process has left in answers' bytes (for tests: that a path really took them). */
export function lazyLinesCreated(): number {
  return created;
}

/** An array of strings kept as byte ranges of the answer: `length` elements, read with take(). */
export class LazyLines {
  private buf: Buffer;
  /** Byte offsets of each element's opening quote and one past its closing quote. */
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;

  constructor(buf: Buffer, starts: Float64Array, ends: Float64Array) {
    this.buf = buf;
    this.starts = starts;
    this.ends = ends;
    created++;
  }

  get length(): number {
    return this.starts.length;
  }

  /** Elements [from, to) as strings (one JSON.parse of their bytes). */
  take(from: number, to: number): string[] {
    const end = Math.min(to, this.starts.length);
    if (from >= end) return [];
    if (this.buf.length === 0) throw new Error("the answer's lines were already released");
    const text = this.buf.toString("utf8", this.starts[from], this.ends[end - 1]);
    return JSON.parse(`[${text}]`) as string[];
  }

  /** Drops the answer's bytes (every element read). */
  release(): void {
    this.buf = Buffer.alloc(0);
  }
}

/** An answer with its large string arrays lifted out: `skeleton` is the rest as JSON text, to be parsed and restored. */
export interface Lifted {
  skeleton: string;
  /** Puts the arrays back into the parsed skeleton (in place where it can; returns the value to use). */
  restore(value: JsonValue): JsonValue;
  arrays: LazyLines[];
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * The end (one past the closing quote) of the JSON string whose opening quote is at `i`, or -1 when it is not one
 * JSON.parse accepts (cut short, a raw control character, an unknown escape).
 */
function stringEnd(buf: Buffer, i: number): number {
  const n = buf.length;
  for (let j = i + 1; j < n; j++) {
    const c = buf[j]!;
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      const e = buf[j + 1];
      if (e === 0x75) {
        // \uXXXX
        if (j + 5 >= n || !isHex(buf[j + 2]!) || !isHex(buf[j + 3]!) || !isHex(buf[j + 4]!) || !isHex(buf[j + 5]!)) {
          return -1;
        }
        j += 5;
      } else if (
        e === QUOTE ||
        e === BACKSLASH ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        j++;
      } else return -1;
    }
  }
  return -1;
}

/** The array of strings whose `[` is at `i`: its elements' ranges and its end, or null when it is anything else. */
function stringArray(buf: Buffer, i: number): { starts: number[]; ends: number[]; end: number } | null {
  const n = buf.length;
  const starts: number[] = [];
  const ends: number[] = [];
  let j = i + 1;
  while (j < n && isSpace(buf[j]!)) j++;
  if (buf[j] === CLOSE) return { starts, ends, end: j + 1 };
  while (j < n) {
    if (buf[j] !== QUOTE) return null;
    const e = stringEnd(buf, j);
    if (e < 0) return null;
    starts.push(j);
    ends.push(e);
    j = e;
    while (j < n && isSpace(buf[j]!)) j++;
    if (buf[j] === CLOSE) return { starts, ends, end: j + 1 };
    if (buf[j] !== COMMA) return null;
    j++;
    while (j < n && isSpace(buf[j]!)) j++;
  }
  return null;
}

/**
 * Lifts every array of strings that is the value of `key` (an object member's name, anywhere in the answer) and
 * holds at least `minBytes`; null when there is none, or when the bytes are not well-formed enough to tell (the
 * caller then parses the answer whole).
 */
export function liftStringArrays(buf: Buffer, key: string, minBytes: number): Lifted | null {
  const name = Buffer.from(JSON.stringify(key));
  const n = buf.length;
  const found: { at: number; end: number; starts: number[]; ends: number[] }[] = [];
  // The last string token outside lifted arrays, and whether a ':' followed it (it was a member's name).
  let lastStart = -1;
  let lastEnd = -1;
  let afterName = false;
  for (let i = 0; i < n; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      const e = stringEnd(buf, i);
      if (e < 0) return null;
      lastStart = i;
      lastEnd = e;
      afterName = false;
      i = e - 1;
    } else if (c === COLON) {
      afterName = lastEnd >= 0;
    } else if (c === OPEN) {
      if (
        afterName &&
        lastEnd - lastStart === name.length &&
        buf.compare(name, 0, name.length, lastStart, lastEnd) === 0
      ) {
        const arr = stringArray(buf, i);
        if (arr !== null && arr.end - i >= minBytes) {
          found.push({ at: i, ...arr });
          i = arr.end - 1;
        }
      }
      afterName = false;
    } else if (!isSpace(c)) afterName = false;
  }
  if (found.length === 0) return null;
  const marker = `\u0000dr-wandb-lines:${randomUUID()}:`;
  const pieces: string[] = [];
  let from = 0;
  const arrays: LazyLines[] = [];
  for (const [k, f] of found.entries()) {
    pieces.push(buf.toString("utf8", from, f.at), JSON.stringify(`${marker}${k}`));
    arrays.push(new LazyLines(buf, Float64Array.from(f.starts), Float64Array.from(f.ends)));
    from = f.end;
  }
  pieces.push(buf.toString("utf8", from, n));
  const restore = (v: JsonValue): JsonValue => {
    if (typeof v === "string") {
      if (!v.startsWith(marker)) return v;
      return arrays[Number(v.slice(marker.length))] as unknown as JsonValue;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = restore(v[i]!);
    } else if (v !== null && typeof v === "object" && !(v instanceof LazyLines)) {
      const o = v as Record<string, JsonValue>;
      for (const k of Object.keys(o)) o[k] = restore(o[k]!);
    }
    return v;
  };
  return { skeleton: pieces.join(""), restore, arrays };
}

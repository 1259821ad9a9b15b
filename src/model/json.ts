/**
 * JSON values as dr-wandb keeps them, and the two text encodings it speaks.
 *
 * - W&B encoding (what the server sends inside history/events strings): JSON plus the bare tokens `NaN`,
 *   `Infinity` and `-Infinity`. {@link parseWandbJson} reads it; integers beyond 2^53 come back as `bigint` so that
 *   no digit is lost.
 * - Strict encoding (what dr-wandb writes to JSON/JSONB columns and JSONL files): standard JSON in which a
 *   non-finite float is written as the string "NaN", "Infinity" or "-Infinity" (PostgreSQL's float8 and DuckDB's
 *   DOUBLE both cast those strings back), and a bigint as its exact integer literal. {@link stringifyStrict}.
 */

import type { JsonObject, JsonValue } from "./json-value.js";

export { stringifyStrict, stringifyWandb, stringifyWellFormed } from "./json-stringify.js";
export type { JsonObject, JsonValue } from "./json-value.js";

export class JsonSyntaxError extends Error {
  override name = "JsonSyntaxError";
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * True if `text` may hold an integer token of 16+ digits outside a string (one a double may not hold exactly): a run of
 * 16+ digits that is neither a fraction's nor an exponent's and is not followed by one. Long digit runs inside strings
 * are common (a GraphQL page holds each run's summary and each history row as an escaped JSON string, full of
 * 17-digit floats) and do not count. One forward pass: strings are skipped with indexOf to their closing quote.
 */
export function hasLongIntegerToken(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return false; // unterminated: not JSON, and JSON.parse says so
        let b = j - 1;
        while (text.charCodeAt(b) === 92) b--;
        if ((j - 1 - b) % 2 === 0) break; // an even number of backslashes: this quote ends the string
        j++;
      }
      i = j + 1;
    } else if (isDigit(c)) {
      let j = i + 1;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      if (j - i >= 16) {
        // The character before the run ('.' fraction, 'e'/'E' exponent; a sign counts as 'e' after an exponent mark).
        let p = i > 0 ? text.charCodeAt(i - 1) : 0;
        if ((p === 43 || p === 45) && i > 1)
          p = text.charCodeAt(i - 2) === 101 || text.charCodeAt(i - 2) === 69 ? 101 : 0;
        const next = j < n ? text.charCodeAt(j) : 0;
        const fractionOrExponent = p === 46 || p === 101 || p === 69 || next === 46 || next === 101 || next === 69;
        if (!fractionOrExponent) return true;
      }
      i = j;
    } else i++;
  }
  return false;
}

/** Parses W&B JSON: standard JSON plus NaN/Infinity/-Infinity tokens; unsafe integers become bigint. */
export function parseWandbJson(text: string): JsonValue {
  // Native JSON.parse whenever it is lossless: no long integer token; bare NaN/Infinity tokens make it throw.
  if (!hasLongIntegerToken(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      // fall through to the tolerant parser, which gives a positioned error
    }
  }
  return new TolerantParser(text).parseDocument();
}

/** Like {@link parseWandbJson}, but a JSON string that does not parse is returned as the string itself. */
export function parseJsonStringField(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") return value as JsonValue;
  try {
    return parseWandbJson(value);
  } catch {
    return value;
  }
}

class TolerantParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parseDocument(): JsonValue {
    this.ws();
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) throw new JsonSyntaxError("unexpected trailing text", this.i);
    return v;
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.i++;
      else break;
    }
  }

  private value(): JsonValue {
    const s = this.s;
    const c = s[this.i];
    switch (c) {
      case "{":
        return this.object();
      case "[":
        return this.array();
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      case "N":
        return this.literal("NaN", Number.NaN);
      case "I":
        return this.literal("Infinity", Number.POSITIVE_INFINITY);
      default:
        if (c === "-" && s.startsWith("-Infinity", this.i)) return this.literal("-Infinity", Number.NEGATIVE_INFINITY);
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
        throw new JsonSyntaxError(c === undefined ? "unexpected end of text" : `unexpected character '${c}'`, this.i);
    }
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) throw new JsonSyntaxError(`expected '${word}'`, this.i);
    this.i += word.length;
    return v;
  }

  private number(): number | bigint {
    const s = this.s;
    const start = this.i;
    if (s[this.i] === "-") this.i++;
    let isInt = true;
    while (this.i < s.length) {
      const ch = s[this.i]!;
      if (ch >= "0" && ch <= "9") this.i++;
      else if (ch === "." || ch === "e" || ch === "E" || ch === "+" || ch === "-") {
        isInt = false;
        this.i++;
      } else break;
    }
    const text = s.slice(start, this.i);
    const n = Number(text);
    if (text === "-" || Number.isNaN(n)) throw new JsonSyntaxError(`bad number '${text}'`, start);
    if (isInt && !Number.isSafeInteger(n)) return BigInt(text);
    return n;
  }

  private string(): string {
    const s = this.s;
    const start = this.i;
    // Find the closing quote, then let JSON.parse handle escapes exactly.
    let j = this.i + 1;
    while (j < s.length) {
      const ch = s.charCodeAt(j);
      if (ch === 92) j += 2;
      else if (ch === 34) break;
      else j++;
    }
    if (j >= s.length) throw new JsonSyntaxError("unterminated string", start);
    this.i = j + 1;
    const raw = s.slice(start, this.i);
    try {
      return JSON.parse(raw) as string;
    } catch {
      // W&B tolerates raw control characters (Python strict=False); escape them and retry.
      const fixed = raw.replace(/[\u0000-\u001f]/g, (m) => `\\u${m.charCodeAt(0).toString(16).padStart(4, "0")}`);
      try {
        return JSON.parse(fixed) as string;
      } catch {
        throw new JsonSyntaxError("bad string", start);
      }
    }
  }

  private array(): JsonValue[] {
    this.i++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value());
      this.ws();
      const c = this.s[this.i];
      if (c === ",") this.i++;
      else if (c === "]") {
        this.i++;
        return out;
      } else throw new JsonSyntaxError("expected ',' or ']'", this.i);
    }
  }

  private object(): JsonObject {
    this.i++;
    const out: JsonObject = {};
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') throw new JsonSyntaxError("expected a key", this.i);
      const k = this.string();
      this.ws();
      if (this.s[this.i] !== ":") throw new JsonSyntaxError("expected ':'", this.i);
      this.i++;
      this.ws();
      // defineProperty-free assignment is safe: "__proto__" as a key must stay data, so use a guard.
      const v = this.value();
      if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true });
      else out[k] = v;
      this.ws();
      const c = this.s[this.i];
      if (c === ",") this.i++;
      else if (c === "}") {
        this.i++;
        return out;
      } else throw new JsonSyntaxError("expected ',' or '}'", this.i);
    }
  }
}

/** True if the value is a plain JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Numeric equality that treats NaN as equal to NaN and a bigint as equal to the same integer as a number. */
export function jsonEquals(a: JsonValue, b: JsonValue): boolean {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) || a === b;
  if (typeof a === "bigint" || typeof b === "bigint") {
    if ((typeof a === "bigint" || typeof a === "number") && (typeof b === "bigint" || typeof b === "number")) {
      try {
        return BigInt(a) === BigInt(b);
      } catch {
        return false;
      }
    }
    return false;
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]!));
  if (isJsonObject(a)) {
    if (!isJsonObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => k in b && jsonEquals(a[k]!, b[k]!));
  }
  return a === b;
}

const NON_FINITE: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  "-Infinity": Number.NEGATIVE_INFINITY,
};

/**
 * Reads strict JSON as dr-wandb writes it (the archive's JSON columns, JSONL files): the strings "NaN",
 * "Infinity" and "-Infinity" become the numbers again, and big integers come back as bigint.
 * (A metric whose value was literally one of those three strings reads back as the number.)
 */
export function parseStrictJson(text: string): JsonValue {
  return decodeNonFinite(parseWandbJson(text));
}

/** Turns the strings "NaN"/"Infinity"/"-Infinity" anywhere inside a value back into numbers. */
export function decodeNonFinite(v: JsonValue): JsonValue {
  if (typeof v === "string") return v in NON_FINITE ? NON_FINITE[v]! : v;
  if (Array.isArray(v)) return v.map(decodeNonFinite);
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) {
      const x = decodeNonFinite(v[k]!);
      if (k === "__proto__") Object.defineProperty(out, k, { value: x, enumerable: true, writable: true });
      else out[k] = x;
    }
    return out;
  }
  return v;
}

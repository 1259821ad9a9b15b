/**
 * The texts of the import's text row files (src/import/text-rows.ts): which `value_json` texts can be copied as they
 * are (canonicalKind), numbers and times as the row's fields, and the keys a JS object would list first.
 */
import { KIND_BITS } from "../model/flatten.js";

const BIT_NULL = KIND_BITS.null;
const BIT_BOOL = KIND_BITS.bool;
const BIT_INT = KIND_BITS.int;
const BIT_FLOAT = KIND_BITS.float;

/**
 * The kinds bit of a `value_json` text that is exactly what stringifyStrict(parseValueJson(text)) writes, else 0:
 * true/false/null, an integer of at most 15 digits (not -0), or a decimal of at most 15 significant digits with a
 * fraction not ending in 0, no exponent, and a magnitude of at least 1e-6 (below it JS writes an exponent). Such a
 * decimal is the shortest text of its double (two decimals of at most 15 digits never share a double), which is
 * what String(n) gives.
 */
export function canonicalKind(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  let i = 0;
  let c = s.charCodeAt(0);
  if (c === 45) {
    if (n === 1) return 0;
    i = 1;
    c = s.charCodeAt(1);
  }
  if (c < 48 || c > 57) {
    if (i === 0) {
      if (s === "true" || s === "false") return BIT_BOOL;
      if (s === "null") return BIT_NULL;
    }
    return 0;
  }
  if (c === 48) {
    if (i + 1 === n) return i === 0 ? BIT_INT : 0; // "0"; "-0" is written "0"
    if (s.charCodeAt(i + 1) !== 46) return 0;
    let j = i + 2;
    let zeros = 0;
    while (j < n && s.charCodeAt(j) === 48) {
      zeros++;
      j++;
    }
    if (j === n || zeros > 5) return 0;
    const sig = n - j;
    if (sig > 15 || s.charCodeAt(n - 1) === 48) return 0;
    for (; j < n; j++) {
      c = s.charCodeAt(j);
      if (c < 48 || c > 57) return 0;
    }
    return BIT_FLOAT;
  }
  let digits = 0;
  let dot = -1;
  for (let j = i; j < n; j++) {
    c = s.charCodeAt(j);
    if (c === 46) {
      if (dot >= 0) return 0;
      dot = j;
    } else if (c < 48 || c > 57) return 0;
    else digits++;
  }
  if (digits > 15) return 0;
  if (dot < 0) return BIT_INT;
  if (dot === n - 1 || s.charCodeAt(n - 1) === 48) return 0;
  return BIT_FLOAT;
}

export function isIndexKey(k: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(k) && Number(k) <= 4294967294;
}

export function numberText(n: number | null): string {
  if (n === null) return "\\N";
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "Infinity";
  if (n === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (Object.is(n, -0)) return "-0";
  return String(n);
}

const MAX_UNIX_SECONDS = 253402300799; // as unixToMicros (src/archive/values.ts)

export function microsText(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec) || Math.abs(sec) > MAX_UNIX_SECONDS) return "\\N";
  const micros = Math.round(sec * 1e6);
  return Number.isSafeInteger(micros) ? String(micros) : BigInt(micros).toString();
}

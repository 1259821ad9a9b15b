/**
 * The two text encodings of JSON values (src/model/json.ts): strict JSON (stringifyStrict: what dr-wandb writes to
 * JSON/JSONB columns and JSONL files) and W&B's (stringifyWandb: bare NaN/Infinity tokens). Both write a bigint as
 * its exact digits. A value, or a member of one, without a non-finite number or a bigint is written by V8's
 * JSON.stringify (the same text, much faster); the rest value by value.
 */
import type { JsonValue } from "./json-value.js";

function nonFinite(n: number): string {
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/** JSON-quoted keys, cached (the same metric keys come back on every row). */
const quotedKeys = new Map<string, string>();

function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size >= 65536) quotedKeys.clear();
    quotedKeys.set(k, q);
  }
  return q;
}

function stringifyWith(v: JsonValue, nf: (n: number) => string): string {
  switch (typeof v) {
    case "number":
      return Number.isFinite(v) ? String(v) : nf(v);
    case "bigint":
      return v.toString();
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) return `[${v.map((x) => stringifyMember(x, nf)).join(",")}]`;
      let out = "{";
      for (const k of Object.keys(v)) {
        const x = v[k];
        if (x === undefined) continue;
        // Flat values (the common case: metrics) are written inline, without a call per value.
        let t: string;
        if (typeof x === "number") t = Number.isFinite(x) ? String(x) : nf(x);
        else if (typeof x === "string") t = JSON.stringify(x);
        else t = stringifyMember(x, nf);
        out += out.length === 1 ? `${quotedKey(k)}:${t}` : `,${quotedKey(k)}:${t}`;
      }
      return `${out}}`;
    }
    default:
      return "null";
  }
}

/**
 * True if `v` holds neither a non-finite number nor a bigint: then JSON.stringify writes exactly what stringifyWith
 * would (the same key order, string escapes and number texts, -0 as "0", undefined members left out), and much
 * faster (S1's 10,000 runs: 1.9 of 11 CPU-s went to stringifyWith). Walks the value without building anything.
 */
function plainJson(v: JsonValue): boolean {
  switch (typeof v) {
    case "number":
      return Number.isFinite(v);
    case "bigint":
      return false;
    case "object": {
      if (v === null) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          // JSON.stringify writes a hole or undefined in an array as null, as stringifyWith does
          if (x !== undefined && !plainJson(x)) return false;
        }
        return true;
      }
      for (const k of Object.keys(v)) {
        const x = v[k];
        if (typeof x === "number") {
          if (!Number.isFinite(x)) return false;
        } else if (typeof x === "object" || typeof x === "bigint") {
          if (x !== null && !plainJson(x)) return false;
        }
      }
      return true;
    }
    default:
      return true;
  }
}

/** A value, or a member of one: native JSON.stringify when it is plain, else value by value. */
function stringifyMember(x: JsonValue, nf: (n: number) => string): string {
  if (typeof x === "object" && x !== null && plainJson(x)) return JSON.stringify(x);
  return stringifyWith(x, nf);
}

const strictNonFinite = (n: number): string => `"${nonFinite(n)}"`;

/** Strict JSON: NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity", bigints as exact integers. */
export function stringifyStrict(v: JsonValue): string {
  return stringifyMember(v, strictNonFinite);
}

/** W&B/Python-style JSON: NaN/±Infinity as bare tokens, bigints as exact integers. */
export function stringifyWandb(v: JsonValue): string {
  return stringifyMember(v, nonFinite);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `v` with every lone surrogate, in strings and keys, replaced by U+FFFD. */
function wellFormed(v: JsonValue): JsonValue {
  if (typeof v === "string") return v.replace(LONE_SURROGATE, "\ufffd");
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(wellFormed);
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(v)) {
    const x = v[k];
    // defineProperty: a "__proto__" key stays a key
    if (x !== undefined)
      Object.defineProperty(out, wellFormed(k) as string, { value: wellFormed(x), enumerable: true, writable: true });
  }
  return out;
}

/**
 * Strict JSON text (stringifyStrict) that DuckDB's JSON type and PostgreSQL's JSONB accept: a lone UTF-16 surrogate
 * (a JavaScript string, and W&B's JSON, can hold one; UTF-8 cannot, and both databases refuse its \udXXX escape)
 * becomes U+FFFD, as in any UTF-8 text. Everything else is kept exactly.
 */
export function stringifyWellFormed(v: JsonValue): string {
  const s = stringifyStrict(v);
  // JSON.stringify writes a lone surrogate as a lowercase \udXXX escape, and a pair as the characters themselves
  return s.includes("\\ud") ? stringifyStrict(wellFormed(v)) : s;
}

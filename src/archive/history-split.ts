/**
 * History rows as the archive stores them (history_rows, schema.ts migration 3): every metric whose value is a JS
 * number (integers, floats, NaN, ±Infinity, -0) in `vals`, a list of doubles named by a keyset (the list of keys
 * its positions stand for, table history_keysets), and every other value (strings, booleans, null, bigints, nested
 * and media objects) in `rest`, the strict JSON text of those keys (stringifyWellFormed), NULL when there are none.
 * A NULL (or missing) position in vals is a key the row does not have. Both backends write this; the DuckDB
 * columnar ingest builds the same split in SQL (parquet-sql.ts).
 */
import { stringifyWellFormed } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { jsonText, unixToMicros } from "./values.js";

/** One row of a split chunk: vals[i] is the value of the chunk's keys[i] (null or a hole: not in this row). */
export interface SplitRow {
  step: number;
  /** `_timestamp` as integer microseconds since the epoch, or null. */
  micros: number | null;
  runtime: number | null;
  wandbMetadata: string;
  extra: string;
  vals: (number | null)[];
  /** Strict JSON of the keys not in vals, or null when every metric is in vals. */
  rest: string | null;
}

/** Rows of one chunk and the keyset their vals follow (numeric keys in the order the rows first had them). */
export interface SplitChunk {
  keys: string[];
  rows: SplitRow[];
}

/**
 * True for a key whose numbers can go to vals: its text must survive a text column unchanged (well-formed UTF-16:
 * a lone surrogate would be replaced) and, in PostgreSQL, hold no U+0000 (`allowNul` false); other keys keep their
 * values in rest, whose JSON escapes them.
 */
export function typedKey(key: string, allowNul: boolean): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0 && !allowNul) return false;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = key.charCodeAt(i + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    }
  }
  return true;
}

/** `"key":` of a key, cached (the same keys come back on every row). */
const prefixes = new Map<string, string>();
function prefix(key: string): string {
  let p = prefixes.get(key);
  if (p === undefined) {
    p = `${stringifyWellFormed(key)}:`; // a lone surrogate becomes U+FFFD: DuckDB's JSON refuses its escape
    if (prefixes.size >= 65_536) prefixes.clear();
    prefixes.set(key, p);
  }
  return p;
}

/**
 * Splits rows into a chunk: numbers of typed keys to vals, the rest to strict JSON text. `json` turns a stored JSON
 * text into what the backend writes (PostgreSQL replaces U+0000). Rows are taken as they are (steps untouched).
 */
export function splitRows(
  rows: readonly HistoryRecord[],
  opts: { allowNul: boolean; json?: (text: string) => string },
): SplitChunk {
  const index = new Map<string, number>();
  const keys: string[] = [];
  const typed = new Map<string, boolean>();
  const json = opts.json ?? ((t: string) => t);
  const out: SplitRow[] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const metrics = row.metrics ?? {};
    const vals: (number | null)[] = [];
    let rest = "";
    for (const k of Object.keys(metrics)) {
      const v = metrics[k];
      if (v === undefined) continue;
      if (typeof v === "number") {
        let ok = typed.get(k);
        if (ok === undefined) {
          ok = typedKey(k, opts.allowNul);
          typed.set(k, ok);
        }
        if (ok) {
          let i = index.get(k);
          if (i === undefined) {
            i = keys.length;
            keys.push(k);
            index.set(k, i);
          }
          while (vals.length < i) vals.push(null);
          vals[i] = v;
          continue;
        }
      }
      const t = stringifyWellFormed(v);
      rest += rest.length === 0 ? `{${prefix(k)}${t}` : `,${prefix(k)}${t}`;
    }
    out[r] = {
      step: Math.trunc(row.step),
      micros: unixToMicros(row.timestamp),
      runtime: row.runtime === null || row.runtime === undefined ? null : Number(row.runtime),
      wandbMetadata: json(jsonText(row.wandb_metadata)),
      extra: json(jsonText(row.extra)),
      vals,
      rest: rest.length === 0 ? null : json(`${rest}}`),
    };
  }
  return { keys, rows: out };
}

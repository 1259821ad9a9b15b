/**
 * The SQL text of the columnar ingest (parquet-ingest.ts): for one W&B parquet export's columns, the expressions that
 * build each row's stored JSON text (metrics, extra, wandb_metadata), its timestamp and runtime, and each metric key's
 * kind bit, exactly as the row path would store them (the rules are listed in parquet-ingest.ts).
 */
import { type DuckDBType, DuckDBTypeId } from "@duckdb/node-api";
import { quoteIdent, quoteLiteral } from "./flatten.js";
import { isIntegerType, type ParquetColumn } from "./parquet-reader.js";
import { doubleSql, stringSql } from "./sql-json.js";

/**
 * The SQL expressions of one file's history columns as history_rows stores them (history-split.ts): the metric
 * columns whose values are numbers go to vals (`typed`, in JS key order: the keyset), the others to `rest`; and
 * each metric key's kinds bit.
 */
export interface FilePlan {
  timestamp: string;
  runtime: string;
  wandbMetadata: string;
  extra: string;
  /** Keys stored in vals, each with the DOUBLE expression of its value (NULL where the value is not a number). */
  typed: [key: string, expr: string][];
  /** The JSON text of the other keys' values, NULL when a row has none. */
  rest: string;
  kinds: [key: string, expr: string][];
}

export const INT_TYPES = new Set(["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"]);
const MAX_SAFE = "9007199254740991";
const INT_LITERAL = "'-?[0-9]{19,}'";

/** The name of a type mapped with certainty, or null (aliases such as JSON included: never guess). */
function baseKind(t: DuckDBType): string | null {
  if (t.alias !== undefined && t.alias !== null && t.alias !== "") return null;
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN:
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.VARCHAR:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.LIST:
      return DuckDBTypeId[t.typeId];
    default:
      return null;
  }
}

/** True for keys a JS object lists first (array indices), in ascending numeric order. */
function isIndexKey(k: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(k) && Number(k) <= 4294967294;
}

/** Keys in the order a JS object built from them in this order enumerates them. */
export function jsKeyOrder<T>(items: readonly T[], key: (t: T) => string): T[] {
  const idx = items.filter((t) => isIndexKey(key(t))).sort((a, b) => Number(key(a)) - Number(key(b)));
  return [...idx, ...items.filter((t) => !isIndexKey(key(t)))];
}

function badName(n: string): boolean {
  return n.includes("\u0000") || n === "__proto__";
}

function uniqueIgnoringCase(names: readonly string[]): boolean {
  return new Set(names.map((n) => n.toLowerCase())).size === names.length;
}

/** A VARCHAR integer literal beyond int64 (the parquet form of a huge integer): its digits, leading zeros dropped. */
function bigLiteralCond(x: string): string {
  return `(regexp_full_match(${x}, ${INT_LITERAL}) AND TRY_CAST(${x} AS BIGINT) IS NULL)`;
}
function bigLiteralDigits(x: string): string {
  return `regexp_replace(${x}, '^(-?)0+([0-9])', '\\1\\2')`;
}

/**
 * The JSON text (stringifyStrict of duckToJson's value) of a non-NULL value `x` of type `t`, or null when the type
 * is not one mapped with certainty. `top`: a top-level column of a key that is not string-typed (huge literals).
 */
function valueSql(x: string, t: DuckDBType, depth: number, bigLiterals: boolean): string | null {
  const k = baseKind(t);
  switch (k) {
    case "BOOLEAN":
      return `CASE WHEN ${x} THEN 'true' WHEN NOT ${x} THEN 'false' END`;
    case "DOUBLE":
      return doubleSql(x);
    case "FLOAT":
      return doubleSql(`CAST(${x} AS DOUBLE)`);
    case "VARCHAR":
      return bigLiterals
        ? `CASE WHEN ${bigLiteralCond(x)} THEN ${bigLiteralDigits(x)} ELSE ${stringSql(x)} END`
        : stringSql(x);
    case "STRUCT": {
      const st = t as unknown as { entryNames: readonly string[]; entryTypes: readonly DuckDBType[] };
      const names = st.entryNames;
      if (names.length === 0 || names.some(badName) || !uniqueIgnoringCase(names)) return null;
      const fields = jsKeyOrder(
        names.map((n, i) => ({ n, t: st.entryTypes[i]! })),
        (f) => f.n,
      );
      const parts: string[] = [];
      for (const f of fields) {
        const fx = `struct_extract(${x}, ${quoteLiteral(f.n)})`;
        const v = valueSql(fx, f.t, depth + 1, false);
        if (v === null) return null;
        const sep = parts.length === 0 ? "{" : ",";
        parts.push(
          `${quoteLiteral(`${sep}${JSON.stringify(f.n)}:`)} || CASE WHEN ${fx} IS NULL THEN 'null' ELSE ${v} END`,
        );
      }
      return `(${parts.join(" || ")} || '}')`;
    }
    case "LIST": {
      const item = (t as unknown as { valueType: DuckDBType }).valueType;
      const e = `e${depth}`;
      const v = valueSql(e, item, depth + 1, false);
      if (v === null) return null;
      return `('[' || array_to_string(list_transform(${x}, lambda ${e}: CASE WHEN ${e} IS NULL THEN 'null' ELSE ${v} END), ',') || ']')`;
    }
    default:
      return k !== null && INT_TYPES.has(k) ? `CAST(${x} AS VARCHAR)` : null;
  }
}

/** kindOf's bit (see KIND_BITS) of a non-NULL top-level value, in SQL. */
function kindSql(x: string, t: DuckDBType, bigLiterals: boolean): string {
  const k = baseKind(t);
  switch (k) {
    case "BOOLEAN":
      return "2";
    case "DOUBLE":
    case "FLOAT":
      return `CASE WHEN isfinite(${x}) AND ${x} = trunc(${x}) AND abs(${x}) <= ${MAX_SAFE} THEN 4 ELSE 16 END`;
    case "VARCHAR":
      // A huge literal is a bigint: "bigint" below 10^38, "object" from there (kindOf).
      return bigLiterals
        ? `CASE WHEN ${bigLiteralCond(x)} THEN (CASE WHEN length(ltrim(${bigLiteralDigits(x)}, '-')) >= 39 THEN 64 ELSE 8 END) ELSE 32 END`
        : "32";
    case "STRUCT":
    case "LIST":
      return "64";
    default:
      // Integer columns: "int" within ±(2^53 - 1), "int64" beyond.
      return `CASE WHEN ${x} BETWEEN -${MAX_SAFE} AND ${MAX_SAFE} THEN 4 ELSE 128 END`;
  }
}

/** `{…}` of the given top-level columns (NULL = missing key), in JS key order. */
export function objectSql(cols: Member[], last?: string): string {
  if (cols.length === 0 && last === undefined) return "'{}'";
  // Scalar values are NULL for NULL (a missing key: concat_ws skips it); nested ones need the test.
  const parts = jsKeyOrder(cols, (c) => c.name).map((c) => {
    const key = quoteLiteral(`${JSON.stringify(c.name)}:`);
    return c.nested
      ? `CASE WHEN ${quoteIdent(c.name)} IS NULL THEN NULL ELSE ${key} || ${c.value} END`
      : `${key} || ${c.value}`;
  });
  // `last`: one more member's text, or NULL (its key is not an index key, so JS lists it last too)
  if (last !== undefined) parts.push(last);
  return `'{' || concat_ws(',', ${parts.join(",\n ")}) || '}'`;
}

function numberSql(c: ParquetColumn | undefined): string | null | undefined {
  if (c === undefined) return undefined;
  const k = baseKind(c.type);
  if (k === "DOUBLE" || k === "FLOAT" || (k !== null && INT_TYPES.has(k)))
    return `CAST(${quoteIdent(c.name)} AS DOUBLE)`;
  return null;
}

/** Unix seconds to microseconds as unixToMicros does (Math.round(sec * 1e6); NULL when not finite or out of range). */
function microsSql(sec: string): string {
  const m = `(${sec} * 1e6)`;
  return (
    `CASE WHEN isfinite(${sec}) AND abs(${sec}) <= 253402300799 THEN make_timestamp(CAST(` +
    `CASE WHEN ${m} = floor(${m}) THEN ${m} WHEN ${m} > 0 THEN round(${m}) ELSE -ceil(-${m} - 0.5) END` +
    ` AS BIGINT))::TIMESTAMPTZ END`
  );
}

/** `_timestamp` and `_runtime` as DOUBLE expressions (undefined: no such column), or null when a file is refused. */
export function fixedColumns(
  columns: readonly ParquetColumn[],
): { ts: string | undefined; rt: string | undefined } | null {
  const names = columns.map((c) => c.name);
  if (names.some(badName) || !uniqueIgnoringCase(names)) return null;
  const step = columns.find((c) => c.name === "_step");
  const stepKind = step ? baseKind(step.type) : null;
  if (stepKind === null || !INT_TYPES.has(stepKind) || !step || !isIntegerType(step.type)) return null;
  const ts = numberSql(columns.find((c) => c.name === "_timestamp"));
  const rt = numberSql(columns.find((c) => c.name === "_runtime"));
  if (ts === null || rt === null) return null;
  return { ts, rt };
}

export interface Member {
  name: string;
  value: string;
  nested: boolean;
}

/** A metric column: its quoted name, the JSON text of its value, its type's kind and its kinds-bit expression. */
interface MetricColumn extends Member {
  x: string;
  base: string | null;
  kind: string;
}

/**
 * A file's columns other than `_step`/`_timestamp`/`_runtime` as the row path splits them: `_wandb` (its JSON text,
 * `{}` when NULL), the other `_` keys (extra) and the metrics; or null when a column is not mapped with certainty.
 */
export function splitColumns(
  columns: readonly ParquetColumn[],
  stringKeys: ReadonlySet<string>,
): { wandb: string; extra: Member[]; metrics: MetricColumn[] } | null {
  const extra: Member[] = [];
  const metrics: MetricColumn[] = [];
  let wandb = "'{}'";
  for (const c of columns) {
    if (c.name === "_step" || c.name === "_timestamp" || c.name === "_runtime") continue;
    const big = !stringKeys.has(c.name);
    const x = quoteIdent(c.name);
    const value = valueSql(x, c.type, 1, big);
    if (value === null) return null;
    const nested = c.type.typeId === DuckDBTypeId.STRUCT || c.type.typeId === DuckDBTypeId.LIST;
    if (c.name === "_wandb") wandb = `CASE WHEN "_wandb" IS NULL THEN '{}' ELSE ${value} END`;
    else if (c.name.startsWith("_")) extra.push({ name: c.name, value, nested });
    else metrics.push({ name: c.name, value, nested, x, base: baseKind(c.type), kind: kindSql(x, c.type, big) });
  }
  return { wandb, extra, metrics };
}

/** The SQL of one file's rows, or null when a column is not mapped with certainty (decode rows instead). */
export function planParquetFile(columns: readonly ParquetColumn[], stringKeys: ReadonlySet<string>): FilePlan | null {
  const fixed = fixedColumns(columns);
  if (fixed === null) return null;
  const { ts, rt } = fixed;
  const split = splitColumns(columns, stringKeys);
  if (split === null) return null;
  const rest: Member[] = [];
  const typed: { name: string; expr: string }[] = [];
  for (const { name, value, nested, x, base: k } of split.metrics) {
    if (k === "DOUBLE" || k === "FLOAT") typed.push({ name, expr: `CAST(${x} AS DOUBLE)` });
    else if (k !== null && INT_TYPES.has(k)) {
      // a safe integer is a JS number (vals); beyond 2^53 the row path holds a bigint (rest, exact digits)
      const safe = `${x} BETWEEN -${MAX_SAFE} AND ${MAX_SAFE}`;
      typed.push({ name, expr: `CASE WHEN ${safe} THEN CAST(${x} AS DOUBLE) END` });
      rest.push({ name, value: `CASE WHEN NOT (${safe}) THEN ${value} END`, nested: false });
    } else rest.push({ name, value, nested });
  }
  return {
    timestamp: ts === undefined ? "NULL::TIMESTAMPTZ" : microsSql(ts),
    runtime: rt === undefined ? "NULL::DOUBLE" : rt,
    wandbMetadata: split.wandb,
    extra: objectSql(split.extra),
    typed: jsKeyOrder(typed, (t) => t.name).map((t) => [t.name, t.expr]),
    rest: rest.length === 0 ? "NULL" : `nullif(${objectSql(rest)}, '{}')`,
    kinds: split.metrics.map((m) => [m.name, m.kind]),
  };
}

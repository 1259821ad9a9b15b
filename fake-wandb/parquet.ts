/**
 * Parquet history exports written with DuckDB (as W&B's `parquetHistory.parquetUrls` serve them).
 *
 * Schema of one run's export (one column per history key present in the exported rows):
 * - `_step` BIGINT; `_runtime`, `_timestamp` DOUBLE;
 * - float keys DOUBLE (NaN, Infinity and -Infinity are stored as such, distinct from NULL);
 * - int-only keys BIGINT, including integers beyond 2^53 that still fit int64;
 * - integers beyond int64 (kind "huge") VARCHAR holding the exact decimal digits: no Parquet integer type holds them,
 *   and a DOUBLE would lose digits. A reader that wants the number must parse the string;
 * - strings VARCHAR, booleans BOOLEAN;
 * - nested values (media such as image-file, histograms) as STRUCT columns (lists inside as LIST). The official
 *   client (wandb >= 0.27.1) reads exports through Arrow, and Arrow structs become Python dicts, so a STRUCT gives
 *   back the same dict the JSON history holds ({"_type": "image-file", "path": ..., ...}); JSON text would come back
 *   as a str and differ from the live rows.
 * - A key absent from a row is NULL (W&B rows simply lack the key).
 * Column names are the history keys verbatim (dots, quotes, spaces and unicode included).
 * A run with more than 1000 exported rows is split into two files by step (first half, second half).
 */
import { randomBytes } from "node:crypto";
import { rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance, DuckDBType, DuckDBValue } from "@duckdb/node-api";
import { countRows, forEachRow, type KeyKind, type KeySpec, type RunSpec, stepsIn } from "./generator.js";
import type { FValue, ParquetExport } from "./model.js";

/** Rows above which a run's export is split into two files. */
export const SPLIT_ROWS = 1000;

const IMAGE_STRUCT =
  '{"_type":"VARCHAR","path":"VARCHAR","sha256":"VARCHAR","size":"BIGINT","width":"BIGINT","height":"BIGINT","format":"VARCHAR"}';
const HISTOGRAM_STRUCT = '{"_type":"VARCHAR","values":["BIGINT"],"bins":["DOUBLE"]}';

/** Quotes a DuckDB identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
function quoteString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function stagingType(kind: KeyKind): string {
  switch (kind) {
    case "float":
    case "special":
      return "DOUBLE";
    case "int":
    case "bigint":
      return "BIGINT";
    case "bool":
      return "BOOLEAN";
    default:
      return "VARCHAR"; // string, huge (exact digits), image/histogram (JSON text, turned into STRUCT on COPY)
  }
}

interface Column {
  name: string;
  kind: KeyKind | "step" | "runtime";
}

/** Keys present in at least one row with step < maxStep. */
function presentKeys(spec: RunSpec, maxStep: number): KeySpec[] {
  const steps = stepsIn(spec, Number.NEGATIVE_INFINITY, maxStep);
  const out: KeySpec[] = [];
  for (const k of spec.keys) {
    if (k.period === 1) {
      if (steps.length > 0) out.push(k);
      continue;
    }
    for (const s of steps) {
      if (s % k.period === k.phase) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

/** Writes and caches exports; one DuckDB in-memory instance, jobs serialised. */
export class ParquetWriter {
  private instance: Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private counter = 0;

  constructor(private readonly dir: string) {}

  private db(): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> {
    if (!this.instance) {
      this.instance = (async () => {
        const { DuckDBInstance } = await import("@duckdb/node-api");
        const instance = await DuckDBInstance.create(":memory:", { threads: "2" });
        const conn = await instance.connect();
        return { instance, conn };
      })();
    }
    return this.instance;
  }

  /** Writes the export of rows with step < maxStep; file names start with `base`. */
  write(spec: RunSpec, maxStep: number, base: string, reuse = false): Promise<ParquetExport[]> {
    const job = this.chain.then(
      async () => (reuse && (await this.existing(spec, maxStep, base))) || this.doWrite(spec, maxStep, base),
    );
    this.chain = job.catch(() => undefined);
    return job;
  }

  /** The files of an earlier identical export (same deterministic name) when all of them are on disk. */
  private async existing(spec: RunSpec, maxStep: number, base: string): Promise<ParquetExport[] | undefined> {
    const n = countRows(spec, Number.NEGATIVE_INFINITY, maxStep);
    if (n === 0) return [];
    const out: ParquetExport[] = [];
    for (const idx of n > SPLIT_ROWS ? ["0", "1"] : ["0"]) {
      const id = `${base}_${idx}`;
      const path = join(this.dir, `${id}.runhistory.parquet`);
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile() || st.size === 0) return undefined;
      out.push({ id, path, sizeBytes: st.size });
    }
    return out;
  }

  private async doWrite(spec: RunSpec, maxStep: number, base: string): Promise<ParquetExport[]> {
    const n = countRows(spec, Number.NEGATIVE_INFINITY, maxStep);
    if (n === 0) return [];
    const { conn } = await this.db();
    const keys = presentKeys(spec, maxStep);
    const cols: Column[] = [
      { name: "_step", kind: "step" },
      { name: "_runtime", kind: "runtime" },
      { name: "_timestamp", kind: "runtime" },
      ...keys.map((k) => ({ name: k.name, kind: k.kind })),
    ];
    const table = `export_${++this.counter}`;
    const colDefs = cols.map((c, i) => {
      const t = c.kind === "step" ? "BIGINT" : c.kind === "runtime" ? "DOUBLE" : stagingType(c.kind);
      return `c${i} ${t}`;
    });
    await conn.run(`CREATE TABLE ${table} (${colDefs.join(", ")})`);
    try {
      const app = await conn.createAppender(table);
      const steps: number[] = [];
      const api = await import("@duckdb/node-api");
      const types = cols.map((c) => duckType(api, c));
      // Column-wise batches of 2048 rows (one DuckDB vector) appended as data chunks: several times faster than
      // one native append call per value.
      const width = cols.length;
      let batch: DuckDBValue[][] = cols.map(() => []);
      let filled = 0;
      const flush = () => {
        if (filled === 0) return;
        const chunk = api.DuckDBDataChunk.create(types);
        chunk.setColumns(batch);
        app.appendDataChunk(chunk);
        batch = cols.map(() => []);
        filled = 0;
      };
      forEachRow(spec, Number.NEGATIVE_INFINITY, maxStep, (row) => {
        steps.push(row._step as number);
        for (let i = 0; i < width; i++) batch[i]!.push(toDuck(cols[i]!, row[cols[i]!.name]));
        if (++filled === 2048) flush();
      });
      flush();
      app.flushSync();
      app.closeSync();

      const select = cols
        .map((c, i) => {
          const src = `c${i}`;
          const expr =
            c.kind === "image"
              ? `json_transform(${src}, ${quoteString(IMAGE_STRUCT)})`
              : c.kind === "histogram"
                ? `json_transform(${src}, ${quoteString(HISTOGRAM_STRUCT)})`
                : src;
          return `${expr} AS ${quoteIdent(c.name)}`;
        })
        .join(", ");
      const parts: Array<[string, string]> = [];
      if (n > SPLIT_ROWS) {
        const split = steps[Math.ceil(n / 2)]!;
        parts.push([`c0 < ${split}`, "0"], [`c0 >= ${split}`, "1"]);
      } else parts.push(["TRUE", "0"]);
      const out: ParquetExport[] = [];
      for (const [where, idx] of parts) {
        const id = `${base}_${idx}`;
        const path = join(this.dir, `${id}.runhistory.parquet`);
        const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
        await conn.run(
          // Rows were appended in step order and DuckDB preserves insertion order: no ORDER BY needed.
          `COPY (SELECT ${select} FROM ${table} WHERE ${where}) TO ${quoteString(tmp)} (FORMAT parquet, COMPRESSION snappy)`,
        );
        await rename(tmp, path);
        const st = await stat(path);
        out.push({ id, path, sizeBytes: st.size });
      }
      return out;
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${table}`);
    }
  }

  /** Removes files of an outdated export (best effort). */
  async discard(exports: ParquetExport[]): Promise<void> {
    for (const e of exports) await unlink(e.path).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (!this.instance) return;
    const inst = this.instance;
    this.instance = undefined;
    await this.chain.catch(() => undefined);
    const { instance, conn } = await inst;
    conn.closeSync();
    instance.closeSync();
  }
}

type DuckApi = typeof import("@duckdb/node-api");

function duckType(api: DuckApi, c: Column): DuckDBType {
  switch (c.kind) {
    case "step":
    case "int":
    case "bigint":
      return api.BIGINT;
    case "runtime":
    case "float":
    case "special":
      return api.DOUBLE;
    case "bool":
      return api.BOOLEAN;
    default:
      return api.VARCHAR;
  }
}

/** A row value as the staging column holds it (null when the row lacks the key). */
function toDuck(c: Column, v: FValue | undefined): DuckDBValue {
  if (v === undefined || v === null) return null;
  switch (c.kind) {
    case "step":
    case "int":
    case "bigint":
      return typeof v === "bigint" ? v : BigInt(v as number);
    case "runtime":
    case "float":
    case "special":
    case "bool":
      return v as number | boolean;
    case "huge":
      return String(v);
    case "string":
      return v as string;
    default:
      return JSON.stringify(v);
  }
}

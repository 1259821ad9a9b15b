/**
 * The PostgreSQL archive's rows copied into a temporary DuckDB database for the exports (withDuckDBTables in
 * postgres.ts): CSV out of PostgreSQL, typed back in DuckDB.
 */
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import type pg from "pg";
import copyStreams from "pg-copy-streams";
import { exportMemoryFor, LARGE_VALUE_CHARS, LONGEST_CSV_TABLE } from "../model/duckdb-resources.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import type { ExportFilter } from "./archive.js";
import { ArchiveError, firstLine } from "./errors.js";
import { DUCKDB_DIALECT, MIGRATIONS } from "./schema.js";
import type { Row } from "./values.js";

/**
 * Copies runs, metric_keys, history_keysets, history_versions, history_rows and system_metrics (those of `filter`) out of PostgreSQL
 * into the temporary DuckDB database `conn` (files in `dir`): COPY TO STDOUT as CSV, then tables or typed views over
 * the CSV files.
 */
export async function copyTablesInto(
  client: pg.Client,
  rows: (sql: string) => Promise<Row[]>,
  conn: DuckDBConnection,
  dir: string,
  filter: ExportFilter,
): Promise<void> {
  const conds: string[] = [];
  if (filter.entity !== undefined) conds.push(`entity = ${quoteLiteral(filter.entity)}`);
  if (filter.project !== undefined) conds.push(`project = ${quoteLiteral(filter.project)}`);
  const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  const tables: Record<string, "TABLE" | "VIEW"> = {
    runs: "TABLE",
    metric_keys: "TABLE",
    history_keysets: "TABLE",
    history_versions: "TABLE",
    history_rows: "VIEW",
    system_metrics: "VIEW",
  };
  const cols = await rows(
    `SELECT table_name AS t, column_name AS c, CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END AS ty
     FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name IN (${Object.keys(tables).map(quoteLiteral).join(", ")})
     ORDER BY table_name, ordinal_position`,
  );
  const byTable = new Map<string, { c: string; ty: string }[]>();
  for (const r of cols) {
    const list = byTable.get(String(r.t)) ?? [];
    list.push({ c: String(r.c), ty: String(r.ty) });
    byTable.set(String(r.t), list);
  }
  if (byTable.size === 0) {
    // an archive nothing was written to yet (opened read-only): export empty files
    for (const m of MIGRATIONS) for (const sql of m.statements(DUCKDB_DIALECT)) await conn.run(sql);
    return;
  }
  let longestRecord = 0;
  for (const [table, list] of byTable) {
    const file = join(dir, `${table}.csv`);
    const select = list
      .map(({ c, ty }) =>
        ty === "_text"
          ? `array_to_json(${quoteIdent(c)})::text`
          : ty === "_float8"
            ? `${quoteIdent(c)}::text`
            : quoteIdent(c),
      )
      .join(", ");
    const longest = new LongestCsvRecord();
    try {
      const out = client.query(
        copyStreams.to(`COPY (SELECT ${select} FROM ${quoteIdent(table)} ${where}) TO STDOUT WITH (FORMAT csv)`),
      );
      await pipeline(out, longest, createWriteStream(file));
    } catch (e) {
      throw new ArchiveError("EXPORT", `reading ${table} from PostgreSQL: ${firstLine(e)}`, { cause: e });
    }
    // DuckDB sizes its read buffers from max_line_size (16x): give it the longest record seen, not a fixed 1 GiB.
    const lineSize = Math.max(2 ** 21, longest.max + 1024);
    const csvCols = list.map((_, i) => `${quoteLiteral(`c${i}`)}: 'VARCHAR'`).join(", ");
    const exprs = list.map(({ c, ty }, i) => `${duckdbCast(`c${i}`, ty)} AS ${quoteIdent(c)}`).join(", ");
    longestRecord = Math.max(longestRecord, longest.max);
    try {
      // A table is read now: a record of hundreds of MB (a huge config) gets a budget planned for it first.
      if (tables[table] === "TABLE" && longest.max >= LARGE_VALUE_CHARS) {
        await raiseMemory(conn, { readerBufferBytes: lineSize * 2, columns: list.length, largest: longest.max });
      }
      await conn.run(
        `CREATE ${tables[table]} ${quoteIdent(table)} AS SELECT ${exprs}
         FROM read_csv(${quoteLiteral(file)}, columns = {${csvCols}}, header = false, auto_detect = false,
           delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false, max_line_size = ${lineSize},
           buffer_size = ${lineSize * 2})`,
      );
    } catch (e) {
      throw new ArchiveError("EXPORT", `copying ${table} from PostgreSQL: ${firstLine(e)}`, { cause: e });
    }
  }
  // The views are read by the export's COPYs, which plan their budget from the largest value (largestStoredValue):
  // the tables have DuckDB's statistics, the views over CSV files have this record length.
  await conn.run(`CREATE TABLE ${quoteIdent(LONGEST_CSV_TABLE)} AS SELECT ${longestRecord}::BIGINT AS bytes`);
}

/**
 * Raises the temporary database's memory budget for a CSV file with long records (planned for one read of it and
 * its largest value), and leaves it raised: the database's own checkpoints of the table read need it too.
 */
async function raiseMemory(
  conn: DuckDBConnection,
  need: { readerBufferBytes: number; columns: number; largest: number },
): Promise<void> {
  const threads = Number((await conn.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]![0]);
  const planned = exportMemoryFor({ ...need, threads, largestValueBytes: need.largest });
  await conn.run(`SET memory_limit = ${quoteLiteral(planned)}`);
}

/** The DuckDB expression turning CSV text column `v` back into the PostgreSQL column's type. */
function duckdbCast(v: string, pgType: string): string {
  switch (pgType) {
    case "_text":
      return `from_json(${v}, '["VARCHAR"]')`;
    case "_float8":
      // PostgreSQL's array text {1.5,NaN,-Infinity,NULL} as a DuckDB list text [1.5,NaN,-Infinity,NULL]
      return `CAST('[' || substr(${v}, 2, length(${v}) - 2) || ']' AS DOUBLE[])`;
    case "jsonb":
    case "json":
      return `CAST(${v} AS JSON)`;
    case "timestamp with time zone":
      return `CAST(${v} AS TIMESTAMPTZ)`;
    case "bigint":
      return `CAST(${v} AS BIGINT)`;
    case "integer":
      return `CAST(${v} AS INTEGER)`;
    case "double precision":
      return `CAST(${v} AS DOUBLE)`;
    case "boolean":
      return `CAST(${v} AS BOOLEAN)`;
    default:
      return v;
  }
}

/** Passes CSV bytes through and measures the longest record (newlines inside quoted fields do not end a record). */
class LongestCsvRecord extends Transform {
  max = 0;
  private current = 0;
  private inQuotes = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let current = this.current;
    let inQuotes = this.inQuotes;
    let max = this.max;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 34)
        inQuotes = !inQuotes; // '"' (an escaped "" toggles twice)
      else if (b === 10 && !inQuotes) {
        if (current > max) max = current;
        current = 0;
        continue;
      }
      current++;
    }
    this.current = current;
    this.inQuotes = inQuotes;
    this.max = Math.max(max, current);
    done(null, chunk);
  }
}

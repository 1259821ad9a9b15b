/**
 * The COPY steps every export file goes through: the filter's WHERE clause, a COPY planned to fit DuckDB's budget
 * for the table's width (withCopyBudget), a single file written to a temp name and renamed (copyToParquet), and a
 * Hive-partitioned dataset folder replaced whole (copyToPartitioned).
 */
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { ArchiveError, type ExportFilter, firstLine } from "../archive/index.js";
import { tempPathFor } from "../model/atomic-file.js";
import {
  duckdbThreads,
  exportMemoryFor,
  largestStoredValue,
  rowGroupSize,
  SCRATCH_PARQUET_OPTIONS,
} from "../model/duckdb-resources.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";

export function whereClause(filter: ExportFilter, alias?: string): string {
  const p = alias ? `${alias}.` : "";
  const conds: string[] = [];
  if (filter.entity !== undefined) conds.push(`${p}entity = ${quoteLiteral(filter.entity)}`);
  if (filter.project !== undefined) conds.push(`${p}project = ${quoteLiteral(filter.project)}`);
  return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
}

/** largestStoredValue of each export's connection, read once per export (its tables do not change during it). */
const storedValueBytes = new WeakMap<DuckDBConnection, Promise<number>>();

/** Starts an export on `conn`: what withCopyBudget read of the tables before is forgotten (they may have changed). */
export function startExport(conn: DuckDBConnection): void {
  storedValueBytes.delete(conn);
}

/**
 * Runs one COPY with the memory and threads its width calls for (see exportMemoryFor: one thread and a budget
 * planned from the column count for wide tables, and from the largest values the archive holds: largestStoredValue),
 * then restores the connection's settings.
 */
export async function withCopyBudget(
  conn: DuckDBConnection,
  columns: number,
  copy: () => Promise<unknown>,
): Promise<void> {
  const threads = columns > 256 ? 1 : Number(duckdbThreads());
  let stored = storedValueBytes.get(conn);
  if (stored === undefined) {
    stored = largestStoredValue(conn);
    storedValueBytes.set(conn, stored);
  }
  const largestValueBytes = await stored;
  const memory = exportMemoryFor({ readerBufferBytes: 0, columns, threads, largestValueBytes });
  const before = (await conn.runAndReadAll("SELECT current_setting('memory_limit'), current_setting('threads')"))
    .getRows()[0]!
    .map(String);
  await conn.run(`SET memory_limit = ${quoteLiteral(memory)}`);
  await conn.run(`SET threads = ${threads}`);
  try {
    await copy();
  } finally {
    await conn.run(`SET memory_limit = ${quoteLiteral(before[0]!)}`).catch(() => undefined);
    await conn.run(`SET threads = ${Number(before[1])}`).catch(() => undefined);
  }
}

/**
 * Rows per row group of the runs_metadata files: their JSON cells (config, summary, system_attrs) make a row tens
 * of KB, and a row group is held whole while it is written: at the width-based size (all 10,000 runs of S1 in one
 * group) the runs file ran out of 96 MiB; 1,024 rows of them are a few tens of MB.
 */
export const RUN_ROW_GROUP = 1024;

/**
 * Writes `select` to `outputDir/name` (a temp file, renamed when whole) with zstd, or, for a `scratch` file read back
 * once, uncompressed and without dictionaries (SCRATCH_PARQUET_OPTIONS).
 */
export async function copyToParquet(
  conn: DuckDBConnection,
  select: string,
  outputDir: string,
  name: string,
  rowGroup?: number,
  scratch = false,
): Promise<string> {
  const final = join(outputDir, name);
  const tmp = tempPathFor(final);
  try {
    // Wide tables (thousands of metric columns) get smaller row groups, so that one fits in DuckDB's memory budget.
    const columns = (await conn.runAndReadAll(`DESCRIBE ${select}`)).currentRowCount;
    await rm(tmp, { force: true });
    const format = scratch ? `COMPRESSION uncompressed, ${SCRATCH_PARQUET_OPTIONS}` : "COMPRESSION zstd";
    await withCopyBudget(conn, columns, () =>
      conn.run(
        `COPY (${select}) TO ${quoteLiteral(tmp)} (FORMAT parquet, ${format}, ROW_GROUP_SIZE ${rowGroup ?? rowGroupSize(columns)})`,
      ),
    );
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError("EXPORT", `writing ${final}: ${firstLine(e)}`, { cause: e });
  }
  return final;
}

/**
 * Bytes of payload one sorted chunk of an ordered copy holds: DuckDB's sort of wide rows (10,000 runs with 86 MB of
 * JSON cells) does not fit a 96 MiB budget, while chunks of about this size, each sorted alone, do.
 * DR_WANDB_EXPORT_CHUNK_BYTES, read at each copy.
 */
function orderedChunkBytes(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DR_WANDB_EXPORT_CHUNK_BYTES ?? 16 * 2 ** 20);
  return Number.isFinite(n) && n > 0 ? n : 16 * 2 ** 20;
}

/**
 * Writes `SELECT cols FROM table where ORDER BY group..., range, tieBreak` to `outputDir/name`. When the rows'
 * payload (`payloadBytes`, the caller's estimate) is larger than a chunk, the sort keys alone are read first (narrow
 * rows: each distinct (group..., range) and its row count) and cut into chunks of about `chunkBytes` at distinct
 * values, so that rows with equal keys share a chunk; each chunk is then written sorted to a temporary file by a
 * query whose WHERE is equality on the group columns and a range on the range column (filters DuckDB pushes into
 * the table scan: a chunk reads only its own rows' payload), and the final file reads the chunks in order (no sort
 * of the whole payload, and no scan of every row per chunk). NULLs of the range column sort last, as in the single
 * sort.
 */
export async function copyOrderedToParquet(
  conn: DuckDBConnection,
  q: {
    cols: string;
    table: string;
    where: string;
    group: string[];
    range: string;
    tieBreak: string;
    rows: number;
    payloadBytes: number;
  },
  outputDir: string,
  name: string,
  rowGroup?: number,
): Promise<string> {
  const chunkBytes = orderedChunkBytes();
  const keys = [...q.group, q.range].map(quoteIdent);
  const orderBy = [...keys, quoteIdent(q.tieBreak)].join(", ");
  if (q.payloadBytes <= chunkBytes || q.rows <= 1) {
    return copyToParquet(
      conn,
      `SELECT ${q.cols} FROM ${q.table} ${q.where} ORDER BY ${orderBy}`,
      outputDir,
      name,
      rowGroup,
    );
  }
  const per = Math.max(1, Math.floor((q.rows * chunkBytes) / q.payloadBytes));
  const range = quoteIdent(q.range);
  // One line per chunk: its group's values, its first and last range value as text (exact for timestamps), and
  // whether it holds the group's NULLs.
  const plan = await conn.runAndReadAll(
    `WITH k AS (SELECT ${keys.join(", ")}, count(*) AS n FROM ${q.table} ${q.where} GROUP BY ALL),
     c AS (SELECT *, sum(n) OVER (ORDER BY ${keys.join(", ")} ROWS UNBOUNDED PRECEDING) - n AS before FROM k)
     SELECT ${q.group.map(quoteIdent).join(", ")}${q.group.length ? ", " : ""}min(${range})::VARCHAR, max(${range})::VARCHAR,
       bool_or(${range} IS NULL)
     FROM c GROUP BY ${[...q.group.map(quoteIdent), `before // ${per}`].join(", ")}
     ORDER BY ${[...q.group.map(quoteIdent), `before // ${per}`].join(", ")}`,
  );
  const dir = tempPathFor(join(outputDir, name));
  await mkdir(dir, { recursive: true });
  try {
    const chunks: string[] = [];
    for (const row of plan.getRows()) {
      const conds = q.group.map((g, i) => `${quoteIdent(g)} = ${quoteLiteral(String(row[i]))}`);
      const [lo, hi, nulls] = row.slice(q.group.length) as [string | null, string | null, boolean];
      const span = lo === null || hi === null ? [] : [`${range} BETWEEN ${quoteLiteral(lo)} AND ${quoteLiteral(hi)}`];
      if (nulls) span.push(`${range} IS NULL`);
      conds.push(span.length === 1 ? span[0]! : `(${span.join(" OR ")})`);
      const where = q.where ? `${q.where} AND ${conds.join(" AND ")}` : `WHERE ${conds.join(" AND ")}`;
      const sql = `SELECT ${q.cols} FROM ${q.table} ${where} ORDER BY ${orderBy}`;
      // a scratch file, read once right away (S1's 10,000 runs: the export ~0.2 s faster than with zstd chunks)
      const file = `${String(chunks.length).padStart(6, "0")}.parquet`;
      chunks.push(await copyToParquet(conn, sql, dir, file, rowGroup, true));
    }
    return await copyToParquet(
      conn,
      `SELECT * FROM read_parquet([${chunks.map(quoteLiteral).join(", ")}])`,
      outputDir,
      name,
      rowGroup,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes the history as a Hive-partitioned dataset in `<outputDir>/runs_history/`, whole or not at all: it is
 * written to a temporary folder beside it, which then replaces the previous dataset.
 */
export async function copyToPartitioned(conn: DuckDBConnection, select: string, outputDir: string): Promise<string> {
  const final = join(outputDir, "runs_history");
  const tmp = tempPathFor(final);
  const old = tempPathFor(final, "old");
  try {
    await rm(tmp, { recursive: true, force: true });
    const columns = (await conn.runAndReadAll(`DESCRIBE ${select}`)).currentRowCount;
    await withCopyBudget(conn, columns, () =>
      conn.run(
        `COPY (${select}) TO ${quoteLiteral(tmp)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (entity, project), ` +
          `ROW_GROUP_SIZE ${rowGroupSize(columns)})`,
      ),
    );
    await mkdir(tmp, { recursive: true }); // an empty archive still gives an (empty) dataset folder
    const hadOld = await rename(final, old).then(
      () => true,
      () => false,
    );
    await rename(tmp, final);
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError("EXPORT", `writing ${final}/: ${firstLine(e)}`, { cause: e });
  }
  return final;
}

/** The (name, type) of each column of a SELECT. */
export async function describe(conn: DuckDBConnection, select: string): Promise<[string, string][]> {
  const r = await conn.runAndReadAll(`DESCRIBE ${select}`);
  return r.getRows().map((row) => [String(row[0]), String(row[1])]);
}

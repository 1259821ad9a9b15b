/**
 * Parquet export of the archive, under the original dr_wandb's file names. Always written by DuckDB's COPY (zstd);
 * a PostgreSQL archive is first streamed into a temporary DuckDB database. Each file is written whole: to
 * `<name>.tmp-<pid>` in the same folder, then renamed.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import {
  type Archive,
  ArchiveError,
  type ExportFilter,
  firstLine,
  isDuckDBExportSource,
  maskToKinds,
} from "../archive/index.js";
import { isProcessAlive, removeStaleTempFiles, tempPathFor } from "../model/atomic-file.js";
import { duckdbThreads, exportMemoryFor, rowGroupSize } from "../model/duckdb-resources.js";
import { type ColumnType, columnTypeFor, metricColumnNames, quoteIdent, quoteLiteral } from "../model/flatten.js";
import { HISTORY_FIXED_COLUMNS, RUN_JSON_COMPONENTS, RUN_SCALAR_COLUMNS } from "../model/records.js";

export interface ArchiveExportOptions {
  outputDir: string;
  /** Only this entity's runs (all entities when absent). */
  entity?: string;
  /** Only this project's runs (all projects when absent). */
  project?: string;
  /**
   * Write the history as a Hive-partitioned Parquet dataset `runs_history/entity=…/project=…/*.parquet` (one table
   * for Spark, Trino, DuckDB, polars) instead of the single runs_history.parquet, for archives that outgrow one file.
   */
  partitioned?: boolean;
}

/** The standard run fields of every runs_metadata*.parquet file, as in the original. */
export const RUN_STANDARD_COLUMNS = ["run_id", "run_name", "state", "project", "entity", "created_at"] as const;

function whereClause(filter: ExportFilter, alias?: string): string {
  const p = alias ? `${alias}.` : "";
  const conds: string[] = [];
  if (filter.entity !== undefined) conds.push(`${p}entity = ${quoteLiteral(filter.entity)}`);
  if (filter.project !== undefined) conds.push(`${p}project = ${quoteLiteral(filter.project)}`);
  return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
}

/** The files an export writes (their temp files, left by a killed export, are removed before the next one). */
const EXPORT_FILES = [
  "runs_metadata.parquet",
  ...RUN_JSON_COMPONENTS.map((c) => `runs_metadata_${c}.parquet`),
  "runs_history.parquet",
  "runs_system_metrics.parquet",
  ".runs_history.manifest.json",
];

/** Removes what a killed earlier export left: temp files and temp/old dataset folders of dead processes. */
async function removeStaleExportTemps(outputDir: string): Promise<void> {
  await removeStaleTempFiles(outputDir, EXPORT_FILES);
  let names: string[] = [];
  try {
    names = await readdir(outputDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\.runs_history\.(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(n);
    if (m && !isProcessAlive(Number(m[1]))) await rm(join(outputDir, n), { recursive: true, force: true });
  }
}

/**
 * Runs one COPY with the memory and threads its width calls for (see exportMemoryFor: one thread and a budget
 * planned from the column count for wide tables), then restores the connection's settings.
 */
async function withCopyBudget(conn: DuckDBConnection, columns: number, copy: () => Promise<unknown>): Promise<void> {
  const threads = columns > 256 ? 1 : Number(duckdbThreads());
  const memory = exportMemoryFor({ readerBufferBytes: 0, columns, threads });
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
const RUN_ROW_GROUP = 1024;

async function copyToParquet(
  conn: DuckDBConnection,
  select: string,
  outputDir: string,
  name: string,
  rowGroup?: number,
): Promise<string> {
  const final = join(outputDir, name);
  const tmp = tempPathFor(final);
  try {
    // Wide tables (thousands of metric columns) get smaller row groups, so that one fits in DuckDB's memory budget.
    const columns = (await conn.runAndReadAll(`DESCRIBE ${select}`)).currentRowCount;
    await rm(tmp, { force: true });
    await withCopyBudget(conn, columns, () =>
      conn.run(
        `COPY (${select}) TO ${quoteLiteral(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${rowGroup ?? rowGroupSize(columns)})`,
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
 * Writes the history as a Hive-partitioned dataset in `<outputDir>/runs_history/`, whole or not at all: it is
 * written to a temporary folder beside it, which then replaces the previous dataset.
 */
async function copyToPartitioned(conn: DuckDBConnection, select: string, outputDir: string): Promise<string> {
  const final = join(outputDir, "runs_history");
  const tmp = tempPathFor(final);
  const old = tempPathFor(final).replace(/\.tmp-(\d+-[0-9a-f]+)$/, ".old-$1");
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

/** The JSON type each metric column is read as by json_transform (HUGEINT as text, cast afterwards). */
function transformType(type: ColumnType): string {
  return type === "HUGEINT" ? "VARCHAR" : type;
}

/**
 * The SELECT for runs_history.parquet: fixed columns, then one typed column per metric key, in the order of
 * (entity, project, run_id, step).
 *
 * Memory is bounded by the width of one chunk of rows, not by the table: the narrow stored rows are sorted first
 * (the sort spills to disk beyond the budget), then each row's metrics are parsed ONCE by json_transform into a
 * typed STRUCT whose fields are read by position (any key: dots, quotes, case variants, the empty key). A wide
 * sort (thousands of mostly-NULL metric columns per row) or a list of thousands of extracted strings per row both
 * need hundreds of MiB for a few thousand rows; this plan needs neither. DuckDB keeps the sorted order through the
 * projections above it (preserve_insertion_order, on by default), which test/e2e checks on the written files.
 */
export async function historySelect(
  conn: DuckDBConnection,
  filter: ExportFilter,
  opts: { partitionColumns?: boolean; runIds?: readonly string[] } = {},
): Promise<string> {
  const reader = await conn.runAndReadAll(
    `SELECT key, bit_or(kinds)::INTEGER AS kinds FROM metric_keys ${whereClause(filter)} GROUP BY key ORDER BY key`,
  );
  const keys: { key: string; type: ColumnType }[] = reader.getRows().map((r) => ({
    key: String(r[0]),
    type: columnTypeFor(maskToKinds(Number(r[1]))),
  }));
  const names = metricColumnNames(
    keys.map((k) => k.key),
    HISTORY_FIXED_COLUMNS,
  );
  const fixed = [
    ...(opts.partitionColumns ? ["entity", "project"] : []),
    ...HISTORY_FIXED_COLUMNS.map((c) => quoteIdent(c)),
  ].join(", ");
  let where = whereClause(filter);
  if (opts.runIds !== undefined) {
    const list = opts.runIds.length > 0 ? opts.runIds.map(quoteLiteral).join(", ") : "NULL";
    where = `${where ? `${where} AND` : "WHERE"} run_id IN (${list})`;
  }
  const sorted = `SELECT * FROM history ${where} ORDER BY entity, project, run_id, step`;
  if (keys.length === 0) return `SELECT ${fixed} FROM (${sorted})`;
  const S = quoteIdent("dr_wandb$s");
  // Built as text, not with JSON.stringify of an object: that would move integer-like keys ("0", "10") to the
  // front and treat "__proto__" specially, and the fields are read by position.
  const structure = `{${keys.map((k) => `${JSON.stringify(k.key)}:${JSON.stringify(transformType(k.type))}`).join(",")}}`;
  const exprs = keys.map((k, i) => {
    const field = `struct_extract_at(${S}, ${i + 1})`;
    const alias = quoteIdent(names.get(k.key)!);
    // Parquet has no 128-bit integer (DuckDB would write DOUBLE): DECIMAL(38,0) keeps every digit.
    return k.type === "HUGEINT" ? `TRY_CAST(${field} AS DECIMAL(38,0)) AS ${alias}` : `${field} AS ${alias}`;
  });
  const inner = [
    "entity",
    "project",
    ...HISTORY_FIXED_COLUMNS.map((c) => quoteIdent(c)),
    `json_transform(metrics, ${quoteLiteral(structure)}) AS ${S}`,
  ].join(", ");
  return `SELECT ${fixed}, ${exprs.join(", ")} FROM (SELECT ${inner} FROM (${sorted}))`;
}

/**
 * What the last runs_history.parquet holds, so that the next export copies the rows of unchanged runs from it
 * (a columnar copy) instead of flattening their JSON again: the file's size and mtime (a file changed by anything
 * else is not trusted), the filter, the column signature (names and types), and per run its row count and a hash
 * of all its stored history rows.
 */
interface HistoryManifest {
  version: 1;
  size: number;
  mtimeMs: number;
  filter: ExportFilter;
  columns: [string, string][];
  /** `entity/project/run_id` as JSON → `count:hash`. */
  runs: Record<string, string>;
}

const MANIFEST_NAME = ".runs_history.manifest.json";

async function readManifest(path: string): Promise<HistoryManifest | null> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as HistoryManifest;
    return m && m.version === 1 && typeof m.runs === "object" ? m : null;
  } catch {
    return null;
  }
}

/** Per run of the export: its key (JSON of entity, project, run_id), run_id, row count and `count:hash` of its rows. */
async function historyFingerprints(
  conn: DuckDBConnection,
  filter: ExportFilter,
): Promise<{ key: string; entity: string; project: string; runId: string; rows: number; print: string }[]> {
  const r = await conn.runAndReadAll(
    `SELECT entity, project, run_id, count(*) AS n,
            bit_xor(hash(step, "timestamp", runtime, CAST(wandb_metadata AS VARCHAR), CAST(metrics AS VARCHAR),
                         CAST(extra AS VARCHAR)))::VARCHAR AS h
     FROM history ${whereClause(filter)} GROUP BY entity, project, run_id ORDER BY entity, project, run_id`,
  );
  return r.getRows().map((row) => {
    const [entity, project, runId] = [String(row[0]), String(row[1]), String(row[2])];
    const rows = Number(row[3]);
    return {
      key: JSON.stringify([entity, project, runId]),
      entity,
      project,
      runId,
      rows,
      print: `${row[3]}:${row[4]}`,
    };
  });
}

/**
 * Cells (rows x columns) of history flattened by one COPY: the rows of a segment are sorted by (run_id, step) in
 * DuckDB's export budget, so a segment is a few runs, not the archive (a sort of 4M stored rows spilled 2.6 GB and
 * still ran out of the 160 MiB budget). A single run larger than this is one segment of its own.
 */
export const SEGMENT_CELLS = Number(process.env.DR_WANDB_EXPORT_SEGMENT_CELLS ?? 4_000_000);

async function describe(conn: DuckDBConnection, select: string): Promise<[string, string][]> {
  const r = await conn.runAndReadAll(`DESCRIBE ${select}`);
  return r.getRows().map((row) => [String(row[0]), String(row[1])]);
}

/**
 * Writes runs_history.parquet. When the previous export of the same filter left a manifest that still matches its
 * file and the columns are unchanged, the rows of runs whose stored history is unchanged are copied from the
 * previous file and only the other runs are flattened from the archive's JSON; the file is still rewritten whole
 * (same content as a full export). Only for one entity/project (the file has no entity/project columns).
 */
async function exportHistory(conn: DuckDBConnection, filter: ExportFilter, outputDir: string): Promise<string> {
  const final = join(outputDir, "runs_history.parquet");
  const manifestPath = join(outputDir, MANIFEST_NAME);
  const prev = await readManifest(manifestPath);
  const prints = await historyFingerprints(conn, filter);
  const full = await historySelect(conn, filter);
  const columns = await describe(conn, full);
  let select = full;
  let segmentDir: string | undefined;
  const projects = new Set(prints.map((p) => JSON.stringify([p.entity, p.project])));
  const st = await stat(final).catch(() => null);
  const canReuse =
    prev !== null &&
    st !== null &&
    st.size === prev.size &&
    st.mtimeMs === prev.mtimeMs &&
    projects.size === 1 &&
    JSON.stringify(prev.filter) === JSON.stringify(filter) &&
    JSON.stringify(prev.columns) === JSON.stringify(columns);
  const reused = (p: (typeof prints)[number]) => canReuse && prev.runs[p.key] === p.print;
  const segmentRows = Math.max(2048, Math.floor(SEGMENT_CELLS / Math.max(1, columns.length)));
  const totalRows = prints.reduce((a, p) => a + p.rows, 0);
  if (prints.some(reused) || (totalRows > segmentRows && projects.size === 1)) {
    // Runs in the file's order (prints come sorted by DuckDB), cut into segments of consecutive runs from the same
    // source (the previous file, or the archive in pieces of at most segmentRows rows), each segment written in
    // (run_id, step) order to a file of its own; the final file reads the segment files in order (a multi-file
    // scan keeps file order; a UNION ALL of the segments would not, and a sort of the wide rows would not fit the
    // budget). Old rows keep their exact values: every column is cast to the type a full export would give it.
    const cast = columns.map(([n, t]) => `CAST(${quoteIdent(n)} AS ${t}) AS ${quoteIdent(n)}`).join(", ");
    segmentDir = tempPathFor(join(outputDir, "runs_history"));
    await mkdir(segmentDir, { recursive: true });
    const segments: string[] = [];
    for (let i = 0; i < prints.length; ) {
      const fromOld = reused(prints[i]!);
      const ids: string[] = [];
      let rows = 0;
      while (
        i < prints.length &&
        reused(prints[i]!) === fromOld &&
        (fromOld || ids.length === 0 || rows + prints[i]!.rows <= segmentRows)
      ) {
        rows += prints[i]!.rows;
        ids.push(prints[i++]!.runId);
      }
      const part = fromOld
        ? `SELECT ${cast} FROM read_parquet(${quoteLiteral(final)}) WHERE run_id IN (${ids.map(quoteLiteral).join(", ")})`
        : await historySelect(conn, filter, { runIds: ids });
      segments.push(await copyToParquet(conn, part, segmentDir, `${String(segments.length).padStart(6, "0")}.parquet`));
    }
    select = `SELECT * FROM read_parquet([${segments.map(quoteLiteral).join(", ")}])`;
  }
  let written: string;
  try {
    written = await copyToParquet(conn, select, outputDir, "runs_history.parquet");
  } finally {
    if (segmentDir !== undefined) await rm(segmentDir, { recursive: true, force: true });
  }
  const now = await stat(written);
  const manifest: HistoryManifest = {
    version: 1,
    size: now.size,
    mtimeMs: now.mtimeMs,
    filter,
    columns,
    runs: Object.fromEntries(prints.map((p) => [p.key, p.print])),
  };
  const tmp = tempPathFor(manifestPath);
  await writeFile(tmp, JSON.stringify(manifest));
  await rename(tmp, manifestPath);
  return written;
}

/**
 * Writes runs_metadata.parquet, runs_metadata_{component}.parquet (6), runs_history.parquet and
 * runs_system_metrics.parquet into `outputDir`, for the runs of `entity`/`project` when given (else everything).
 */
export async function exportArchive(archive: Archive, opts: ArchiveExportOptions): Promise<{ files: string[] }> {
  // The hook is part of Archive; an object from plain JavaScript without it gets this error rather than a TypeError.
  if (!isDuckDBExportSource(archive as unknown)) {
    throw new ArchiveError("EXPORT", `the ${archive.kind} archive at ${archive.location} cannot be exported`);
  }
  const outputDir = resolve(opts.outputDir);
  await mkdir(outputDir, { recursive: true });
  await removeStaleExportTemps(outputDir);
  const filter: ExportFilter = {};
  if (opts.entity !== undefined) filter.entity = opts.entity;
  if (opts.project !== undefined) filter.project = opts.project;
  return archive.withDuckDBTables(filter, async (conn) => {
    // Row order is part of the files' contract (runs by creation, history by run and step, segments in file
    // order): the archive turns insertion order off for its writes; the export turns it back on.
    const order = String(
      (await conn.runAndReadAll("SELECT current_setting('preserve_insertion_order')")).getRows()[0]![0],
    );
    await conn.run("SET preserve_insertion_order = true");
    try {
      return await exportTables(conn, filter, outputDir, opts);
    } finally {
      await conn.run(`SET preserve_insertion_order = ${order === "true" ? "true" : "false"}`).catch(() => undefined);
    }
  });
}

async function exportTables(
  conn: DuckDBConnection,
  filter: ExportFilter,
  outputDir: string,
  opts: ArchiveExportOptions,
): Promise<{ files: string[] }> {
  const files: string[] = [];
  const where = whereClause(filter);
  const runOrder = "ORDER BY entity, project, created_at, run_id";
  const standard = RUN_STANDARD_COLUMNS.map((c) => quoteIdent(c));
  const otherScalars = RUN_SCALAR_COLUMNS.filter((c) => !(RUN_STANDARD_COLUMNS as readonly string[]).includes(c)).map(
    (c) => quoteIdent(c),
  );
  const components = RUN_JSON_COMPONENTS.map((c) => quoteIdent(c));
  const metaCols = [...standard, ...otherScalars, "tags", "deleted", ...components].join(", ");
  files.push(
    await copyToParquet(
      conn,
      `SELECT ${metaCols} FROM runs ${where} ${runOrder}`,
      outputDir,
      "runs_metadata.parquet",
      RUN_ROW_GROUP,
    ),
  );
  for (const c of RUN_JSON_COMPONENTS) {
    files.push(
      await copyToParquet(
        conn,
        `SELECT ${[...standard, quoteIdent(c)].join(", ")} FROM runs ${where} ${runOrder}`,
        outputDir,
        `runs_metadata_${c}.parquet`,
        RUN_ROW_GROUP,
      ),
    );
  }
  if (opts.partitioned) {
    files.push(await copyToPartitioned(conn, await historySelect(conn, filter, { partitionColumns: true }), outputDir));
  } else {
    files.push(await exportHistory(conn, filter, outputDir));
  }
  files.push(
    await copyToParquet(
      conn,
      `SELECT run_id, "timestamp", runtime, metrics FROM system_metrics ${where} ORDER BY entity, project, run_id, "timestamp"`,
      outputDir,
      "runs_system_metrics.parquet",
    ),
  );
  return { files };
}

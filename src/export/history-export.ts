/**
 * runs_history.parquet: the SELECT that flattens the stored history into one typed column per metric key
 * (historySelect), and its writing in segments of a few runs, reusing the previous file's rows of unchanged runs
 * (exportHistory, with the manifest beside the file).
 */
import { link, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { type ExportFilter, maskToKinds } from "../archive/index.js";
import { tempPathFor } from "../model/atomic-file.js";
import {
  type ColumnType,
  columnTypeFor,
  KIND_BITS,
  metricColumnNames,
  quoteIdent,
  quoteLiteral,
} from "../model/flatten.js";
import { HISTORY_FIXED_COLUMNS } from "../model/records.js";
import { doubleSql } from "../model/sql-json.js";
import { copyToParquet, describe, whereClause } from "./copy.js";

/** The JSON type each metric column is read as by json_transform (HUGEINT as text, cast afterwards). */
function transformType(type: ColumnType): string {
  return type === "HUGEINT" ? "VARCHAR" : type;
}

/** Kind bits of values stored in vals (history-split.ts): numbers; a null value reads as a missing one. */
const NUMBER_BITS = KIND_BITS.int | KIND_BITS.float | KIND_BITS.null;

/** The temporary table of each keyset's positions of the export's metric keys (built by historySelect). */
const KEYSET_MAP = "dr_wandb$keyset_map";

/**
 * The SELECT for runs_history.parquet: fixed columns, then one typed column per metric key, in the order of
 * (entity, project, run_id, step).
 *
 * Numbers are read from vals by position: a temporary table gives each keyset of the exported projects the list of
 * positions of the export's keys in it (NULL where it lacks one), joined to the rows before the sort; a key's value
 * is `vals[pm[j]]`, cast to the key's column type. Values in `rest` (strings, booleans, objects, big integers, and
 * every metric of rows stored before schema version 3) are parsed ONCE per row by json_transform into a typed
 * STRUCT whose fields are read by position (any key: dots, quotes, case variants, the empty key), only for the keys
 * that can be there, and only when some row has a rest. Memory is bounded by the width of one chunk of rows, not by
 * the table: the narrow stored rows are sorted first (spilling beyond the budget); DuckDB keeps the sorted order
 * through the projections above it (preserve_insertion_order, on by default), which test/e2e checks on the files.
 */
export async function historySelect(
  conn: DuckDBConnection,
  filter: ExportFilter,
  opts: { partitionColumns?: boolean; runIds?: readonly string[] } = {},
): Promise<string> {
  const reader = await conn.runAndReadAll(
    `SELECT key, bit_or(kinds)::INTEGER AS kinds FROM metric_keys ${whereClause(filter)} GROUP BY key ORDER BY key`,
  );
  const keys: { key: string; type: ColumnType; mask: number }[] = reader.getRows().map((r) => ({
    key: String(r[0]),
    type: columnTypeFor(maskToKinds(Number(r[1]))),
    mask: Number(r[1]),
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
  const rowsFrom = `SELECT * FROM history_rows ${where}`;
  if (keys.length === 0) return `SELECT ${fixed} FROM (${rowsFrom} ORDER BY entity, project, run_id, step)`;
  // Which keys can have values in vals (some keyset has them) and in rest (legacy rows: every key).
  const keyList = `[${keys.map((k) => quoteLiteral(k.key)).join(", ")}]::VARCHAR[]`;
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE ${quoteIdent(KEYSET_MAP)} AS
     SELECT entity, project, keyset, list_transform(${keyList}, lambda k: list_position(keys, k)) AS pm
     FROM history_keysets ${whereClause(filter)}`,
  );
  const inKeysets = new Set(
    (await conn.runAndReadAll(`SELECT DISTINCT unnest(keys) FROM history_keysets ${whereClause(filter)}`))
      .getRows()
      .map((r) => String(r[0])),
  );
  const restRows = (
    await conn.runAndReadAll(
      `SELECT count(*) FILTER (WHERE rest IS NOT NULL), count(*) FILTER (WHERE rest IS NOT NULL AND keyset IS NULL)
       FROM history_rows ${where}`,
    )
  ).getRows()[0] ?? [0, 0];
  const legacy = Number(restRows[1]) > 0;
  const inRest = (k: { mask: number }) => Number(restRows[0]) > 0 && (legacy || (k.mask & ~NUMBER_BITS) !== 0);
  const restKeys = keys.filter(inRest);
  const S = quoteIdent("dr_wandb$s");
  const restField = new Map(restKeys.map((k, i) => [k.key, `struct_extract_at(${S}, ${i + 1})`]));
  const exprs = keys.map((k, j) => {
    const alias = quoteIdent(names.get(k.key)!);
    const v = inKeysets.has(k.key) ? `vals[pm[${j + 1}]]` : null;
    const r = restField.get(k.key) ?? null;
    let typed: string | null = null;
    let rest: string | null = r;
    switch (k.type) {
      case "DOUBLE":
        typed = v;
        break;
      case "BIGINT":
        typed = v === null ? null : `CAST(${v} AS BIGINT)`;
        break;
      case "HUGEINT":
        // Parquet has no 128-bit integer (DuckDB would write DOUBLE): DECIMAL(38,0) keeps every digit.
        typed = v === null ? null : `CAST(${v} AS DECIMAL(38,0))`;
        rest = r === null ? null : `TRY_CAST(${r} AS DECIMAL(38,0))`;
        break;
      case "JSON":
        // a number as the JSON text the stored strict JSON of the row path gives (json_transform's own printing)
        typed = v === null ? null : `json_transform('{"v":' || (${doubleSql(v)}) || '}', '{"v":"JSON"}').v`;
        break;
      default:
        // BOOLEAN, VARCHAR: no number is ever among its values
        typed = null;
    }
    const parts = [typed, rest].filter((x): x is string => x !== null);
    const expr =
      parts.length === 0
        ? `CAST(NULL AS ${k.type === "HUGEINT" ? "DECIMAL(38,0)" : k.type})`
        : parts.length === 1
          ? parts[0]!
          : `coalesce(${parts.join(", ")})`;
    return `${expr} AS ${alias}`;
  });
  // Built as text, not with JSON.stringify of an object: that would move integer-like keys ("0", "10") to the
  // front and treat "__proto__" specially, and the fields are read by position.
  const structure = `{${restKeys.map((k) => `${JSON.stringify(k.key)}:${JSON.stringify(transformType(k.type))}`).join(",")}}`;
  const inner = [
    "entity",
    "project",
    ...HISTORY_FIXED_COLUMNS.map((c) => quoteIdent(c)),
    "vals",
    "pm",
    ...(restKeys.length > 0 ? [`json_transform(rest, ${quoteLiteral(structure)}) AS ${S}`] : []),
  ].join(", ");
  const sorted = `SELECT h.*, m.pm FROM (${rowsFrom}) h LEFT JOIN ${quoteIdent(KEYSET_MAP)} m
    ON m.entity = h.entity AND m.project = h.project AND m.keyset = h.keyset
    ORDER BY h.entity, h.project, h.run_id, h.step`;
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

export const MANIFEST_NAME = ".runs_history.manifest.json";

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
            bit_xor(hash(step, "timestamp", runtime, CAST(wandb_metadata AS VARCHAR), keyset, vals,
                         CAST(rest AS VARCHAR), CAST(extra AS VARCHAR)))::VARCHAR AS h
     FROM history_rows ${whereClause(filter)} GROUP BY entity, project, run_id ORDER BY entity, project, run_id`,
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
export function segmentCells(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DR_WANDB_EXPORT_SEGMENT_CELLS ?? 4_000_000);
  return Number.isFinite(n) && n > 0 ? n : 4_000_000;
}

/** A second name for `file` (a hard link; a symbolic link where the file system has none). */
async function linkTo(file: string, path: string): Promise<string> {
  await link(file, path).catch(() => symlink(file, path));
  return path;
}

/** A column name that none of `columns` has (for the scan's file-name column). */
function freeName(columns: readonly [string, string][], base: string): string {
  const taken = new Set(columns.map(([n]) => n.toLowerCase()));
  let name = base;
  while (taken.has(name.toLowerCase())) name += "$";
  return name;
}

/**
 * The rows of the pieces in order: segment files whole, links to the previous file filtered to their runs. A column
 * the scan reads with another type than a full export gives it (e.g. JSON read back as VARCHAR) is cast to that
 * type; the others are read as they are (a cast of every cell costs as much as the rest of the copy).
 */
async function piecesSelect(
  conn: DuckDBConnection,
  pieces: { path: string; ids: string[] | null }[],
  columns: [string, string][],
): Promise<string> {
  const file = freeName(columns, "dr_wandb$file");
  const kept = pieces.filter((p) => p.ids !== null);
  const files = `[${pieces.map((p) => quoteLiteral(p.path)).join(", ")}]`;
  const from =
    kept.length === 0 ? `read_parquet(${files})` : `read_parquet(${files}, filename = ${quoteLiteral(file)})`;
  const read = new Map(await describe(conn, `SELECT * FROM ${from}`));
  const list = columns
    .map(([n, t]) => (read.get(n) === t ? quoteIdent(n) : `CAST(${quoteIdent(n)} AS ${t}) AS ${quoteIdent(n)}`))
    .join(", ");
  if (kept.length === 0) return `SELECT ${list} FROM ${from}`;
  // run_id bounds first: the previous file is sorted by run_id, so its row groups outside a piece are skipped.
  const whens = kept.map((p) => {
    const ids = p.ids!;
    const lo = quoteLiteral(ids[0]!);
    const hi = quoteLiteral(ids[ids.length - 1]!);
    const inList = ids.map(quoteLiteral).join(", ");
    return `WHEN ${quoteLiteral(p.path)} THEN run_id >= ${lo} AND run_id <= ${hi} AND run_id IN (${inList})`;
  });
  return `SELECT ${list} FROM ${from} WHERE CASE ${quoteIdent(file)} ${whens.join(" ")} ELSE true END`;
}

/**
 * Writes runs_history.parquet. When the previous export of the same filter left a manifest that still matches its
 * file and the columns are unchanged, the rows of runs whose stored history is unchanged are copied from the
 * previous file (read in place, written once) and only the other runs are flattened from the archive's JSON; the
 * file is rewritten whole (same content as a full export), or kept as it is when no run changed. Only for one
 * entity/project (the file has no entity/project columns).
 */
export async function exportHistory(conn: DuckDBConnection, filter: ExportFilter, outputDir: string): Promise<string> {
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
  // Nothing changed since the previous export (same runs, rows, columns and filter): that file is this export.
  if (canReuse && prints.length === Object.keys(prev.runs).length && prints.every(reused)) return final;
  const segmentRows = Math.max(2048, Math.floor(segmentCells() / Math.max(1, columns.length)));
  const totalRows = prints.reduce((a, p) => a + p.rows, 0);
  if (prints.some(reused) || (totalRows > segmentRows && projects.size === 1)) {
    // Runs in the file's order (prints come sorted by DuckDB), cut into pieces of consecutive runs from the same
    // source. Runs flattened from the archive are written in (run_id, step) order to segment files of at most
    // segmentRows rows (a sort of the wide rows of the whole archive would not fit the budget); runs kept from the
    // previous file are read from it in place, through a link per piece (the new file is written under a temp name,
    // so the old one stays readable until the rename). The final file is one multi-file scan of the pieces in order
    // (it keeps file order; a UNION ALL would not), each piece filtered to its runs by the scan's file-name column.
    // Old rows keep their exact values: a column the scan reads with another type is cast to a full export's.
    segmentDir = tempPathFor(join(outputDir, "runs_history"));
    await mkdir(segmentDir, { recursive: true });
    const pieces: { path: string; ids: string[] | null }[] = [];
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
      const name = `${String(pieces.length).padStart(6, "0")}.parquet`;
      if (fromOld) pieces.push({ path: await linkTo(final, join(segmentDir, name)), ids });
      else
        pieces.push({
          path: await copyToParquet(conn, await historySelect(conn, filter, { runIds: ids }), segmentDir, name),
          ids: null,
        });
    }
    select = await piecesSelect(conn, pieces, columns);
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

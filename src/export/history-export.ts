/**
 * runs_history.parquet (exportHistory, with the manifest beside the file): the stored history flattened by
 * historySelect (history-select.ts), written in segments of a few runs, reusing the previous file's rows of
 * unchanged runs.
 */
import { link, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { ExportFilter } from "../archive/index.js";
import { tempPathFor } from "../model/atomic-file.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import { copyToParquet, describe, whereClause } from "./copy.js";
import { historySelect } from "./history-select.js";

export { historySelect } from "./history-select.js";

/**
 * What the last runs_history.parquet holds, so that the next export copies the rows of unchanged runs from it
 * (a columnar copy) instead of flattening them again: the file's size and mtime (a file changed by anything
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

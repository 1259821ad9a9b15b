/**
 * runs_history.parquet (exportHistory): a folder of Parquet files, one dataset that pandas, polars, pyarrow, DuckDB
 * and Spark read as one table (`pd.read_parquet("runs_history.parquet")`). Each part file holds whole runs, each
 * run's rows in step order; all parts have the same columns. An export rewrites only the parts holding a run whose
 * stored history changed since the previous export (history_versions), and keeps the others (hard links, no bytes
 * copied); the manifest beside the folder says which runs each part holds. Runs still running are kept in parts of
 * their own, so that the runs that change from sync to sync are rewritten without the finished ones.
 */
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { ArchiveError, type ExportFilter, firstLine } from "../archive/index.js";
import { tempPathFor } from "../model/atomic-file.js";
import { copyToParquet, describe, whereClause } from "./copy.js";
import { planHistory, selectHistory } from "./history-select.js";

export { historySelect } from "./history-select.js";

/** The history dataset's folder name (the original's file name: readers take the folder for the file). */
export const HISTORY_NAME = "runs_history.parquet";
export const MANIFEST_NAME = ".runs_history.manifest.json";

interface PartEntry {
  name: string;
  size: number;
  mtimeMs: number;
  /** Run keys (JSON of entity, project, run_id) of the part, in its order. */
  runs: string[];
  rows: number;
}

/** What the last export wrote: its filter and columns, its parts, and each run's `rows:version` then. */
interface HistoryManifest {
  version: 2;
  filter: ExportFilter;
  columns: [string, string][];
  parts: PartEntry[];
  runs: Record<string, string>;
  /** The number the next new part is named with. */
  next: number;
}

interface RunPrint {
  key: string;
  runId: string;
  rows: number;
  print: string;
  live: boolean;
}

async function readManifest(path: string): Promise<HistoryManifest | null> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as HistoryManifest;
    if (m?.version !== 2 || !Array.isArray(m.parts) || typeof m.runs !== "object" || m.runs === null) return null;
    if (!Number.isSafeInteger(m.next) || m.next < 0) return null;
    // Only names this export writes: a part named otherwise (a path out of the folder) makes the manifest void.
    if (!m.parts.every((p) => typeof p?.name === "string" && PART_NAME.test(p.name) && Array.isArray(p.runs)))
      return null;
    return m;
  } catch {
    return null;
  }
}

/**
 * Per run of the export (in entity, project, run_id order): its row count, `rows:version` (history_versions: a new
 * token at every write of the run's history; "-" for a run not written since schema version 4) and whether it is
 * still running. Reads no history value: a count per run.
 */
async function runPrints(conn: DuckDBConnection, filter: ExportFilter): Promise<RunPrint[]> {
  const r = await conn.runAndReadAll(
    `SELECT h.entity, h.project, h.run_id, h.n, coalesce(v.version, '-'), coalesce(r.state = 'running', false)
     FROM (SELECT entity, project, run_id, count(*) AS n FROM history_rows ${whereClause(filter)}
           GROUP BY entity, project, run_id) h
     LEFT JOIN history_versions v ON v.entity = h.entity AND v.project = h.project AND v.run_id = h.run_id
     LEFT JOIN runs r ON r.entity = h.entity AND r.project = h.project AND r.run_id = h.run_id
     ORDER BY h.entity, h.project, h.run_id`,
  );
  return r.getRows().map((row) => ({
    key: JSON.stringify([String(row[0]), String(row[1]), String(row[2])]),
    runId: String(row[2]),
    rows: Number(row[3]),
    print: `${row[3]}:${row[4]}`,
    live: row[5] === true,
  }));
}

/**
 * Cells (rows x columns) of one part file: runs are grouped into parts of about this size (a single larger run is a
 * part of its own), each sorted by (run_id, step) within DuckDB's export budget (parts of 4M cells ran out of 64
 * MiB; 2M fit it). DR_WANDB_EXPORT_SEGMENT_CELLS, read at each export.
 */
export function segmentCells(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.DR_WANDB_EXPORT_SEGMENT_CELLS ?? 2_000_000);
  return Number.isFinite(n) && n > 0 ? n : 2_000_000;
}

/** Small parts (below a quarter of a part's size) kept before they are merged into new parts. */
const SMALL_PARTS = 32;

function partName(n: number): string {
  return `part-${String(n).padStart(8, "0")}.parquet`;
}

/** The names partName gives. */
const PART_NAME = /^part-(\d{8,})\.parquet$/;

/** Groups runs into parts of at most `rows` rows (whole runs), finished runs and running runs apart. */
function groupRuns(runs: RunPrint[], rows: number): RunPrint[][] {
  const out: RunPrint[][] = [];
  for (const live of [false, true]) {
    let cur: RunPrint[] = [];
    let n = 0;
    for (const r of runs) {
      if (r.live !== live) continue;
      if (cur.length > 0 && n + r.rows > rows) {
        out.push(cur);
        cur = [];
        n = 0;
      }
      cur.push(r);
      n += r.rows;
    }
    if (cur.length > 0) out.push(cur);
  }
  return out;
}

/** The parts of the previous export that can stay as they are (files unchanged, every run's history unchanged). */
async function keptParts(
  prev: HistoryManifest | null,
  final: string,
  filter: ExportFilter,
  columns: [string, string][],
  prints: Map<string, RunPrint>,
  partRows: number,
): Promise<PartEntry[]> {
  if (prev === null) return [];
  if (
    JSON.stringify(prev.filter) !== JSON.stringify(filter) ||
    JSON.stringify(prev.columns) !== JSON.stringify(columns)
  )
    return [];
  const kept: PartEntry[] = [];
  for (const part of prev.parts) {
    const st = await stat(join(final, part.name)).catch(() => null);
    if (st === null || st.size !== part.size || st.mtimeMs !== part.mtimeMs) return []; // changed by something else
    if (part.runs.every((k) => prints.get(k)?.print === prev.runs[k])) kept.push(part);
  }
  // Many small parts (left by runs that finished, one export at a time) are merged into new ones.
  const small = kept.filter((p) => p.rows < partRows / 4);
  return small.length > SMALL_PARTS ? kept.filter((p) => !small.includes(p)) : kept;
}

/**
 * True if the folder holds the parts and nothing else: a file put there by something else (a copy of a part would
 * be read as more rows) makes the export rebuild the folder from the manifest's parts.
 */
async function holdsOnly(folder: string, parts: PartEntry[]): Promise<boolean> {
  const names = await readdir(folder).catch(() => null);
  return names !== null && names.length === parts.length && parts.every((p) => names.includes(p.name));
}

/**
 * Writes the runs_history.parquet folder: the previous export's parts whose runs are unchanged are kept (linked into
 * the new folder), the other runs are written to new parts; the folder replaces the previous one (or a file of that
 * name from an older dr-wandb) whole. Nothing is written when no run changed and the folder holds only its parts.
 */
export async function exportHistory(conn: DuckDBConnection, filter: ExportFilter, outputDir: string): Promise<string> {
  const final = join(outputDir, HISTORY_NAME);
  const manifestPath = join(outputDir, MANIFEST_NAME);
  const prev = await readManifest(manifestPath);
  const prints = await runPrints(conn, filter);
  const byKey = new Map(prints.map((p) => [p.key, p]));
  const plan = await planHistory(conn, filter);
  const columns = await describe(conn, selectHistory(plan, { runIds: [] }));
  const partRows = Math.max(1, Math.floor(segmentCells() / Math.max(1, columns.length)));
  const st = await stat(final).catch(() => null);
  const kept = st?.isDirectory() ? await keptParts(prev, final, filter, columns, byKey, partRows) : [];
  const keptRuns = new Set(kept.flatMap((p) => p.runs));
  const todo = prints.filter((p) => !keptRuns.has(p.key));
  if (
    prev !== null &&
    kept.length === prev.parts.length &&
    todo.length === 0 &&
    keptRuns.size === prints.length &&
    (await holdsOnly(final, kept))
  ) {
    return final; // nothing changed since the previous export
  }
  const tmp = tempPathFor(final);
  const old = tempPathFor(final, "old");
  // New parts are numbered after every kept one (whatever the manifest's `next` says).
  let next = kept.reduce(
    (n, p) => Math.max(n, Number(PART_NAME.exec(p.name)![1]) + 1),
    kept.length > 0 ? prev!.next : 0,
  );
  const parts: PartEntry[] = [...kept];
  try {
    await mkdir(tmp, { recursive: true });
    // a hard link (no bytes copied); a copy where the file system has none
    for (const p of kept) {
      await link(join(final, p.name), join(tmp, p.name)).catch(() => copyFile(join(final, p.name), join(tmp, p.name)));
    }
    const groups = groupRuns(todo, partRows);
    // An export without history still has one (empty) part: the dataset's columns.
    if (groups.length === 0 && kept.length === 0) groups.push([]);
    for (const g of groups) {
      const name = partName(next++);
      await copyToParquet(conn, selectHistory(plan, { runIds: g.map((r) => r.runId) }), tmp, name);
      parts.push({ name, size: 0, mtimeMs: 0, runs: g.map((r) => r.key), rows: g.reduce((a, r) => a + r.rows, 0) });
    }
    if (st !== null) await rename(final, old);
    await rename(tmp, final);
    await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError("EXPORT", `writing ${final}: ${firstLine(e)}`, { cause: e });
  }
  for (const p of parts) {
    const s = await stat(join(final, p.name));
    p.size = s.size;
    p.mtimeMs = s.mtimeMs;
  }
  const manifest: HistoryManifest = {
    version: 2,
    filter,
    columns,
    parts,
    runs: Object.fromEntries(prints.map((p) => [p.key, p.print])),
    next,
  };
  const tmpManifest = tempPathFor(manifestPath);
  await writeFile(tmpManifest, JSON.stringify(manifest));
  await rename(tmpManifest, manifestPath);
  return final;
}

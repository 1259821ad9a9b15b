/**
 * Everything dr-wandb reads for one run beyond its listing: metadata file, history, system metrics, files.
 * Shared by the archive sync and the download command.
 */
import { mkdir, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Archive } from "../archive/index.js";
import type { JsonObject } from "../model/json.js";
import {
  type FileRecord,
  type HistoryRecord,
  type SystemMetricsRecord,
  toHistoryRecord,
  toSystemMetricsRecord,
} from "../model/records.js";
import { WandbError } from "../wandb/errors.js";
import type { ParquetHistoryFiles, WandbApi, WandbFile, WandbRun } from "../wandb/types.js";
import type { WeightedSemaphore } from "./concurrency.js";
import { HistorySpool, SPOOL_MEMORY_CELLS } from "./spool.js";

/** What history to read, shared by every run of a sync (the user's selection). */
export interface HistorySelection {
  /** Only these metric keys. */
  keys?: string[];
  minStep?: number;
  /** Exclusive upper bound. */
  maxStep?: number;
  /** Sampled history of about this many rows instead of the full history. */
  samples?: number;
}

export function selectionKey(sel: HistorySelection): string {
  return JSON.stringify({
    keys: sel.keys && sel.keys.length > 0 ? [...sel.keys].sort() : null,
    minStep: sel.minStep ?? null,
    maxStep: sel.maxStep ?? null,
    samples: sel.samples ?? null,
  });
}

export const METADATA_FILE = "wandb-metadata.json";

/** The run's wandb-metadata.json ({} when it has none); read from the listing's signed URL when the listing had it. */
export async function fetchMetadata(api: WandbApi, run: WandbRun): Promise<JsonObject> {
  const listed = run.files ? (run.files.find((f) => f.name === METADATA_FILE) ?? null) : undefined;
  return (await api.fetchJsonFile(run.entity, run.project, run.name, METADATA_FILE, listed)) ?? {};
}

export interface HistoryFetch {
  /** The rows in step order: in memory up to SPOOL_MEMORY_CELLS, then on disk. Close it once written. */
  batches: HistorySpool;
  /**
   * With `columnar`: parquet exports taken as files instead of rows (their steps precede the batches'); counted in
   * `rows` and `maxStep`. Release them once written (`releaseHistory`).
   */
  parquet: ParquetHistoryFiles[];
  rows: number;
  /**
   * Highest step the read covered, or -1: the highest row's step, or with a history selection the run's last step
   * (rows past --max-step, lacking a --history-keys key or left out of a sample are not missing), so that an
   * unchanged run does not look like it has steps still to read.
   */
  maxStep: number;
  /** Gives back the memory budget the read reserved (see `budget`); releaseHistory calls it. */
  release?: () => void;
}

export interface FetchHistoryOptions {
  columnar?: boolean;
  /**
   * The cells of history in flight across runs (see HISTORY_CELL_BUDGET): reserved after the run's export check,
   * before its exports are downloaded or its rows held in memory (a run whose history is all taken as files still
   * takes its share until written: that bounds the downloads and writes queued at once), and given back by
   * releaseHistory. Only for callers that write runs in any order (a reader waiting for the budget while the runs
   * holding it wait to be written in order would never finish).
   */
  budget?: WeightedSemaphore;
}

/** Reads a run's history (from `fromStep`) into batches of records, in step order. */
export async function fetchHistory(
  api: WandbApi,
  run: WandbRun,
  fromStep: number,
  sel: HistorySelection,
  signal?: AbortSignal,
  options: FetchHistoryOptions = {},
): Promise<HistoryFetch> {
  const parquet: ParquetHistoryFiles[] = [];
  const held = { release: () => {} };
  const reserve = options.budget
    ? async (steps: number) => {
        const release = await options.budget!.acquire(cellsFor(run, steps, sel));
        held.release = release;
      }
    : undefined;
  try {
    const h = await readHistory(api, run, fromStep, sel, parquet, signal, options.columnar ?? false, reserve);
    return { ...h, release: held.release };
  } catch (e) {
    held.release();
    await Promise.all(parquet.map((f) => f.release()));
    throw e;
  }
}

/** Closes a fetch's spool and removes the parquet files it took. */
export async function releaseHistory(h: HistoryFetch): Promise<void> {
  h.batches.close();
  h.release?.();
  await Promise.all(h.parquet.map((f) => f.release()));
}

async function readHistory(
  api: WandbApi,
  run: WandbRun,
  fromStep: number,
  sel: HistorySelection,
  parquet: ParquetHistoryFiles[],
  signal: AbortSignal | undefined,
  columnar: boolean,
  reserve: ((steps: number) => Promise<void>) | undefined,
): Promise<HistoryFetch> {
  const batches = new HistorySpool();
  let rows = 0;
  let maxStep = -1;
  const take = (raw: JsonObject[], lo = Number.NEGATIVE_INFINITY, hi = Number.POSITIVE_INFINITY) => {
    const batch: HistoryRecord[] = [];
    for (const r of raw) {
      const rec = toHistoryRecord(run.name, r);
      if (!rec || rec.step < lo || rec.step >= hi) continue;
      batch.push(rec);
      if (rec.step > maxStep) maxStep = rec.step;
    }
    if (batch.length > 0) {
      batches.add(batch);
      rows += batch.length;
    }
  };
  if (run.lastHistoryStep < 0) return { batches, parquet, rows, maxStep };
  // A selective read covers the run through its last step even when its last rows are not stored: steps past
  // --max-step are not wanted, rows lacking a --history-keys key or left out of a sample are not missing.
  const selective =
    (sel.keys !== undefined && sel.keys.length > 0) ||
    sel.samples !== undefined ||
    sel.minStep !== undefined ||
    sel.maxStep !== undefined;
  const done = (): HistoryFetch => ({
    batches,
    parquet,
    rows,
    maxStep: selective ? Math.max(maxStep, run.lastHistoryStep) : maxStep,
  });
  const minStep = Math.max(fromStep, sel.minStep ?? 0);
  const maxExclusive = Math.min(sel.maxStep ?? Number.POSITIVE_INFINITY, run.lastHistoryStep + 1);
  if (minStep >= maxExclusive) return done();
  if (sel.samples !== undefined) {
    // A sample of the whole run; an append (a running run's new steps) keeps only the rows past the stored ones.
    await reserve?.(sel.samples);
    take(
      await api.sampledHistory(run.entity, run.project, run.name, { keys: sel.keys, samples: sel.samples }),
      minStep,
      sel.maxStep,
    );
    return done();
  }
  for await (const page of api.scanHistory(run.entity, run.project, run.name, {
    minStep,
    maxStep: Number.isFinite(maxExclusive) ? maxExclusive : undefined,
    lastStep: run.lastHistoryStep,
    historyKeys: run.historyKeys,
    keys: sel.keys && sel.keys.length > 0 ? sel.keys : undefined,
    takeParquet: columnar
      ? (files) => {
          parquet.push(files);
          rows += files.rows;
          if (files.lastStep > maxStep) maxStep = files.lastStep;
          return true;
        }
      : undefined,
    beforeRows: reserve,
    signal,
  })) {
    take(page);
  }
  return done();
}

export async function fetchSystemMetrics(
  api: WandbApi,
  run: WandbRun,
  samples: number,
): Promise<SystemMetricsRecord[]> {
  const rows = await api.systemEvents(run.entity, run.project, run.name, samples);
  return rows.map((r) => toSystemMetricsRecord(run.name, r));
}

export interface FileOptions {
  /** The output folder; files go under <outputDir>/files/<entity>/<project>/<run_id>/. */
  outputDir: string;
  pattern?: string;
  maxFileSize?: number;
}

/**
 * Resolves a server-supplied file name under `base`, or returns null when it could escape it
 * (absolute paths, `..` segments, NUL bytes, empty names). Names from the server are untrusted.
 */
export function safeLocalPath(base: string, name: string): string | null {
  if (name.length === 0 || name.includes("\0") || isAbsolute(name) || /^[a-zA-Z]:/.test(name)) return null;
  const parts = name.split(/[\\/]+/);
  if (parts.some((p) => p === ".." || p === "")) return null;
  const full = resolve(base, ...parts);
  const rel = relative(resolve(base), full);
  if (rel.startsWith("..") || isAbsolute(rel) || rel === "") return null;
  return full;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export interface FilesFetch {
  records: FileRecord[];
  downloaded: number;
  skipped: number;
  warnings: string[];
}

/** Lists a run's files and downloads each new or changed one (size and md5 checked; resumed when partial). */
export async function fetchFiles(
  api: WandbApi,
  run: WandbRun,
  opts: FileOptions,
  known: Map<string, FileRecord> | undefined,
): Promise<FilesFetch> {
  const runDir = join(opts.outputDir, "files", run.entity, run.project, run.name);
  const out: FilesFetch = { records: [], downloaded: 0, skipped: 0, warnings: [] };
  const files: WandbFile[] = [];
  for await (const page of api.listFiles(run.entity, run.project, run.name, { pattern: opts.pattern })) {
    files.push(...page);
  }
  for (const f of files) {
    const base: FileRecord = {
      entity: run.entity,
      project: run.project,
      run_id: run.name,
      name: f.name,
      size: f.sizeBytes,
      md5: f.md5,
      updated_at: f.updatedAt,
      local_path: null,
    };
    const dest = safeLocalPath(runDir, f.name);
    if (dest === null) {
      out.warnings.push(`run ${run.name}: file name ${JSON.stringify(f.name)} is unsafe; not downloaded`);
      out.records.push(base);
      continue;
    }
    const relPath = relative(opts.outputDir, dest).split(sep).join("/");
    if (opts.maxFileSize !== undefined && f.sizeBytes > opts.maxFileSize) {
      out.skipped++;
      out.records.push(base);
      continue;
    }
    const prev = known?.get(f.name);
    const current = await sizeOf(dest);
    if (
      prev &&
      prev.local_path === relPath &&
      prev.md5 === f.md5 &&
      prev.size === f.sizeBytes &&
      current === f.sizeBytes
    ) {
      out.skipped++;
      out.records.push({ ...base, local_path: relPath });
      continue;
    }
    await mkdir(resolve(dest, ".."), { recursive: true });
    const partial = current !== null || (await sizeOf(`${dest}.part`)) !== null;
    try {
      try {
        await api.downloadFile(f, dest, { resume: true });
      } catch (e) {
        // A partial file that was not a prefix of this one fails the size or md5 check after resuming (and is
        // deleted by the failed attempt): fetch the file once more from its start instead of failing the sync.
        if (!partial || !isFileMismatch(e)) throw e;
        await api.downloadFile(f, dest, { resume: false });
      }
    } catch (e) {
      // The file changed on W&B since it was listed (a running run's output.log), or it vanished: record it without
      // a local copy and say so; the next sync fetches it again. Anything else (auth, network) fails the sync.
      if (!isFileMismatch(e) && !(e instanceof WandbError && e.code === "NOT_FOUND")) throw e;
      out.warnings.push(`run ${run.name}: file ${JSON.stringify(f.name)} not downloaded: ${(e as Error).message}`);
      out.records.push(base);
      continue;
    }
    out.downloaded++;
    out.records.push({ ...base, local_path: relPath });
  }
  return out;
}

/** A download whose size or md5 did not match what W&B listed. */
function isFileMismatch(e: unknown): boolean {
  return e instanceof WandbError && e.code === "PROTOCOL" && !e.transient;
}

/** History cells (rows × keys) buffered in memory at once, across runs fetched in parallel. */
export const HISTORY_CELL_BUDGET = Number(process.env.DR_WANDB_MAX_BUFFERED_CELLS ?? 3_000_000);

/** The file rows the archive holds for a project, by run and name (what fetchFiles need not download again). */
export async function loadKnownFiles(
  archive: Archive,
  entity: string,
  project: string,
): Promise<Map<string, Map<string, FileRecord>>> {
  const out = new Map<string, Map<string, FileRecord>>();
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const res = await archive.query(
    `SELECT run_id, name, size, md5, updated_at, local_path FROM files WHERE entity = ${q(entity)} AND project = ${q(project)}`,
  );
  for (const row of res.rows) {
    const [run_id, name, size, md5, updated_at, local_path] = row as [string, string, unknown, string, string, string];
    let m = out.get(run_id);
    if (!m) {
      m = new Map();
      out.set(run_id, m);
    }
    m.set(name, { entity, project, run_id, name, size: Number(size), md5, updated_at, local_path });
  }
  return out;
}

/** An estimate of the cells a run's history read will buffer (for the memory budget). */
export function estimateCells(run: WandbRun, fromStep: number, sel: HistorySelection): number {
  if (run.lastHistoryStep < 0) return 0;
  return cellsFor(run, sel.samples ?? run.lastHistoryStep + 1 - fromStep, sel);
}

/** The cells of at most `steps` rows of the run (at most its row count), capped where the spool goes to disk. */
function cellsFor(run: WandbRun, steps: number, sel: HistorySelection): number {
  const rows = Math.max(0, Math.min(run.historyLineCount ?? Number.MAX_SAFE_INTEGER, steps));
  const hk = run.historyKeys as { keys?: Record<string, unknown> } | null;
  const keys = sel.keys?.length ?? Math.max(1, Object.keys(hk?.keys ?? {}).length);
  // Beyond SPOOL_MEMORY_CELLS a run's rows wait on disk, not in memory.
  return Math.min(rows * keys, SPOOL_MEMORY_CELLS);
}

/** createdAt ranges listed at once after a project's first Runs page (see ListRunsOptions.parallel). */
export const LIST_RANGES = 8;

/**
 * Runs processed at once when the caller gave no --concurrency: 32. With histories, the cell budget
 * (HISTORY_CELL_BUDGET) bounds how many large histories are held at once, and the rate governor paces the requests;
 * many small reads in flight together (running runs' new steps) let the client combine them into few requests.
 * Without histories each run costs at most its wandb-metadata.json: plain file GETs off the GraphQL rate limit.
 */
export function defaultRunConcurrency(_withHistory: boolean): number {
  return 32;
}

/**
 * Everything dr-wandb reads for one run beyond its listing: metadata file, history, system metrics (files:
 * fetch-files.ts), and the history budget. Shared by the archive sync and the download command.
 */

import { envSetting } from "../model/env-setting.js";
import type { JsonObject } from "../model/json.js";
import {
  type HistoryRecord,
  type SystemMetricsRecord,
  toHistoryRecord,
  toSystemMetricsRecord,
} from "../model/records.js";
import type { ParquetHistoryFiles, WandbApi, WandbRun } from "../wandb/types.js";
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
  const { budget } = options;
  const held = { release: () => {} };
  const reserve = budget
    ? async (steps: number) => {
        held.release = await budget.acquire(cellsFor(run, steps, sel));
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

/** History cells (rows × keys) buffered in memory at once, across runs fetched in parallel. */
export const HISTORY_CELL_BUDGET = Number(envSetting(process.env, "DR_WANDB_MAX_BUFFERED_CELLS") ?? 3_000_000);

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

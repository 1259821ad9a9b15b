/**
 * The `wandb-download` job: every run of a project (and its history) into one set of files, streamed in listing
 * order. Runs are fetched several at once but written in order; files appear whole or not at all.
 */
import { type DownloadFormat, openProjectWriter } from "../output/writer.js";
import type { WandbApi, WandbRun } from "../wandb/types.js";
import { orderedMap, readAhead, WeightedSemaphore } from "./concurrency.js";
import {
  defaultRunConcurrency,
  estimateCells,
  fetchHistory,
  fetchMetadata,
  fetchSystemMetrics,
  HISTORY_CELL_BUDGET,
  type HistorySelection,
  LIST_RANGES,
  METADATA_FILE,
  releaseHistory,
} from "./fetch-run.js";
import { RECORD_CONCURRENCY } from "./pipeline.js";
import { toRunRecord } from "./run-record.js";
import { buildFilters, type RunSelection } from "./selection.js";
import { HistorySpool } from "./spool.js";
import { SweepCache } from "./sweeps.js";

export interface DownloadOptions {
  entity: string;
  project: string;
  outputDir: string;
  format: DownloadFormat;
  withHistory: boolean;
  perPage?: number;
  concurrency?: number;
  /** Fetch each run's wandb-metadata.json (the original did). Default true. */
  metadata?: boolean;
  systemMetrics?: boolean;
  systemMetricsSamples?: number;
  runs?: RunSelection;
  history?: HistorySelection;
  onEvent?: (e: DownloadEvent) => void;
  signal?: AbortSignal;
}

export type DownloadEvent =
  | { type: "listing"; runCount: number }
  | { type: "run"; index: number; total: number; run: string; displayName: string | null; historyRows: number }
  | { type: "written"; files: string[] }
  | { type: "warning"; message: string };

export interface DownloadResult {
  entity: string;
  project: string;
  runCount: number;
  runs: number;
  historyRows: number;
  files: string[];
}

/**
 * The new runs of each page, deduplicated and cut at --max-runs (no page is asked for past it); `onCount` gets W&B's
 * run count from the first page.
 */
async function* listPages(
  api: WandbApi,
  opts: DownloadOptions,
  filters: ReturnType<typeof buildFilters>,
  onCount: (runCount: number) => void,
): AsyncGenerator<WandbRun[]> {
  const seen = new Set<string>();
  const max = opts.runs?.maxRuns;
  let counted = false;
  for await (const page of api.listRuns(opts.entity, opts.project, {
    filters,
    order: "+created_at",
    perPage: opts.perPage ?? 500,
    // after the first page, createdAt ranges listed at once where the server keeps to them (--max-runs keeps the
    // oldest runs first, so it lists serially)
    parallel: opts.runs?.maxRuns === undefined ? LIST_RANGES : 1,
    // each run's metadata file's signed URL, when the server allows (no per-run API request)
    ...(opts.metadata === false ? {} : { files: [METADATA_FILE] }),
    signal: opts.signal,
  })) {
    if (!counted) {
      counted = true;
      onCount(page.runCount);
    }
    const fresh: WandbRun[] = [];
    for (const run of page.runs) {
      if (seen.has(run.name)) continue;
      if (max !== undefined && seen.size >= max) break;
      seen.add(run.name);
      fresh.push(run);
    }
    yield fresh;
    if (max !== undefined && seen.size >= max) return;
  }
  if (!counted) onCount(0);
}

/** Every listed run, the next page listed while this one's runs are fetched. */
async function* listAll(
  api: WandbApi,
  opts: DownloadOptions,
  filters: ReturnType<typeof buildFilters>,
  onCount: (runCount: number) => void,
) {
  for await (const runs of readAhead(listPages(api, opts, filters, onCount))) yield* runs;
}

export async function downloadProject(api: WandbApi, opts: DownloadOptions): Promise<DownloadResult> {
  const filters = buildFilters(opts.runs);
  // W&B's count comes with every Runs page: known (and announced) once the first page is in.
  let runCount = 0;
  let total = 0;
  const onCount = (n: number) => {
    runCount = n;
    total = opts.runs?.maxRuns !== undefined ? Math.min(n, opts.runs.maxRuns) : n;
    opts.onEvent?.({ type: "listing", runCount: total });
  };
  const writer = await openProjectWriter({
    format: opts.format,
    outputDir: opts.outputDir,
    entity: opts.entity,
    project: opts.project,
    withHistory: opts.withHistory,
    withSystemMetrics: opts.systemMetrics ?? false,
  });
  let runs = 0;
  let historyRows = 0;
  // Runs are fetched in parallel but written in order: bound the histories waiting in memory.
  const budget = new WeightedSemaphore(HISTORY_CELL_BUDGET);
  // Each distinct sweep is read once (one warning if it cannot be), whatever the number of its runs.
  const sweeps = new SweepCache(api, (message) => opts.onEvent?.({ type: "warning", message }));
  try {
    const concurrency =
      opts.concurrency ??
      (opts.withHistory || opts.systemMetrics ? defaultRunConcurrency(opts.withHistory) : RECORD_CONCURRENCY);
    const fetched = orderedMap(listAll(api, opts, filters, onCount), concurrency, async (run: WandbRun) => {
      const release = opts.withHistory ? await budget.acquire(estimateCells(run, 0, opts.history ?? {})) : () => {};
      const metadata = opts.metadata === false ? {} : await fetchMetadata(api, run);
      const sweep = run.sweepName ? await sweeps.get(run.entity, run.project, run.sweepName) : null;
      const history = opts.withHistory
        ? // A writer that reads parquet exports itself gets them as files, not rows.
          await fetchHistory(api, run, 0, opts.history ?? {}, opts.signal, { columnar: writer.takesParquet })
        : { batches: new HistorySpool(), parquet: [], rows: 0, maxStep: -1 };
      const sys = opts.systemMetrics
        ? await fetchSystemMetrics(api, run, opts.systemMetricsSamples ?? 10_000)
        : undefined;
      return {
        run,
        record: toRunRecord(run, { wandbMetadata: metadata, baseUrl: api.baseUrl, sweep }),
        history,
        sys,
        release,
      };
    });
    for await (const item of fetched) {
      let w: { historyRows: number };
      try {
        w = await writer.writeRun(item.record, item.history.batches, item.sys, item.history.parquet);
      } finally {
        await releaseHistory(item.history);
      }
      item.release();
      runs++;
      historyRows += w.historyRows;
      opts.onEvent?.({
        type: "run",
        index: runs,
        total,
        run: item.run.name,
        displayName: item.run.displayName,
        historyRows: w.historyRows,
      });
    }
    const { files } = await writer.close();
    opts.onEvent?.({ type: "written", files });
    return { entity: opts.entity, project: opts.project, runCount, runs, historyRows, files };
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
}

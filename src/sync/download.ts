/**
 * The `wandb-download` job: every run of a project (and its history) into one set of files, streamed in listing
 * order. Runs are fetched several at once but written in order; files appear whole or not at all.
 */
import { type DownloadFormat, openProjectWriter } from "../export/writer.js";
import type { WandbApi, WandbRun } from "../wandb/types.js";
import { orderedMap, WeightedSemaphore } from "./concurrency.js";
import {
  defaultRunConcurrency,
  estimateCells,
  fetchHistory,
  fetchMetadata,
  fetchSystemMetrics,
  HISTORY_CELL_BUDGET,
  type HistorySelection,
} from "./fetch-run.js";
import { toRunRecord } from "./run-record.js";
import { buildFilters, type RunSelection } from "./selection.js";
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

async function* listAll(api: WandbApi, opts: DownloadOptions, filters: ReturnType<typeof buildFilters>) {
  const seen = new Set<string>();
  const max = opts.runs?.maxRuns;
  for await (const page of api.listRuns(opts.entity, opts.project, {
    filters,
    order: "+created_at",
    perPage: opts.perPage ?? 500,
    signal: opts.signal,
  })) {
    for (const run of page.runs) {
      if (seen.has(run.name)) continue;
      if (max !== undefined && seen.size >= max) return;
      seen.add(run.name);
      yield run;
    }
  }
}

export async function downloadProject(api: WandbApi, opts: DownloadOptions): Promise<DownloadResult> {
  const filters = buildFilters(opts.runs);
  const runCount = await api.runCount(opts.entity, opts.project, filters);
  const total = opts.runs?.maxRuns !== undefined ? Math.min(runCount, opts.runs.maxRuns) : runCount;
  opts.onEvent?.({ type: "listing", runCount: total });
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
    const concurrency = opts.concurrency ?? defaultRunConcurrency(opts.withHistory);
    const fetched = orderedMap(listAll(api, opts, filters), concurrency, async (run: WandbRun) => {
      const release = opts.withHistory ? await budget.acquire(estimateCells(run, 0, opts.history ?? {})) : () => {};
      const metadata = opts.metadata === false ? {} : await fetchMetadata(api, run);
      const sweep = run.sweepName ? await sweeps.get(run.entity, run.project, run.sweepName) : null;
      const history = opts.withHistory
        ? await fetchHistory(api, run, 0, opts.history ?? {}, opts.signal)
        : { batches: [], rows: 0, maxStep: -1 };
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
      const w = await writer.writeRun(item.record, item.history.batches, item.sys);
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

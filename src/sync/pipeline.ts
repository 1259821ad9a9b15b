/**
 * The incremental sync of one W&B project into the archive. Reads like the algorithm:
 *   1. read what the archive remembers (sync state);
 *   2. list the project's runs page by page (full run fields in each page: no request per run);
 *   3. plan each page's runs (pure: src/sync/plan.ts) and fetch what changed, several runs at once;
 *   4. commit each run's record, history and state in one transaction;
 *   5. re-list if W&B's offset pages skipped runs; mark runs deleted on the server; log the sync.
 */
import { type Archive, columnarEnabled, type HistoryWrite, type RunSyncState } from "../archive/index.js";
import type { JsonObject } from "../model/json.js";
import type { FileRecord, RunRecord } from "../model/records.js";
import type { WandbApi, WandbRun } from "../wandb/types.js";
import { forEachLimitAsync, Mutex, readAhead, WeightedSemaphore } from "./concurrency.js";
import {
  defaultRunConcurrency,
  estimateCells,
  type FileOptions,
  fetchFiles,
  fetchHistory,
  fetchMetadata,
  fetchSystemMetrics,
  HISTORY_CELL_BUDGET,
  type HistoryFetch,
  type HistorySelection,
  LIST_RANGES,
  METADATA_FILE,
  releaseHistory,
  selectionKey,
} from "./fetch-run.js";
import { findDeleted, fingerprint, parseStoredSelection, planRun, type RunAction, storedSelection } from "./plan.js";
import { toRunRecord } from "./run-record.js";
import { buildFilters, type RunSelection } from "./selection.js";
import { SweepCache } from "./sweeps.js";

export interface SyncOptions {
  entity: string;
  project: string;
  /** Read histories (default true); false is --runs-only. */
  withHistory?: boolean;
  forceRefresh?: boolean;
  perPage?: number;
  /** Runs fetched at once (the client's governor still bounds the requests). Default 8. */
  concurrency?: number;
  runs?: RunSelection;
  history?: HistorySelection;
  /** Also store each run's system-metrics stream (sampled by W&B to this many rows). */
  systemMetrics?: boolean;
  systemMetricsSamples?: number;
  /** Download run files. */
  files?: FileOptions;
  onEvent?: (e: SyncEvent) => void;
  signal?: AbortSignal;
}

export type SyncEvent =
  | { type: "listing"; entity: string; project: string; runCount: number }
  | { type: "listed"; listed: number; runCount: number }
  | { type: "run"; run: string; displayName: string | null; reasons: string[]; historyRows: number; done: number }
  | { type: "planned"; toFetch: number; unchanged: number }
  | { type: "deleted"; runs: string[] }
  | { type: "warning"; message: string };

export interface SyncResult {
  entity: string;
  project: string;
  runCount: number;
  runsListed: number;
  runsWritten: number;
  runsUnchanged: number;
  runsDeleted: number;
  historyRows: number;
  filesDownloaded: number;
  duplicatesInListing: number;
  warnings: string[];
  startedAt: string;
  finishedAt: string;
}

const RECORD_BATCH = 500;
/**
 * Runs processed at once when a run needs nothing but its record (runs-only, no files or system metrics): its
 * metadata file is one GET of a signed storage URL (or one /files request), so many can be in flight.
 */
export const RECORD_CONCURRENCY = 256;

export async function syncProject(api: WandbApi, archive: Archive, opts: SyncOptions): Promise<SyncResult> {
  const startedAt = new Date().toISOString();
  const { entity, project } = opts;
  const withHistory = opts.withHistory ?? true;
  const historySel = opts.history ?? {};
  // Parquet exports go to the DuckDB archive as files, inserted with SQL (src/archive/parquet-ingest.ts); other
  // archives get their rows. DR_WANDB_COLUMNAR=0 decodes them to rows for DuckDB too.
  const columnar = archive.kind === "duckdb" && columnarEnabled();
  const historyKey = selectionKey(historySel);
  const extras =
    opts.files || opts.systemMetrics
      ? JSON.stringify({
          files: opts.files
            ? { pattern: opts.files.pattern ?? null, maxFileSize: opts.files.maxFileSize ?? null }
            : null,
          systemMetrics: opts.systemMetrics ? (opts.systemMetricsSamples ?? 10_000) : null,
        })
      : "";
  /** What this sync's state records: the history selection and the extras read. */
  const selection = storedSelection(historyKey, extras);
  const emit = opts.onEvent ?? (() => {});
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    emit({ type: "warning", message });
  };

  const stored = await archive.loadSyncState(entity, project);
  const filters = buildFilters(opts.runs);
  // W&B's count comes with every Runs page: known (and announced) once the first page is in.
  let runCount = -1;

  const result: SyncResult = {
    entity,
    project,
    runCount: 0,
    runsListed: 0,
    runsWritten: 0,
    runsUnchanged: 0,
    runsDeleted: 0,
    historyRows: 0,
    filesDownloaded: 0,
    duplicatesInListing: 0,
    warnings,
    startedAt,
    finishedAt: startedAt,
  };

  const writeLock = new Mutex();
  const pendingRecords: { record: RunRecord; state: RunSyncState }[] = [];
  const flushRecords = async () => {
    if (pendingRecords.length === 0) return;
    const items = pendingRecords.splice(0, pendingRecords.length);
    await writeLock.run(() => archive.writeRunRecords(items));
    result.runsWritten += items.length;
  };
  const knownFiles = opts.files ? await loadKnownFiles(archive, entity, project) : undefined;
  // Several runs are fetched at once: bound the history they hold in memory until written.
  const budget = new WeightedSemaphore(HISTORY_CELL_BUDGET);
  // Each distinct sweep is read once (one warning if it cannot be), whatever the number of its runs.
  const sweeps = new SweepCache(api, warn);

  const processAction = async (action: RunAction): Promise<void> => {
    const { run } = action;
    const prev = stored.get(run.name);
    const metadata: JsonObject | null = action.fetchMetadata ? await fetchMetadata(api, run) : null;
    const sweep = run.sweepName ? await sweeps.get(entity, project, run.sweepName) : null;
    const record = toRunRecord(run, { wandbMetadata: metadata, baseUrl: api.baseUrl, sweep });
    const state: RunSyncState = {
      entity,
      project,
      run_id: run.name,
      state: run.state,
      heartbeat_at: record.heartbeat_at,
      last_step: prev && !prev.deleted && action.history.kind !== "replace" ? prev.last_step : -1,
      history_complete: prev && !prev.deleted ? prev.history_complete : false,
      fingerprint: fingerprint(run),
      deleted: false,
      synced_at: new Date().toISOString(),
      // runs-only leaves the stored history selection as it was; the extras are recorded as read now
      selection:
        prev && !withHistory ? storedSelection(parseStoredSelection(prev.selection).history, extras) : selection,
    };
    if (withHistory && run.lastHistoryStep < 0) state.history_complete = true;
    const preserve: ("wandb_metadata" | "sweep_info")[] = metadata === null ? ["wandb_metadata"] : [];
    // A sweep that could not be read: keep the sweep_info an earlier sync stored (a new run gets the fallback).
    if (run.sweepName && sweep === null) preserve.push("sweep_info");
    const ownTransaction = action.history.kind !== "none" || opts.systemMetrics || opts.files || preserve.length > 0;
    if (!ownTransaction) {
      // runs-only records of new runs: batched, many runs per transaction
      pendingRecords.push({ record, state });
      if (pendingRecords.length >= RECORD_BATCH) await flushRecords();
      return;
    }
    const fromStep = action.history.kind === "append" ? action.history.fromStep : 0;
    const cells = action.history.kind === "none" ? 0 : estimateCells(run, fromStep, historySel);
    const release = await budget.acquire(cells);
    try {
      await fetchAndWrite(action, record, state, preserve, fromStep);
    } finally {
      release();
    }
  };

  /** Reads a run's history, system metrics and files as the action says, then commits it all in one transaction. */
  const fetchAndWrite = async (
    action: RunAction,
    record: RunRecord,
    state: RunSyncState,
    preserve: ("wandb_metadata" | "sweep_info")[],
    fromStep: number,
  ): Promise<void> => {
    const { run } = action;
    let history: HistoryWrite | undefined;
    let rows = 0;
    let fetched: HistoryFetch | undefined;
    let written: { historyRows: number };
    try {
      if (action.history.kind !== "none") {
        const h = await fetchHistory(api, run, fromStep, historySel, opts.signal, { columnar });
        fetched = h;
        rows = h.rows;
        history = {
          replace: action.history.kind === "replace",
          fromStep,
          batches: h.batches,
          parquetSources: h.parquet.length > 0 ? h.parquet : undefined,
        };
        state.last_step = Math.max(action.history.kind === "replace" ? -1 : state.last_step, h.maxStep);
        state.history_complete = true;
        state.selection = selection;
      }
      const systemMetrics = opts.systemMetrics
        ? await fetchSystemMetrics(api, run, opts.systemMetricsSamples ?? 10_000)
        : undefined;
      let files: FileRecord[] | undefined;
      if (opts.files) {
        const f = await fetchFiles(api, run, opts.files, knownFiles?.get(run.name));
        files = f.records;
        result.filesDownloaded += f.downloaded;
        for (const w of f.warnings) warn(w);
      }
      written = await writeLock.run(() => archive.writeRun({ record, state, history, systemMetrics, files, preserve }));
    } finally {
      if (fetched) await releaseHistory(fetched);
    }
    result.runsWritten++;
    result.historyRows += written.historyRows;
    emit({
      type: "run",
      run: run.name,
      displayName: run.displayName,
      reasons: action.reasons,
      historyRows: rows,
      done: result.runsWritten,
    });
  };

  const seen = new Set<string>();
  const planOpts = { withHistory, forceRefresh: opts.forceRefresh ?? false, selection: historyKey, extras };
  const maxRuns = opts.runs?.maxRuns;
  const recordsOnly = !withHistory && !opts.files && !opts.systemMetrics;
  const concurrency = opts.concurrency ?? (recordsOnly ? RECORD_CONCURRENCY : defaultRunConcurrency(withHistory));
  /** The new runs of each page, deduplicated and cut at --max-runs (no page is asked for past it). */
  const pages = async function* (): AsyncGenerator<WandbRun[]> {
    for await (const page of api.listRuns(entity, project, {
      filters,
      order: "+created_at",
      perPage: opts.perPage ?? 500,
      // after the first page, createdAt ranges listed at once where the server keeps to them (--max-runs keeps
      // the oldest runs first, so it lists serially)
      parallel: maxRuns === undefined ? LIST_RANGES : 1,
      // each run's metadata file's signed URL, when the server allows (no per-run API request)
      files: [METADATA_FILE],
      signal: opts.signal,
    })) {
      if (runCount < 0) {
        runCount = page.runCount;
        result.runCount = runCount;
        emit({ type: "listing", entity, project, runCount });
      }
      const fresh: WandbRun[] = [];
      for (const run of page.runs) {
        if (seen.has(run.name)) {
          result.duplicatesInListing++;
          continue;
        }
        if (maxRuns !== undefined && seen.size >= maxRuns) break;
        seen.add(run.name);
        fresh.push(run);
      }
      result.runsListed = seen.size;
      emit({ type: "listed", listed: seen.size, runCount });
      yield fresh;
      if (maxRuns !== undefined && seen.size >= maxRuns) return;
    }
  };
  const actions = async function* (): AsyncGenerator<RunAction> {
    // The next page is listed while this one's runs are fetched and written.
    for await (const fresh of readAhead(pages())) {
      for (const run of fresh) {
        const a = planRun(run, stored.get(run.name), planOpts);
        if (a) yield a;
        else result.runsUnchanged++;
      }
    }
  };
  const listOnce = () => forEachLimitAsync(actions(), concurrency, processAction);

  await listOnce();
  if (runCount < 0) {
    // a listing with no page at all: nothing on W&B
    runCount = 0;
    emit({ type: "listing", entity, project, runCount });
  }
  const target = maxRuns !== undefined ? Math.min(maxRuns, runCount) : runCount;
  if (seen.size < target) {
    // W&B pages by offset: runs created or reordered during the listing can shift pages and skip runs (wandb#6614).
    await listOnce();
    if (seen.size < target) warn(`listed ${seen.size} of ${target} runs that W&B reports; the rest were not seen`);
  }
  await flushRecords();

  const filtered = Object.keys(filters).length > 0 || maxRuns !== undefined;
  const deleted = findDeleted(stored, seen, { complete: seen.size >= runCount, filtered });
  if (deleted && deleted.length > 0) {
    await writeLock.run(() => archive.markDeleted(entity, project, deleted));
    result.runsDeleted = deleted.length;
    emit({ type: "deleted", runs: deleted });
  }
  result.finishedAt = new Date().toISOString();
  await archive.logSync({
    entity,
    project,
    started_at: startedAt,
    finished_at: result.finishedAt,
    runs_seen: seen.size,
    runs_written: result.runsWritten,
    history_rows: result.historyRows,
    requests: 0,
    options: JSON.stringify({
      withHistory,
      forceRefresh: opts.forceRefresh ?? false,
      runs: opts.runs ?? {},
      history: historySel,
      systemMetrics: opts.systemMetrics ?? false,
      files: opts.files ? { pattern: opts.files.pattern ?? null, maxFileSize: opts.files.maxFileSize ?? null } : null,
    }),
  });
  return result;
}

async function loadKnownFiles(
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

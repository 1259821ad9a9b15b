/**
 * The incremental sync of one W&B project into the archive. syncProject reads like the algorithm, one named step of
 * ProjectSync each:
 *   1. read what the archive remembers (sync state);
 *   2. list the project's runs page by page (full run fields in each page: no request per run);
 *   3. plan each page's runs (pure: src/sync/plan.ts) and fetch what changed, several runs at once;
 *   4. commit each run's record, history and state in one transaction;
 *   5. re-list if W&B's offset pages skipped runs; mark runs deleted on the server; log the sync.
 *
 * Over 400 lines on purpose: syncProject and the steps of ProjectSync share one sync's state; kept together so the
 * algorithm and each of its steps read in one file (what a run needs is fetch-run.ts, what to do plan.ts).
 */
import { type Archive, columnarEnabled, type HistoryWrite, type RunSyncState } from "../archive/index.js";
import type { JsonObject } from "../model/json.js";
import type { FileRecord, RunRecord } from "../model/records.js";
import type { WandbApi, WandbRun } from "../wandb/types.js";
import { forEachLimitAsync, Mutex, readAhead, WeightedSemaphore } from "./concurrency.js";
import { type FileOptions, fetchFiles, loadKnownFiles } from "./fetch-files.js";
import {
  defaultRunConcurrency,
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
  const sync = new ProjectSync(api, archive, opts);
  await sync.readSyncState();
  await sync.listPlanFetchWrite();
  sync.announceEmptyListing();
  if (sync.missedRuns()) {
    // W&B pages by offset: runs created or reordered during the listing can shift pages and skip runs (wandb#6614).
    await sync.listPlanFetchWrite();
    sync.warnIfStillMissed();
  }
  await sync.flushRecords();
  await sync.markDeleted();
  await sync.logSync();
  return sync.result;
}

type Preserve = ("wandb_metadata" | "sweep_info")[];

/** One project's sync: what it has learned so far, and the steps syncProject takes in order. */
class ProjectSync {
  readonly result: SyncResult;
  private readonly entity: string;
  private readonly project: string;
  private readonly withHistory: boolean;
  private readonly historySel: HistorySelection;
  /**
   * Parquet exports go to the DuckDB archive as files, inserted with SQL (src/archive/parquet-ingest.ts); other
   * archives get their rows. DR_WANDB_COLUMNAR=0 decodes them to rows for DuckDB too.
   */
  private readonly columnar: boolean;
  private readonly historyKey: string;
  private readonly extras: string;
  /** What this sync's state records: the history selection and the extras read. */
  private readonly selection: string;
  private readonly emit: (e: SyncEvent) => void;
  private readonly maxRuns: number | undefined;
  private readonly concurrency: number;
  private stored = new Map<string, RunSyncState>();
  private filters: JsonObject = {};
  private knownFiles: Map<string, Map<string, FileRecord>> | undefined;
  /** W&B's count comes with every Runs page: known (and announced) once the first page is in. */
  private runCount = -1;
  /** Run names listed so far (a run listed twice is processed once). */
  private readonly seen = new Set<string>();
  private readonly writeLock = new Mutex();
  /** Records of runs that need nothing else, written many per transaction. */
  private readonly pendingRecords: { record: RunRecord; state: RunSyncState }[] = [];
  /** Several runs are fetched at once: bound the history they hold in memory until written. */
  private readonly budget = new WeightedSemaphore(HISTORY_CELL_BUDGET);
  /** Each distinct sweep is read once (one warning if it cannot be), whatever the number of its runs. */
  private readonly sweeps: SweepCache;

  constructor(
    private readonly api: WandbApi,
    private readonly archive: Archive,
    private readonly opts: SyncOptions,
  ) {
    const startedAt = new Date().toISOString();
    this.entity = opts.entity;
    this.project = opts.project;
    this.withHistory = opts.withHistory ?? true;
    this.historySel = opts.history ?? {};
    this.columnar = archive.kind === "duckdb" && columnarEnabled();
    this.historyKey = selectionKey(this.historySel);
    this.extras =
      opts.files || opts.systemMetrics
        ? JSON.stringify({
            files: opts.files
              ? { pattern: opts.files.pattern ?? null, maxFileSize: opts.files.maxFileSize ?? null }
              : null,
            systemMetrics: opts.systemMetrics ? (opts.systemMetricsSamples ?? 10_000) : null,
          })
        : "";
    this.selection = storedSelection(this.historyKey, this.extras);
    this.emit = opts.onEvent ?? (() => {});
    this.maxRuns = opts.runs?.maxRuns;
    const recordsOnly = !this.withHistory && !opts.files && !opts.systemMetrics;
    this.concurrency = opts.concurrency ?? (recordsOnly ? RECORD_CONCURRENCY : defaultRunConcurrency(this.withHistory));
    this.result = {
      entity: this.entity,
      project: this.project,
      runCount: 0,
      runsListed: 0,
      runsWritten: 0,
      runsUnchanged: 0,
      runsDeleted: 0,
      historyRows: 0,
      filesDownloaded: 0,
      duplicatesInListing: 0,
      warnings: [],
      startedAt,
      finishedAt: startedAt,
    };
    this.sweeps = new SweepCache(api, (m) => this.warn(m));
  }

  private warn(message: string): void {
    this.result.warnings.push(message);
    this.emit({ type: "warning", message });
  }

  /** 1. What the archive remembers: each run's sync state (and, when files are read, the files it stored). */
  async readSyncState(): Promise<void> {
    this.stored = await this.archive.loadSyncState(this.entity, this.project);
    this.filters = buildFilters(this.opts.runs);
    this.knownFiles = this.opts.files ? await loadKnownFiles(this.archive, this.entity, this.project) : undefined;
  }

  /** 2-4. Lists the runs page by page, plans each new one, and fetches and commits what changed, several at once. */
  listPlanFetchWrite(): Promise<void> {
    return forEachLimitAsync(this.actions(), this.concurrency, (a) => this.processAction(a));
  }

  /** A listing with no page at all: nothing on W&B. */
  announceEmptyListing(): void {
    if (this.runCount >= 0) return;
    this.runCount = 0;
    this.emit({ type: "listing", entity: this.entity, project: this.project, runCount: this.runCount });
  }

  /** The runs the listing should have shown: W&B's count, or --max-runs. */
  private target(): number {
    return this.maxRuns !== undefined ? Math.min(this.maxRuns, this.runCount) : this.runCount;
  }

  /** 5. True when the listing showed fewer runs than it should have. */
  missedRuns(): boolean {
    return this.seen.size < this.target();
  }

  warnIfStillMissed(): void {
    if (this.missedRuns()) {
      this.warn(`listed ${this.seen.size} of ${this.target()} runs that W&B reports; the rest were not seen`);
    }
  }

  /** Writes the records still waiting for a batch. */
  async flushRecords(): Promise<void> {
    if (this.pendingRecords.length === 0) return;
    const items = this.pendingRecords.splice(0, this.pendingRecords.length);
    await this.writeLock.run(() => this.archive.writeRunRecords(items));
    this.result.runsWritten += items.length;
  }

  /** Marks the stored runs that a complete, unfiltered listing no longer shows as deleted on the server. */
  async markDeleted(): Promise<void> {
    const filtered = Object.keys(this.filters).length > 0 || this.maxRuns !== undefined;
    const deleted = findDeleted(this.stored, this.seen, { complete: this.seen.size >= this.runCount, filtered });
    if (deleted && deleted.length > 0) {
      await this.writeLock.run(() => this.archive.markDeleted(this.entity, this.project, deleted));
      this.result.runsDeleted = deleted.length;
      this.emit({ type: "deleted", runs: deleted });
    }
  }

  /** Records the sync in sync_log. */
  async logSync(): Promise<void> {
    const { opts, result } = this;
    result.finishedAt = new Date().toISOString();
    await this.archive.logSync({
      entity: this.entity,
      project: this.project,
      started_at: result.startedAt,
      finished_at: result.finishedAt,
      runs_seen: this.seen.size,
      runs_written: result.runsWritten,
      history_rows: result.historyRows,
      requests: 0,
      options: JSON.stringify({
        withHistory: this.withHistory,
        forceRefresh: opts.forceRefresh ?? false,
        runs: opts.runs ?? {},
        history: this.historySel,
        systemMetrics: opts.systemMetrics ?? false,
        files: opts.files ? { pattern: opts.files.pattern ?? null, maxFileSize: opts.files.maxFileSize ?? null } : null,
      }),
    });
  }

  /** The new runs of each page, deduplicated and cut at --max-runs (no page is asked for past it). */
  private async *pages(): AsyncGenerator<WandbRun[]> {
    const { maxRuns, seen, result } = this;
    for await (const page of this.api.listRuns(this.entity, this.project, {
      filters: this.filters,
      order: "+created_at",
      perPage: this.opts.perPage ?? 500,
      // after the first page, createdAt ranges listed at once where the server keeps to them (--max-runs keeps
      // the oldest runs first, so it lists serially)
      parallel: maxRuns === undefined ? LIST_RANGES : 1,
      // each run's metadata file's signed URL, when the server allows (no per-run API request)
      files: [METADATA_FILE],
      signal: this.opts.signal,
    })) {
      if (this.runCount < 0) {
        this.runCount = page.runCount;
        result.runCount = this.runCount;
        this.emit({ type: "listing", entity: this.entity, project: this.project, runCount: this.runCount });
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
      this.emit({ type: "listed", listed: seen.size, runCount: this.runCount });
      // The page is not held while its runs are worked on: `fresh` alone has them, and lets each go when planned.
      page.runs.length = 0;
      yield fresh;
      if (maxRuns !== undefined && seen.size >= maxRuns) return;
    }
  }

  /** The plan of each listed run that needs work (plan.ts); the others count as unchanged. */
  private async *actions(): AsyncGenerator<RunAction> {
    const planOpts = {
      withHistory: this.withHistory,
      forceRefresh: this.opts.forceRefresh ?? false,
      selection: this.historyKey,
      extras: this.extras,
    };
    // The next page is listed while this one's runs are fetched and written.
    for await (const fresh of readAhead(this.pages())) {
      // Each run leaves the page as it is planned: the runs already handed out are not held until the page ends.
      for (let i = 0; i < fresh.length; i++) {
        const run = fresh[i]!;
        fresh[i] = undefined as unknown as WandbRun;
        const a = planRun(run, this.stored.get(run.name), planOpts);
        if (a) yield a;
        else this.result.runsUnchanged++;
      }
    }
  }

  /** Builds a planned run's record and state; batches a bare record, else fetches and writes the run. */
  private async processAction(action: RunAction): Promise<void> {
    const { api, opts, entity, project, withHistory } = this;
    const { run } = action;
    const prev = this.stored.get(run.name);
    const metadata: JsonObject | null = action.fetchMetadata ? await fetchMetadata(api, run) : null;
    const sweep = run.sweepName ? await this.sweeps.get(entity, project, run.sweepName) : null;
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
        prev && !withHistory
          ? storedSelection(parseStoredSelection(prev.selection).history, this.extras)
          : this.selection,
    };
    if (withHistory && run.lastHistoryStep < 0) state.history_complete = true;
    const preserve: Preserve = metadata === null ? ["wandb_metadata"] : [];
    // A sweep that could not be read: keep the sweep_info an earlier sync stored (a new run gets the fallback).
    if (run.sweepName && sweep === null) preserve.push("sweep_info");
    const ownTransaction = action.history.kind !== "none" || opts.systemMetrics || opts.files || preserve.length > 0;
    if (!ownTransaction) {
      // runs-only records of new runs: batched, many runs per transaction
      this.pendingRecords.push({ record, state });
      if (this.pendingRecords.length >= RECORD_BATCH) await this.flushRecords();
      return;
    }
    const fromStep = action.history.kind === "append" ? action.history.fromStep : 0;
    await this.fetchAndWrite(action, record, state, preserve, fromStep);
  }

  /** Reads a run's history, system metrics and files as the action says, then commits it all in one transaction. */
  private async fetchAndWrite(
    action: RunAction,
    record: RunRecord,
    state: RunSyncState,
    preserve: Preserve,
    fromStep: number,
  ): Promise<void> {
    const { api, opts, result } = this;
    const { run } = action;
    let history: HistoryWrite | undefined;
    let rows = 0;
    let fetched: HistoryFetch | undefined;
    let written: { historyRows: number };
    try {
      if (action.history.kind !== "none") {
        const h = await fetchHistory(api, run, fromStep, this.historySel, opts.signal, {
          columnar: this.columnar,
          budget: this.budget,
        });
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
        state.selection = this.selection;
      }
      const systemMetrics = opts.systemMetrics
        ? await fetchSystemMetrics(api, run, opts.systemMetricsSamples ?? 10_000)
        : undefined;
      let files: FileRecord[] | undefined;
      if (opts.files) {
        const f = await fetchFiles(api, run, opts.files, this.knownFiles?.get(run.name));
        files = f.records;
        result.filesDownloaded += f.downloaded;
        for (const w of f.warnings) this.warn(w);
      }
      written = await this.writeLock.run(() =>
        this.archive.writeRun({ record, state, history, systemMetrics, files, preserve }),
      );
    } finally {
      if (fetched) await releaseHistory(fetched);
    }
    result.runsWritten++;
    result.historyRows += written.historyRows;
    this.emit({
      type: "run",
      run: run.name,
      displayName: run.displayName,
      reasons: action.reasons,
      historyRows: rows,
      done: result.runsWritten,
    });
  }
}

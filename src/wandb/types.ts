/**
 * What the W&B client hands to the rest of dr-wandb: decoded, typed, nothing lost.
 * Raw wire shapes stay inside src/wandb; everything exported here is already decoded.
 */
import type { JsonObject, JsonValue } from "../model/json.js";

/** A run as listed with the full run fragment (config, summary and system metrics decoded). */
export interface WandbRun {
  /** Storage id (W&B `id`, base64 of "Run:v1:<name>:<project>:<entity>"). */
  storageId: string;
  /** The short run id used in URLs (W&B `name`, the SDK's `run.id`). */
  name: string;
  displayName: string | null;
  entity: string;
  project: string;
  state: string | null;
  tags: string[];
  group: string | null;
  jobType: string | null;
  sweepName: string | null;
  commit: string | null;
  readOnly: boolean | null;
  /** ISO-8601 as W&B sent it (normally without a zone, meaning UTC). */
  createdAt: string;
  heartbeatAt: string | null;
  description: string | null;
  notes: string | null;
  user: { name: string | null; username: string | null } | null;
  /** Config unwrapped from {"value", "desc"}; `_wandb` and `wandb_version` are only in rawConfig. */
  config: JsonObject;
  /** Config exactly as W&B sent it (decoded from its JSON string, still wrapped). */
  rawConfig: JsonObject;
  summary: JsonObject;
  systemMetrics: JsonObject;
  /** The historyKeys object ({lastStep, keys: {...}}), or null. */
  historyKeys: JsonValue;
  /** historyKeys.lastStep, or -1 when the run has no history. */
  lastHistoryStep: number;
  historyLineCount: number | null;
  /** The run node as W&B returned it, with JSON-string fields decoded. */
  raw: JsonObject;
  /**
   * The files named in ListRunsOptions.files that the run has, when the listing could select them (the server
   * accepts files inside a Runs page); undefined when they were not asked for or not available.
   */
  files?: WandbFile[];
}

/** One raw history row: `_step`, `_runtime`, `_timestamp`, `_wandb`, metrics; values decoded exactly. */
export type HistoryRow = JsonObject;

/** One system-metrics event row (`_timestamp`, `_runtime`, `system.*` keys). */
export type EventRow = JsonObject;

export interface WandbFile {
  id: string;
  name: string;
  /** Download URL (under the base URL, needs auth; may redirect to signed storage). */
  url: string | null;
  directUrl: string | null;
  sizeBytes: number;
  mimetype: string | null;
  updatedAt: string | null;
  md5: string | null;
}

export interface Viewer {
  id: string;
  entity: string | null;
  username: string | null;
}

/** A project as listed by `models(entityName)` (the SDK's `api.projects(entity)`). */
export interface WandbProject {
  name: string;
  entity: string;
  /** W&B's `id` (storage id), or "" when not sent. */
  storageId: string;
  createdAt: string | null;
}

/** A sweep as `project.sweep(sweepName)` returns it (the SDK's `api.sweep(path)` fields). */
export interface WandbSweep {
  /** The short sweep id used in URLs and in `run.sweepName` (W&B `name`, the SDK's `sweep.id`). */
  name: string;
  /** W&B's `id` (storage id), or "" when not sent. */
  storageId: string;
  /** The user-edited display name, when there is one. */
  displayName: string | null;
  method: string | null;
  /** RUNNING, PAUSED, CANCELED, FINISHED, ... as W&B sent it. */
  state: string | null;
  description: string | null;
  bestLoss: number | null;
  /**
   * The sweep configuration. W&B sends it as a YAML or JSON string: a JSON document is parsed (exactly, like run
   * config); anything else (YAML) is kept as the string.
   */
  config: JsonValue;
  /** ISO-8601 as W&B sent it. */
  createdAt: string | null;
  updatedAt: string | null;
  runCount: number | null;
  /** Runs the sweep is meant to have; null for an open-ended sweep (or a server that does not say). */
  runCountExpected: number | null;
  /** The sweep node as W&B returned it. */
  raw: JsonObject;
}

export interface RunsPage {
  runs: WandbRun[];
  /** project.runCount with the same filters, as reported with this page. */
  runCount: number;
  hasNextPage: boolean;
}

export interface ListRunsOptions {
  /** Mongo-style W&B filter object (sent as a JSON string). */
  filters?: JsonObject;
  /** "+created_at" (default), "-created_at", "+heartbeat_at", "config.<k>.value", "summary_metrics.<k>". */
  order?: string;
  perPage?: number;
  /**
   * Run files to select inside each run of the page (e.g. ["wandb-metadata.json"]), as WandbRun.files, when the
   * server accepts it (not an SDK shape: learned per server, never with `compat`).
   */
  files?: string[];
  /**
   * List this many disjoint createdAt ranges at once after the first page (order "+created_at" only; not with
   * `compat`). Pages then come as they arrive, not in creation order, and a run created at a range's first second
   * may come twice. A server that does not keep to the ranges is remembered and listed serially. Default 1.
   */
  parallel?: number;
  signal?: AbortSignal;
}

export interface ScanHistoryOptions {
  /** First step to read (inclusive). Default 0. */
  minStep?: number;
  /** Last step to read (exclusive). Default: lastHistoryStep + 1. */
  maxStep?: number;
  /** The run's last step if known (saves the RunHistoryKeys request). */
  lastStep?: number;
  /**
   * The run's historyKeys if known (WandbRun.historyKeys): saves the RunHistoryKeys request like `lastStep`, and
   * gives each key's type, so that values are decoded exactly (e.g. "NaN" strings of keyed rows back to numbers).
   */
  historyKeys?: JsonValue;
  /** Only these metric keys (sampledHistory windows; rows lacking a key may be absent, as on W&B). */
  keys?: string[];
  /** Window width in steps for history pages. Default 1000. */
  pageSize?: number;
  /** Use parquet exports when the server has them. Default true. */
  useParquet?: boolean;
  /**
   * Offered the downloaded parquet exports instead of their rows: returning true takes them (the scan then yields
   * only the live rows after them, and the taker must call `release()` once done with the files); false, and the
   * scan yields their rows as usual.
   */
  takeParquet?: (files: ParquetHistoryFiles) => boolean;
  /**
   * Awaited once, before the scan first downloads export files or holds rows in memory (history pages), with the
   * number of steps the read can still span; never for the export check itself. A caller bounding the history in
   * flight reserves its budget here, so that the export checks of many runs can go out together (one request)
   * while their downloads and rows wait for the budget.
   */
  beforeRows?: (steps: number) => Promise<void>;
  signal?: AbortSignal;
}

/** A run's downloaded parquet history exports, for rows minStep <= _step < maxStep (see takeParquet). */
export interface ParquetHistoryFiles {
  paths: string[];
  minStep: number;
  /** Exclusive. */
  maxStep: number;
  /** Keys historyKeys reports as strings. */
  stringKeys: string[];
  /** Rows the files hold in the range (one per step). */
  rows: number;
  /** The highest step in the range, or -1. */
  lastStep: number;
  /** Removes the files (idempotent). */
  release(): Promise<void>;
}

/** The reads that the rest of dr-wandb needs from W&B. Implemented by WandbClient in src/wandb/client.ts. */
export interface WandbApi {
  readonly baseUrl: string;
  viewer(): Promise<Viewer>;
  /** project.runCount(filters); throws NotFoundError when the project does not exist. */
  runCount(entity: string, project: string, filters?: JsonObject): Promise<number>;
  /** Pages of an entity's projects (the SDK's `api.projects(entity)`); nothing when W&B lists none. */
  listProjects(entity: string): AsyncIterable<WandbProject[]>;
  /**
   * One sweep of a project by its short id (`run.sweepName`), or null when W&B says it does not exist; throws
   * NotFoundError when the project does not exist.
   */
  getSweep(entity: string, project: string, sweepName: string): Promise<WandbSweep | null>;
  /** Pages of fully loaded runs (one request per page, no request per run). */
  listRuns(entity: string, project: string, options?: ListRunsOptions): AsyncIterable<RunsPage>;
  /** One run, or null when W&B says it does not exist. */
  getRun(entity: string, project: string, name: string): Promise<WandbRun | null>;
  /** Several runs by name in as few requests as the server allows (aliases; falls back to one per run). */
  getRuns(entity: string, project: string, names: string[]): Promise<Map<string, WandbRun | null>>;
  lastHistoryStep(entity: string, project: string, name: string): Promise<number>;
  /** The full history in step order, in batches; parquet exports first when present, live windows for the rest. */
  scanHistory(entity: string, project: string, name: string, options?: ScanHistoryOptions): AsyncIterable<HistoryRow[]>;
  /** Sampled history (run.history(samples) / sampledHistory with keys). */
  sampledHistory(
    entity: string,
    project: string,
    name: string,
    options: { keys?: string[]; samples: number },
  ): Promise<HistoryRow[]>;
  /** The system-metrics event stream (W&B samples it down to `samples` rows). */
  systemEvents(entity: string, project: string, name: string, samples?: number): Promise<EventRow[]>;
  listFiles(
    entity: string,
    project: string,
    name: string,
    options?: { pattern?: string; names?: string[]; perPage?: number },
  ): AsyncIterable<WandbFile[]>;
  /** Downloads a file to `dest` (resuming from `dest`'s current size with Range when `resume` is set). */
  downloadFile(file: WandbFile, dest: string, options?: { resume?: boolean; signal?: AbortSignal }): Promise<void>;
  /**
   * Fetches and parses a small JSON run file (e.g. wandb-metadata.json); null when missing. `listed` is what the
   * run listing said about the file (WandbRun.files): a file with a signed `directUrl` is read from there (no API
   * request), null means the run has no such file (no request at all); undefined asks W&B.
   */
  fetchJsonFile(
    entity: string,
    project: string,
    name: string,
    fileName: string,
    listed?: WandbFile | null,
  ): Promise<JsonObject | null>;
  close(): Promise<void>;
}

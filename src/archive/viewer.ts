/**
 * The read side the browser viewer (src/serve/) needs beyond `query()`: runs listings with chosen config/summary keys,
 * history keys, down-sampled and full-resolution metric series, one run's detail, files and system metrics.
 * Every value a user or W&B chose (run ids, keys, filters) travels as a bound parameter, never as SQL text.
 * The SQL is in viewer-reads.ts (both backends).
 */

/** One project of the archive. */
export interface ProjectRef {
  entity: string;
  project: string;
}

export interface ViewerProject extends ProjectRef {
  runs: number;
}

/** A value inside a run's config or summary JSON: the object keys from the top (dotted keys stay one segment). */
export interface JsonColumn {
  source: "config" | "summary";
  path: string[];
}

/** Fixed run columns a listing can sort by. */
export const RUN_SORT_COLUMNS = [
  "run_id",
  "run_name",
  "state",
  "created_at",
  "runtime",
  "group",
  "job_type",
  "user",
  "sweep",
] as const;
export type RunSortColumn = (typeof RUN_SORT_COLUMNS)[number];

export interface RunsQuery extends ProjectRef {
  /** Config/summary values to return per run (as exact JSON text). */
  columns?: JsonColumn[];
  sort?: { column: RunSortColumn | JsonColumn; desc?: boolean };
  /** Case-insensitive substring of the run id, name, group, tags, user or notes. */
  text?: string;
  states?: string[];
  tags?: string[];
  /** Only these runs. */
  runIds?: string[];
  groups?: string[];
  offset?: number;
  limit?: number;
}

export interface RunRow {
  run_id: string;
  run_name: string | null;
  state: string | null;
  created_at: string | null;
  heartbeat_at: string | null;
  /** Seconds between creation and the last heartbeat. */
  runtime: number | null;
  tags: string[];
  group: string | null;
  job_type: string | null;
  user: string | null;
  sweep: string | null;
  deleted: boolean;
  /** Exact JSON text of each requested column (null when the run has no such key), in `columns` order. */
  values: (string | null)[];
}

export interface RunsPage {
  total: number;
  rows: RunRow[];
}

export interface RunFacets {
  states: string[];
  tags: string[];
  groups: string[];
}

/** Config and summary key paths seen in a project's runs (nested objects flattened; media objects are leaves). */
export interface RunKeys {
  config: string[][];
  summary: string[][];
}

/** A history key and the kinds of value seen for it (metric_keys.kinds bit mask, see src/model/flatten.ts). */
export interface HistoryKey {
  key: string;
  kinds: number;
}

export type XAxis = "step" | "runtime" | "wall";

export interface SeriesQuery extends ProjectRef {
  runIds: string[];
  key: string;
  x: XAxis;
  /** About the chart's width in pixels: each bucket keeps its first, last, min and max point (M4). */
  buckets: number;
  /** Only points with x0 <= x <= x1. */
  x0?: number;
  x1?: number;
  /** A run with at most this many points in range is returned whole (default 4 x buckets). */
  rawLimit?: number;
}

export interface RunSeries {
  run_id: string;
  /** Points of the run in range (before any down-sampling). */
  total: number;
  /** True when `x`/`y` hold a per-bucket selection rather than every point. */
  sampled: boolean;
  /** Steps of the points (the x axis may be runtime or wall time). */
  step: number[];
  x: number[];
  /** NaN and ±Infinity stay as such. */
  y: number[];
}

export interface RunDetail {
  entity: string;
  project: string;
  run_id: string;
  run_name: string | null;
  state: string | null;
  created_at: string | null;
  heartbeat_at: string | null;
  tags: string[];
  group: string | null;
  job_type: string | null;
  user: string | null;
  notes: string | null;
  commit: string | null;
  deleted: boolean;
  deleted_at: string | null;
  synced_at: string | null;
  last_history_step: number | null;
  history_rows: number;
  /** Strict JSON text as stored (bigints exact, NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity"). */
  config: string;
  summary: string;
  wandb_metadata: string;
  sweep_info: string;
  system_metrics: string;
}

export interface FileRow {
  name: string;
  size: number | null;
  md5: string | null;
  updated_at: string | null;
  /** Relative to the output folder, or null when the file was listed but not downloaded. */
  local_path: string | null;
}

export interface SystemMetricRow {
  timestamp: string | null;
  runtime: number | null;
  /** Strict JSON text of the metrics object. */
  metrics: string;
}

export interface ViewerReads {
  projects(): Promise<ViewerProject[]>;
  runs(q: RunsQuery): Promise<RunsPage>;
  /** Every run id matching the filters of `q` (no paging), in its sort order: "select all filtered". */
  runIds(q: RunsQuery): Promise<string[]>;
  facets(p: ProjectRef): Promise<RunFacets>;
  runKeys(p: ProjectRef): Promise<RunKeys>;
  historyKeys(p: ProjectRef): Promise<HistoryKey[]>;
  series(q: SeriesQuery): Promise<RunSeries[]>;
  run(p: ProjectRef, runId: string): Promise<RunDetail | null>;
  files(p: ProjectRef, runId: string): Promise<FileRow[]>;
  systemMetrics(p: ProjectRef, runId: string, limit?: number): Promise<SystemMetricRow[]>;
}

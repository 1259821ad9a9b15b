/**
 * The archive: one interface, two backends (DuckDB, the embedded default, and PostgreSQL).
 * The sync pipeline writes through it; the Parquet export (through the DuckDB export hook, DuckDBExportSource) and
 * the query/status commands read through it.
 */
import type { FileRecord, HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";
import type { ViewerReads } from "./viewer.js";

/** What the archive remembers of one run between syncs (table sync_state). */
export interface RunSyncState {
  entity: string;
  project: string;
  run_id: string;
  /** W&B state at the last sync. */
  state: string | null;
  heartbeat_at: string | null;
  /** Last history step stored (-1 when none). */
  last_step: number;
  /** True when the run's history was read to the end of what W&B had (false after --runs-only). */
  history_complete: boolean;
  /** Hash of the parts of the run that, when changed, make a finished run worth re-reading. */
  fingerprint: string;
  deleted: boolean;
  /** ISO-8601 UTC of the sync that wrote this state. */
  synced_at: string;
  /** JSON of the selection (history keys, step range, samples...) the stored history was read with. */
  selection: string;
}

/** The columnar path is on unless DR_WANDB_COLUMNAR=0 (then parquet exports are decoded to rows, as before). */
export function columnarEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DR_WANDB_COLUMNAR !== "0";
}

/** Exported history files of one run, to be stored for steps minStep <= step < maxStep. */
/** Downloaded parquet export files of one run (src/model/parquet-decode.ts). */
import type { ParquetSource } from "../model/parquet-decode.js";

export type { ParquetSource };

/**
 * One file of history rows as text (HistoryWrite.textRows): a line per row, tab-separated fields: the step
 * (integer), `_timestamp` as integer microseconds since the epoch or `\N`, the runtime (a JS number's text,
 * `NaN`/`Infinity`/`-Infinity`, `-0`) or `\N`, the JSON text of the metrics whose values are not numbers (as
 * stringifyStrict writes it; never a tab or a line break) or `\N` when there are none, then the numbers: the i-th
 * further field is the value of `keys[i]` (a number's text as the runtime's, or `\N` when the row does not have
 * the key); a line may stop before the last keys. wandb_metadata and extra are `{}`.
 */
export interface TextRowsFile {
  path: string;
  rows: number;
  /** Steps increase strictly from line to line; minStep is the first line's, maxStep the last's. */
  minStep: number;
  maxStep: number;
  /** The keys of the number fields, in field order (well-formed text: see typedKey in history-split.ts). */
  keys: readonly string[];
  /** The kinds mask (KIND_BITS) of each metric key over the file's rows. */
  kinds: ReadonlyMap<string, number>;
}

export interface HistoryWrite {
  /** Delete all stored history of the run before writing (force refresh, changed selection). */
  replace: boolean;
  /** Otherwise rows with step >= fromStep are deleted first, so a retried append never duplicates. */
  fromStep: number;
  batches: AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>;
  /**
   * Parquet history exports whose rows come before `batches` (every step of them below the batches' steps). The
   * DuckDB backend inserts them with SQL (src/archive/parquet-ingest.ts); otherwise their rows are decoded and
   * written like the batches. The files must stay until writeRun returns.
   */
  parquetSources?: ParquetSource[];
  /**
   * DuckDB only (writeRunStreamed): text row files, inserted before `parquetSources` and `batches`, each file's steps
   * above every step before it (the previous files', and `fromStep - 1` or, on replace, anything) and below every
   * step of `parquetSources`; `batches` may hold any steps (a step already written is overwritten). Iterated
   * lazily: the next file is asked for while the previous one is being inserted, so that the caller can produce it
   * (decode a log) beside DuckDB's work. A file may be deleted once the next one is asked for or writeRun returns.
   */
  textRows?: Iterable<TextRowsFile>;
}

export interface RunWrite {
  record: RunRecord;
  state: RunSyncState;
  history?: HistoryWrite;
  /** When given, replaces the run's stored system metrics. */
  systemMetrics?: SystemMetricsRecord[];
  /** When given, replaces the run's file rows. */
  files?: FileRecord[];
  /**
   * Record columns to keep from the stored row when the run already exists (e.g. wandb_metadata, which is not
   * refetched for runs that only changed). Ignored for a run that is not stored yet.
   */
  preserve?: ("wandb_metadata" | "sweep_info")[];
  /**
   * Where the run came from (runs.source): the path of the local `.wandb` file `dr-wandb import` read it from.
   * Absent: "wandb-server" (a sync).
   */
  source?: string;
}

/**
 * writeRunStreamed's argument: the run's history is written first (text rows produced while it is being written),
 * then `finish` gives the rest of the run, all in one transaction as writeRun. `finish` may throw to roll back.
 */
export interface StreamedRunWrite {
  entity: string;
  project: string;
  run_id: string;
  history: HistoryWrite;
  finish(): Omit<RunWrite, "history">;
}

/** Which runs an export reads. */
export interface ExportFilter {
  entity?: string;
  project?: string;
}

/**
 * The hook of the Parquet export (src/export/), implemented by both backends: runs `fn` with a DuckDB connection in
 * which the archive's tables (runs, history, system_metrics, files, metric_keys) hold at least the rows selected by
 * `filter` (DuckDB: the archive itself; PostgreSQL: the selected rows copied into a temporary DuckDB).
 */
export interface DuckDBExportSource {
  withDuckDBTables<T>(
    filter: ExportFilter,
    fn: (conn: import("@duckdb/node-api").DuckDBConnection) => Promise<T>,
  ): Promise<T>;
}

export function isDuckDBExportSource(a: unknown): a is DuckDBExportSource {
  return typeof (a as Partial<DuckDBExportSource> | null)?.withDuckDBTables === "function";
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

export interface ProjectStatus {
  entity: string;
  project: string;
  runs: number;
  runsByState: Record<string, number>;
  deletedRuns: number;
  historyRows: number;
  lastSyncAt: string | null;
}

export interface ArchiveStatus {
  kind: ArchiveKind;
  location: string;
  schemaVersion: number;
  projects: ProjectStatus[];
}

export type ArchiveKind = "duckdb" | "postgres";

export interface SyncLogEntry {
  entity: string;
  project: string;
  started_at: string;
  finished_at: string;
  runs_seen: number;
  runs_written: number;
  history_rows: number;
  requests: number;
  options: string;
}

export interface Archive extends DuckDBExportSource {
  readonly kind: ArchiveKind;
  /** File path or URL with any password removed. */
  readonly location: string;
  /** Sync state of every run of a project, keyed by run_id (deleted runs included). */
  loadSyncState(entity: string, project: string): Promise<Map<string, RunSyncState>>;
  /**
   * Writes a run's record, its history rows, system metrics, files and sync state in ONE transaction: after a crash
   * the archive holds either the run as it was before or the run as it is now, never a mix.
   */
  writeRun(write: RunWrite): Promise<{ historyRows: number }>;
  /**
   * Optional capability (the DuckDB backend has it; PostgreSQL does not): writeRun with the history first and taking
   * `history.textRows`, so that the history can be produced while it is written. The record, state, metrics and
   * files come from `finish()` once the history is in; one transaction as writeRun. writeRun itself refuses
   * `textRows`.
   */
  writeRunStreamed?(write: StreamedRunWrite): Promise<{ historyRows: number }>;
  /** Records and states of many runs in one transaction (runs-only syncs); history is left as it is. */
  writeRunRecords(items: { record: RunRecord; state: RunSyncState }[]): Promise<void>;
  /** Marks runs deleted on the server (rows kept, runs.deleted = true, sync_state.deleted = true). */
  markDeleted(entity: string, project: string, runIds: string[]): Promise<void>;
  logSync(entry: SyncLogEntry): Promise<void>;
  query(sql: string): Promise<QueryResult>;
  /** The browser viewer's reads (src/archive/viewer.ts): parameterised SQL, one operation at a time like the rest. */
  viewer(): ViewerReads;
  status(): Promise<ArchiveStatus>;
  close(): Promise<void>;
}

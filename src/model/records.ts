/**
 * The records dr-wandb stores and exports. Field names are the original dr_wandb's (snake_case), so a user of
 * the Python tool finds the same names in the pickle, Parquet, JSONL and SQL outputs.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "./json.js";

export interface RunRecord {
  entity: string;
  project: string;
  /** The short W&B run id (W&B `name`). */
  run_id: string;
  /** The human-readable name (W&B `displayName`). */
  run_name: string | null;
  state: string | null;
  /** ISO-8601 UTC with a trailing Z. */
  created_at: string;
  heartbeat_at: string | null;
  config: JsonObject;
  summary: JsonObject;
  /** The run's wandb-metadata.json (empty object when the run has none). */
  wandb_metadata: JsonObject;
  system_metrics: JsonObject;
  /** The raw run record as W&B returned it (JSON-string fields decoded, config still wrapped). */
  system_attrs: JsonObject;
  /** {sweep_id, sweep_name, sweep_url, ...} when the run belongs to a sweep; empty object otherwise. */
  sweep_info: JsonObject;
  tags: string[];
  group: string | null;
  job_type: string | null;
  /** The username of the run's author. */
  user: string | null;
  notes: string | null;
  commit: string | null;
  history_keys: JsonValue;
  /** historyKeys.lastStep; -1 for a run without history. */
  last_history_step: number;
  storage_id: string;
}

/**
 * THE list of a run's fields, in output order: the original dr_wandb's 12 keys first (same names, same order), then
 * ours. `satisfies` and the check below keep it and RunRecord from drifting apart; the column lists below are checked
 * against it.
 */
export const RUN_FIELDS = [
  "run_id",
  "run_name",
  "state",
  "project",
  "entity",
  "created_at",
  "config",
  "summary",
  "wandb_metadata",
  "system_metrics",
  "system_attrs",
  "sweep_info",
  "tags",
  "group",
  "job_type",
  "user",
  "heartbeat_at",
  "notes",
  "commit",
  "history_keys",
  "last_history_step",
  "storage_id",
] as const satisfies readonly (keyof RunRecord)[];

// Compile-time check that RUN_FIELDS names every RunRecord key.
type MissingRunField = Exclude<keyof RunRecord, (typeof RUN_FIELDS)[number]>;
const _allRunFields: MissingRunField extends never ? true : never = true;
void _allRunFields;

/** The columns of a run record that are neither JSON nor lists, in export order. */
export const RUN_SCALAR_COLUMNS = [
  "run_id",
  "run_name",
  "state",
  "project",
  "entity",
  "created_at",
  "heartbeat_at",
  "group",
  "job_type",
  "user",
  "notes",
  "commit",
  "last_history_step",
  "storage_id",
] as const;

/** The JSON components of a run record, as in the original's runs_metadata_{component}.parquet files. */
export const RUN_JSON_COMPONENTS = [
  "config",
  "summary",
  "wandb_metadata",
  "system_metrics",
  "system_attrs",
  "sweep_info",
] as const;

/** The list columns of a run record; with the scalar columns and the JSON components, every field of RUN_FIELDS. */
export const RUN_LIST_COLUMNS = ["tags", "history_keys"] as const;

// Compile-time check that the scalar columns, JSON components and list columns are exactly RUN_FIELDS.
type RunColumn =
  | (typeof RUN_SCALAR_COLUMNS)[number]
  | (typeof RUN_JSON_COMPONENTS)[number]
  | (typeof RUN_LIST_COLUMNS)[number];
const _columnsCoverFields: Exclude<(typeof RUN_FIELDS)[number], RunColumn> extends never
  ? Exclude<RunColumn, (typeof RUN_FIELDS)[number]> extends never
    ? true
    : never
  : never = true;
void _columnsCoverFields;

export interface HistoryRecord {
  run_id: string;
  step: number;
  /** `_timestamp` as Unix seconds (float), or null. Writers turn it into a UTC timestamp. */
  timestamp: number | null;
  /** `_runtime` in seconds, or null. */
  runtime: number | null;
  /** `_wandb`, or an empty object. */
  wandb_metadata: JsonValue;
  /** Every key not starting with `_`. */
  metrics: JsonObject;
  /** The other `_` keys (not `_step`, `_timestamp`, `_runtime`, `_wandb`), kept rather than dropped. */
  extra: JsonObject;
}

/** The fixed (non-metric) columns of a history row, in export order. */
export const HISTORY_FIXED_COLUMNS = ["run_id", "step", "timestamp", "runtime", "wandb_metadata", "extra"] as const;

export interface SystemMetricsRecord {
  run_id: string;
  timestamp: number | null;
  runtime: number | null;
  metrics: JsonObject;
}

export interface FileRecord {
  entity: string;
  project: string;
  run_id: string;
  name: string;
  size: number;
  md5: string | null;
  updated_at: string | null;
  /** Path relative to the output folder, or null when the file was listed but not downloaded. */
  local_path: string | null;
}

/** A number, bigint or numeric text as a number (what `_timestamp`/`_runtime` are stored as), else null. */
export function asNumber(v: JsonValue | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))) return Number(v);
  return null;
}

/** Normalises a W&B step (which may arrive as a float such as 10.0) to an integer. */
export function normaliseStep(v: JsonValue | undefined): number | null {
  const n = asNumber(v);
  if (n === null || !Number.isFinite(n)) return null;
  return Math.round(n);
}

type Splitter = (row: JsonObject) => { metrics: JsonObject; extra: JsonObject };

/** A key as an object-literal key in generated code (`__proto__` computed, so that it stays an own key). */
export function literalKey(name: string): string {
  return name === "__proto__" ? '["__proto__"]' : JSON.stringify(name);
}

/**
 * A function splitting rows with exactly these keys (in this order) into metrics and extra, with object literals:
 * objects filled key by key with 30+ keys fall into V8's dictionary mode (more memory, slower to use).
 */
function makeSplitter(keys: readonly string[]): Splitter {
  const metrics: string[] = [];
  const extra: string[] = [];
  keys.forEach((k, i) => {
    const entry = `${literalKey(k)}: row[k[${i}]]`;
    if (!k.startsWith("_")) metrics.push(entry);
    else if (k !== "_step" && k !== "_timestamp" && k !== "_runtime" && k !== "_wandb") extra.push(entry);
  });
  const f = new Function("k", "row", `return { metrics: {${metrics.join(",")}}, extra: {${extra.join(",")}} };`);
  const frozen = [...keys];
  return (row) => f(frozen, row);
}

/** The last rows' key lists and their splitters (rows of one run mostly share their keys). */
const splitters = new Map<string, Splitter>();
let lastKeys: string[] = [];
let lastSplitter: Splitter | null = null;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Splits any row with a loop (the same objects, key order included, as a compiled splitter makes). */
function splitLoop(row: JsonObject): { metrics: JsonObject; extra: JsonObject } {
  const metrics: JsonObject = {};
  const extra: JsonObject = {};
  for (const k of Object.keys(row)) {
    const target = !k.startsWith("_")
      ? metrics
      : k !== "_step" && k !== "_timestamp" && k !== "_runtime" && k !== "_wandb"
        ? extra
        : null;
    if (target === null) continue;
    if (k === "__proto__")
      Object.defineProperty(target, k, { value: row[k], enumerable: true, writable: true, configurable: true });
    else target[k] = row[k]!;
  }
  return { metrics, extra };
}

/** Compiled splitters made recently; beyond SPLITTER_BUDGET of them (rows whose keys come in ever new orders, as
 * the wandb client writes them), compiling costs more than it saves and rows are split with a loop. */
let compiledRecently = 0;
let rowsSinceCompile = 0;
const SPLITTER_BUDGET = 64;

function splitterFor(keys: string[]): Splitter {
  if (lastSplitter !== null && sameKeys(keys, lastKeys)) return lastSplitter;
  const sig = keys.join("\u0000");
  let s = splitters.get(sig);
  if (s === undefined) {
    if (++rowsSinceCompile > 10_000) {
      rowsSinceCompile = 0;
      compiledRecently = 0;
    }
    if (compiledRecently >= SPLITTER_BUDGET) return splitLoop;
    compiledRecently++;
    if (splitters.size >= 1024) splitters.clear();
    s = makeSplitter(keys);
    splitters.set(sig, s);
  }
  lastKeys = keys;
  lastSplitter = s;
  return s;
}

/** Splits one raw W&B history row into a HistoryRecord. Returns null for a row without a usable `_step`. */
export function toHistoryRecord(runId: string, row: JsonObject): HistoryRecord | null {
  const step = normaliseStep(row._step);
  if (step === null) return null;
  const { metrics, extra } = splitterFor(Object.keys(row))(row);
  const wm = row._wandb;
  return {
    run_id: runId,
    step,
    timestamp: asNumber(row._timestamp),
    runtime: asNumber(row._runtime),
    wandb_metadata: wm === undefined ? {} : wm,
    metrics,
    extra,
  };
}

/** Turns one system-metrics event row into a record (every key except `_timestamp`/`_runtime` is a metric). */
export function toSystemMetricsRecord(runId: string, row: JsonObject): SystemMetricsRecord {
  const metrics: JsonObject = {};
  for (const k of Object.keys(row)) if (k !== "_timestamp" && k !== "_runtime") metrics[k] = row[k]!;
  return { run_id: runId, timestamp: asNumber(row._timestamp), runtime: asNumber(row._runtime), metrics };
}

/** Milliseconds of a W&B time ("2025-01-02T03:04:05": no zone means UTC; a zone or fraction is honoured), or NaN. */
export function wandbTimeMs(s: string): number {
  return Date.parse(/(?:Z|[+-]\d{2}:?\d{2})$/.test(s) ? s : `${s}Z`);
}

/** W&B timestamps come without a zone and mean UTC; this gives ISO-8601 with a Z (or the input if unparsable). */
export function toUtcIso(s: string | null | undefined): string | null {
  if (s === null || s === undefined || s === "") return null;
  const ms = wandbTimeMs(s);
  return Number.isNaN(ms) ? s : new Date(ms).toISOString();
}

export function lastStepOf(historyKeys: JsonValue): number {
  if (isJsonObject(historyKeys)) {
    const n = normaliseStep(historyKeys.lastStep);
    if (n !== null) return n;
  }
  return -1;
}

/**
 * The contract between the two halves of fake-wandb:
 *   - the data half (generator.ts, store.ts, encode.ts, filters.ts, parquet.ts): a seeded, deterministic W&B
 *     project held in memory (history generated on demand, never materialised for the whole project);
 *   - the server half (server.ts, schema.ts, resolvers.ts, bin.ts, index.ts): HTTP, GraphQL, auth, faults.
 * fake-wandb stands apart from the product: it never imports from src/.
 */

/** A JSON value as the fake holds it (bigint for integers beyond 2^53; NaN/±Infinity as JS numbers). */
export type FValue = null | boolean | number | bigint | string | FValue[] | FObject;
export interface FObject {
  [key: string]: FValue;
}

export type Profile = "default" | "edge";

export interface GeneratorOptions {
  seed: number;
  entity: string;
  project: string;
  runs: number;
  /** History steps per run (runs vary around this in the edge profile). */
  steps: number;
  /** Metric keys per run (besides _step, _runtime, _timestamp). */
  metrics: number;
  profile: Profile;
  /** Fraction of runs in state "running" (default profile). Default 0.1. */
  runningFraction?: number;
  /** System-metric events per run. Default 20. */
  events?: number;
}

export interface FakeUser {
  name: string;
  username: string;
  email: string;
}

/** One run's metadata. History rows are generated on demand from (seed, run, step). */
export interface FakeRun {
  /** Short run id (W&B `name`). */
  name: string;
  /** base64("Run:v1:<name>:<project>:<entity>") */
  storageId: string;
  displayName: string;
  state: "running" | "finished" | "crashed" | "failed" | "killed" | "preempted";
  tags: string[];
  group: string | null;
  jobType: string | null;
  sweepName: string | null;
  commit: string | null;
  readOnly: boolean;
  /** "2025-01-02T03:04:05" (no zone, as W&B sends it). */
  createdAt: string;
  heartbeatAt: string;
  description: string | null;
  notes: string | null;
  user: FakeUser;
  /** Unwrapped config (the truth); the wire form wraps each value as {"value": v, "desc": d}. */
  config: FObject;
  /** The `_wandb` config entry (kept separate; wire config holds it as {"value": {...}}). */
  wandbConfig: FObject;
  summary: FObject;
  systemMetrics: FObject;
  /** First and last step that exist (-1/-1 for a run without history). Steps in between may be sparse. */
  firstStep: number;
  lastStep: number;
  /** Number of history rows. */
  historyLineCount: number;
  /** Steps < exportedThrough are covered by parquet exports (0 = nothing exported). */
  exportedThrough: number;
  deleted: boolean;
}

export interface FakeFile {
  name: string;
  sizeBytes: number;
  md5: string;
  mimetype: string;
  updatedAt: string;
}

export interface ParquetExport {
  /** Stable id used in the download URL. */
  id: string;
  /** Absolute path of the file on disk (written lazily on first request, then cached). */
  path: string;
  sizeBytes: number;
}

export type MutateOp =
  | { op: "appendSteps"; run: string; steps: number }
  | { op: "setState"; run: string; state: FakeRun["state"] }
  | { op: "setTags"; run: string; tags: string[] }
  | { op: "setSummary"; run: string; summary: FObject }
  | { op: "setConfig"; run: string; config: FObject }
  | { op: "addRuns"; count: number }
  | { op: "deleteRun"; run: string }
  | { op: "finishRun"; run: string };

/** The data half, as the server half uses it. */
export interface FakeStore {
  readonly entity: string;
  readonly project: string;
  /** Numeric project id (the SDK does int(projectId)). */
  readonly projectId: number;
  readonly internalId: string;
  readonly viewer: FakeUser & { id: string; entity: string };
  /** Whether finished runs get parquet exports at all. */
  exportsEnabled: boolean;

  /** Non-deleted runs in creation order. */
  runs(): FakeRun[];
  /** A non-deleted run, or undefined. */
  run(name: string): FakeRun | undefined;
  /** Runs matching a W&B filter (a parsed Mongo-style object), sorted by a W&B order string. Throws FilterError. */
  query(filters: FObject | null, order: string | null): FakeRun[];

  /** The wire `config` JSON string: {"k": {"value": v, "desc": d}, "_wandb": {"value": {...}}}. */
  wireConfig(run: FakeRun): string;
  wireSummary(run: FakeRun): string;
  wireSystemMetrics(run: FakeRun): string;
  /** The historyKeys JSON object: {"lastStep": N, "keys": {"<k>": {"typeCounts": [...]}}}. */
  historyKeys(run: FakeRun): FObject;

  /** Rows with minStep <= _step < maxStep in step order (full rows, truth values). */
  historyRows(run: FakeRun, minStep: number, maxStep: number): FObject[];
  /** One history row as the wire string (NaN/Infinity bare, _step sometimes as a float like 10.0). */
  encodeHistoryLine(row: FObject): string;
  /** Random down-sampling to about `samples` rows (W&B history(samples)). */
  sampleHistory(run: FakeRun, samples: number, minStep?: number, maxStep?: number): FObject[];
  /** sampledHistory spec semantics: only rows having every key, projected to the keys; maxStep inclusive. */
  sampledHistory(
    run: FakeRun,
    spec: { keys: string[]; samples?: number; minStep?: number; maxStep?: number },
  ): FObject[];
  /** System metric events (full list; the server samples). */
  events(run: FakeRun): FObject[];

  /** Parquet exports covering steps < run.exportedThrough ([] when none or exports are off). */
  parquetExports(run: FakeRun): Promise<ParquetExport[]>;
  /** liveData for parquetHistory(liveKeys): one object per not-yet-exported step, projected to liveKeys. */
  liveData(run: FakeRun, liveKeys: string[]): FObject[];

  files(run: FakeRun): FakeFile[];
  fileContent(run: FakeRun, name: string): Buffer | undefined;

  /** Canonical truth, as served by /_fake/truth/*. */
  truthRun(run: FakeRun): FObject;
  /** A row in truth encoding (NaN/Infinity bare tokens, exact bigints), one NDJSON line without newline. */
  truthLine(row: FObject): string;

  mutate(op: MutateOp): void;
}

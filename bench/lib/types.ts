/** The shape of bench/results/*.json. */
import type { BoundResult } from "./bound.js";
import type { FakeSettings } from "./fake.js";
import type { Mutations, ScenarioId } from "./scenarios.js";
import type { ToolId } from "./tools.js";

export interface RequestStats {
  /** Every request the fake counted (API host and storage host). */
  total: number;
  /** Requests to the API host (GraphQL and /files), 429 answers included. */
  apiHost: number;
  graphql: number;
  storage: number;
  parquet: number;
  files: number;
  bytesOut: number;
  rateLimited: number;
  byOperation: Record<string, number>;
  byStatus: Record<string, number>;
}

export type Status = "ok" | "failed" | "timeout" | "memory-cap" | "unavailable";

export interface Measurement {
  scenario: ScenarioId;
  tool: ToolId;
  label: string;
  /** For S3: "incremental" or "full-baseline". */
  role?: string;
  command: string;
  /** The source our commands were built from when this row was measured. */
  source?: string;
  /** When this row was measured. */
  at?: string;
  status: Status;
  wallS: number | null;
  timeoutS: number;
  exitCode: number | null;
  peakRssMb: number | null;
  maxProcesses: number | null;
  /**
   * Our commands only: where the memory went, from the tool's own DR_WANDB_MEMORY_TRACE sampler (src/model/
   * memory-trace.ts), in MB: the sample with the highest RSS (rss, JS heap used/total, external of which
   * arrayBuffers, DuckDB's buffer manager) and each field's maximum over the run.
   */
  memory?: { atPeakRss: Record<string, number>; max: Record<string, number>; vmHwm: number | null };
  /** CPU seconds of the tool's process tree (robust to other load on the machine, unlike wall time). */
  cpuS?: number | null;
  /** Mean 1-minute load average of the machine while the tool ran (2 cores: above ~2 means contention). */
  meanLoad?: number | null;
  requests: RequestStats | null;
  runs: number | null;
  expectedRuns: number | null;
  historyRows: number | null;
  expectedRows: number | null;
  /** True when historyRows was estimated from progress (a peer stopped at its limit). */
  rowsEstimated: boolean;
  failedRuns: number | null;
  rowsPerS: number | null;
  progress?: { done: number; total: number; rows?: number };
  /**
   * For a peer stopped at its limit: its wall time extrapolated linearly from its progress (limit x total / done).
   * An estimate, never used to decide a target.
   */
  extrapolatedWallS?: number;
  rate?: {
    limit: number;
    acceptedApiRequests: number;
    activeWindowS: number;
    perSecondActive: number;
    perSecondWall: number;
  };
  error?: string;
  stderrTail?: string;
  detail?: Record<string, unknown>;
}

export interface TargetCheck {
  scenario: ScenarioId;
  name: string;
  target: string;
  measured: string;
  /** null: could not be evaluated (a tool missing or failed). */
  met: boolean | null;
  note?: string;
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  settings: FakeSettings;
  mutations?: Mutations & { appended: string[]; finished: string[] };
  fakeStartS?: number;
  warmupS?: number;
  truth: { runs: number; historyRows: number; running: number };
  bound?: BoundResult & { requests: RequestStats | null };
  measurements: Measurement[];
  ranAt: string;
  /** The source our commands were built from (commit, uncommitted changes) for this scenario's run. */
  source?: string;
}

export interface Results {
  mode: "quick" | "full";
  generatedAt: string;
  command: string;
  /** Every invocation whose measurements this file holds (results merge by scenario and tool). */
  commands?: string[];
  machine: Record<string, string | number>;
  peers: Record<string, string>;
  /** How our commands and the fake were run (compiled or through tsx). */
  runtime: string;
  peerTimeoutS: number;
  oursTimeoutS: number;
  scenarios: Partial<Record<ScenarioId, ScenarioResult>>;
  targets: TargetCheck[];
}

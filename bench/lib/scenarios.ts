/** Scenario settings (full and --quick) and the targets from issues #6 and #13 (S5). */
import type { FakeSettings } from "./fake.js";

export type ScenarioId = "S1" | "S2" | "S3" | "S4" | "S5";
export const SCENARIO_IDS: ScenarioId[] = ["S1", "S2", "S3", "S4", "S5"];

/** The one seed every scenario uses. */
export const SEED = 20261126;
/** Latency model, the same for every tool and scenario: 80 ms per request plus a size cost. */
export const LATENCY_MS = 80;
/** 0.05 ms per KB of response body, i.e. a response streams at about 20 MB/s on top of the 80 ms. */
export const LATENCY_PER_KB_MS = 0.05;

export interface Mutations {
  /** Append this many steps to each of the first `appendRuns` running runs (by creation order). */
  appendRuns: number;
  appendSteps: number;
  /** Then finish the first `finishRuns` of those. */
  finishRuns: number;
  /** Then add this many new runs. */
  addRuns: number;
}

export interface Plan {
  quick: boolean;
  s1: FakeSettings;
  s2: FakeSettings;
  s3: Mutations;
  s4: FakeSettings;
  /** S2's shape at a size the original tool can finish on this machine (issue #13). */
  s5: FakeSettings;
  /** Per tool-scenario limit for the peers (Python tools). */
  peerTimeoutMs: number;
  /** Per tool-scenario limit for our own commands. */
  oursTimeoutMs: number;
}

function base(over: Partial<FakeSettings>): FakeSettings {
  return {
    seed: SEED,
    runs: 20,
    steps: 200,
    metrics: 30,
    runningFraction: 0.1,
    latencyMs: LATENCY_MS,
    latencyPerKbMs: LATENCY_PER_KB_MS,
    rateLimit: 0,
    parquetExports: true,
    ...over,
  };
}

export function makePlan(quick: boolean, peerTimeoutMin?: number): Plan {
  if (quick) {
    return {
      quick,
      s1: base({ runs: 100, steps: 100 }),
      s2: base({ runs: 10, steps: 1000, metrics: 10, runningFraction: 0.2 }),
      s3: { appendRuns: 2, appendSteps: 200, finishRuns: 1, addRuns: 1 },
      s4: base({ runs: 4, steps: 500, metrics: 10, rateLimit: 5, parquetExports: false }),
      s5: base({ runs: 5, steps: 1000, metrics: 10, runningFraction: 0.1 }),
      peerTimeoutMs: (peerTimeoutMin ?? 10 / 60) * 60_000,
      oursTimeoutMs: 120_000,
    };
  }
  return {
    quick,
    s1: base({ runs: 10_000, steps: 100 }),
    s2: base({ runs: 200, steps: 20_000, metrics: 30, runningFraction: 0.1 }),
    s3: { appendRuns: 20, appendSteps: 1000, finishRuns: 10, addRuns: 5 },
    s4: base({ runs: 50, steps: 5000, metrics: 30, rateLimit: 5, parquetExports: false }),
    s5: base({ runs: 50, steps: 20_000, metrics: 30, runningFraction: 0.1 }),
    peerTimeoutMs: (peerTimeoutMin ?? 15) * 60_000,
    oursTimeoutMs: 30 * 60_000,
  };
}

export const TARGETS = {
  s1SpeedupVsOriginal: 50,
  s1BoundFactor: 1.5,
  s2SpeedupVsOriginal: 10,
  /** Issue #13 (was 3x in issue #6). */
  s2SpeedupVsSdk: 8,
  /** Issue #13: CPU microseconds per history row of our commands in S2. */
  s2MaxCpuUsPerRow: 15,
  s3MaxRequestFraction: 0.02,
  /** Issue #13: the incremental sync's wall time against a full sync's. */
  s3MaxWallFraction: 0.05,
  s4MinRateFraction: 0.9,
  /** S5 (issue #13): the ratio against the original measured, not bounded by its time limit. */
  s5SpeedupVsOriginal: 10,
  maxPeakRssMb: 300,
} as const;

export const SCENARIO_TITLES: Record<ScenarioId, string> = {
  S1: "list every run (rich config and summary), runs only",
  S2: "full download: runs and every history row, 10% of runs still running with a live tail",
  S3: "incremental sync after S2: steps appended to running runs, some finished, new runs added",
  S4: "no parquet exports, API host limited to 5 requests/s (429 beyond)",
  S5: "S2's shape at a size the original tool finishes: runs and every history row, running runs with a live tail",
};

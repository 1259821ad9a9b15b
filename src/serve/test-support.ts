/**
 * For the viewer's tests: an archive synced from fake-wandb's edge profile (runs, files, system metrics), plus runs
 * written through the Archive interface that the fake has no way to make: a hostile run (HTML and SQL in its id,
 * name, tags and a metric key), and a "spikes" run of many steps with one-step spikes, NaN and ±Infinity.
 */
import type { Archive, RunSyncState } from "../archive/index.js";
import type { JsonObject } from "../model/json.js";
import type { HistoryRecord, RunRecord } from "../model/records.js";

export const HOSTILE_ID = `x'); DROP TABLE runs; --<img src=x onerror="window.__pwned=1">`;
export const HOSTILE_NAME = `<script>window.__pwned=2</script>"'; DELETE FROM history; --`;
export const HOSTILE_KEY = `k'"); DROP TABLE history; --<b onmouseover=alert(1)>`;
export const SPIKE_STEPS = 5000;
/** Steps of the spikes run that hold special values (every other step holds a smooth value near 1). */
export const SPIKES = { high: 1234, low: 3210, nan: 2000, inf: 2500, ninf: 4000, high2: 4999 } as const;

export function spikeValue(step: number): number {
  if (step === SPIKES.high) return 1000;
  if (step === SPIKES.high2) return 777;
  if (step === SPIKES.low) return -1000;
  if (step === SPIKES.nan) return Number.NaN;
  if (step === SPIKES.inf) return Number.POSITIVE_INFINITY;
  if (step === SPIKES.ninf) return Number.NEGATIVE_INFINITY;
  return 1 + Math.sin(step / 100) * 0.1;
}

function record(entity: string, project: string, runId: string, name: string, extra: Partial<RunRecord>): RunRecord {
  return {
    entity,
    project,
    run_id: runId,
    run_name: name,
    state: "finished",
    created_at: "2026-01-02T03:04:05.000Z",
    heartbeat_at: "2026-01-02T04:04:05.000Z",
    config: {},
    summary: {},
    wandb_metadata: {},
    system_metrics: {},
    system_attrs: {},
    sweep_info: {},
    tags: [],
    group: null,
    job_type: null,
    user: "tester",
    notes: null,
    commit: null,
    history_keys: null,
    last_history_step: -1,
    storage_id: `storage-${runId}`,
    ...extra,
  };
}

function state(r: RunRecord, last: number): RunSyncState {
  return {
    entity: r.entity,
    project: r.project,
    run_id: r.run_id,
    state: r.state,
    heartbeat_at: r.heartbeat_at,
    last_step: last,
    history_complete: true,
    fingerprint: "test",
    deleted: false,
    synced_at: "2026-01-03T00:00:00.000Z",
    selection: "{}",
  };
}

/** Writes the hostile and spikes runs into `entity/project`. */
export async function writeExtraRuns(archive: Archive, entity: string, project: string): Promise<void> {
  const hostile = record(entity, project, HOSTILE_ID, HOSTILE_NAME, {
    tags: ["<i>tag</i>", "' OR 1=1 --"],
    group: "</td><td>",
    config: { [HOSTILE_KEY]: "<b>bold?</b>", big: 2n ** 64n + 7n, lr: 0.5 } as JsonObject,
    summary: { [HOSTILE_KEY]: 3 },
  });
  const rows: HistoryRecord[] = [];
  for (let step = 0; step < 50; step++) {
    rows.push({
      run_id: HOSTILE_ID,
      step,
      timestamp: 1767323045 + step,
      runtime: step,
      metrics: { [HOSTILE_KEY]: step * 2, loss: 1 / (step + 1) },
      wandb_metadata: {},
      extra: {},
    });
  }
  await archive.writeRun({
    record: hostile,
    state: state(hostile, 49),
    history: { replace: true, fromStep: 0, batches: [rows] },
  });
  const spikes = record(entity, project, "spikes-run", "spikes", {
    config: { lr: 0.01, kind: "spikes" },
    summary: { loss: 1 },
  });
  const batches: HistoryRecord[][] = [];
  for (let start = 0; start < SPIKE_STEPS; start += 1000) {
    const b: HistoryRecord[] = [];
    for (let step = start; step < Math.min(SPIKE_STEPS, start + 1000); step++) {
      b.push({
        run_id: "spikes-run",
        step,
        timestamp: 1767323045 + step,
        runtime: step / 10,
        metrics: { spiky: spikeValue(step) },
        wandb_metadata: {},
        extra: {},
      });
    }
    batches.push(b);
  }
  await archive.writeRun({
    record: spikes,
    state: state(spikes, SPIKE_STEPS - 1),
    history: { replace: true, fromStep: 0, batches },
  });
}

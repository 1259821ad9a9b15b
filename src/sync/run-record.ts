/** Builds the stored/exported run record from a decoded W&B run. */
import { isJsonObject, type JsonObject } from "../model/json.js";
import { type RunRecord, toUtcIso } from "../model/records.js";
import type { WandbRun, WandbSweep } from "../wandb/types.js";

/** The W&B app URL that belongs to an API base URL (api.wandb.ai → wandb.ai; self-hosted: the same host). */
export function appUrlFor(baseUrl: string): string {
  try {
    const u = new URL(baseUrl);
    if (u.hostname === "api.wandb.ai") u.hostname = "wandb.ai";
    return u.origin;
  } catch {
    return baseUrl;
  }
}

/**
 * sweep_info of a run: {} without a sweep. With one, the sweep's own fields when it was read from W&B (`sweep`), else
 * (not read, or not found) the fallback fields {sweep_id, sweep_name, sweep_url} from the run's sweepName alone.
 * sweep_id is the short id of URLs (W&B's sweep `name`); sweep_name is the SDK's `sweep.name` (display name, else
 * the config's name, else the id); config is the parsed sweep configuration (or its YAML text).
 */
export function sweepInfoFor(run: WandbRun, baseUrl: string, sweep?: WandbSweep | null): JsonObject {
  if (!run.sweepName) return {};
  const app = appUrlFor(baseUrl);
  const path = [run.entity, run.project, "sweeps", run.sweepName].map(encodeURIComponent).join("/");
  const sweep_url = `${app}/${path}`;
  if (!sweep) return { sweep_id: run.sweepName, sweep_name: run.sweepName, sweep_url };
  const configName = isJsonObject(sweep.config) && typeof sweep.config.name === "string" ? sweep.config.name : null;
  return {
    sweep_id: run.sweepName,
    sweep_name: sweep.displayName || configName || run.sweepName,
    display_name: sweep.displayName,
    method: sweep.method,
    state: sweep.state,
    description: sweep.description,
    best_loss: sweep.bestLoss,
    config: sweep.config,
    run_count: sweep.runCount,
    run_count_expected: sweep.runCountExpected,
    created_at: toUtcIso(sweep.createdAt),
    updated_at: toUtcIso(sweep.updatedAt),
    sweep_url,
  };
}

export function toRunRecord(
  run: WandbRun,
  extras: {
    wandbMetadata: JsonObject | null;
    baseUrl: string;
    /** The run's sweep as read from W&B (SweepCache); null or absent: sweep_info's fallback fields. */
    sweep?: WandbSweep | null;
  },
): RunRecord {
  return {
    entity: run.entity,
    project: run.project,
    run_id: run.name,
    run_name: run.displayName,
    state: run.state,
    created_at: toUtcIso(run.createdAt) ?? run.createdAt,
    heartbeat_at: toUtcIso(run.heartbeatAt),
    config: run.config,
    summary: run.summary,
    wandb_metadata: extras.wandbMetadata ?? {},
    system_metrics: run.systemMetrics,
    system_attrs: run.raw,
    sweep_info: sweepInfoFor(run, extras.baseUrl, extras.sweep),
    tags: run.tags,
    group: run.group,
    job_type: run.jobType,
    user: run.user?.username ?? run.user?.name ?? null,
    notes: run.notes,
    commit: run.commit,
    history_keys: run.historyKeys,
    last_history_step: run.lastHistoryStep,
    storage_id: run.storageId,
  };
}

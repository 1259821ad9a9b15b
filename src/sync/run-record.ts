/** Builds the stored/exported run record from a decoded W&B run. */
import type { JsonObject } from "../model/json.js";
import { type RunRecord, toUtcIso } from "../model/records.js";
import type { WandbRun } from "../wandb/types.js";

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

export function sweepInfoFor(run: WandbRun, baseUrl: string): JsonObject {
  if (!run.sweepName) return {};
  const app = appUrlFor(baseUrl);
  const path = [run.entity, run.project, "sweeps", run.sweepName].map(encodeURIComponent).join("/");
  return { sweep_id: run.sweepName, sweep_name: run.sweepName, sweep_url: `${app}/${path}` };
}

export function toRunRecord(run: WandbRun, extras: { wandbMetadata: JsonObject | null; baseUrl: string }): RunRecord {
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
    sweep_info: sweepInfoFor(run, extras.baseUrl),
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

/**
 * A folded RunLog as the archive's rows: the same RunRecord/SystemMetricsRecord shapes a sync writes (src/sync/
 * run-record.ts), so export, query, status and the viewer read imported runs unchanged.
 */
import type { JsonObject, JsonValue } from "../model/json.js";
import type { RunRecord } from "../model/records.js";
import type { RunLog } from "./run-log.js";

/** W&B's state of a run from its log: the exit record decides; without one the run crashed (or is still writing). */
export function runState(log: RunLog): "finished" | "failed" | "crashed" | "preempted" {
  if (log.exit) return log.exit.exitCode === 0 ? "finished" : "failed";
  return log.preempted ? "preempted" : "crashed";
}

function iso(sec: number | null): string | null {
  if (sec === null || !Number.isFinite(sec)) return null;
  const d = new Date(Math.round(sec * 1000));
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** Config as a sync stores it: unwrapped values, without `_wandb` and `wandb_version` (those stay in system_attrs). */
function userConfig(config: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(config)) {
    if (k === "_wandb" || k === "wandb_version") continue;
    if (k === "__proto__") Object.defineProperty(out, k, { value: config[k], enumerable: true, writable: true });
    else out[k] = config[k]!;
  }
  return out;
}

/** W&B's wrapped config form ({key: {value, desc}}), as the server returns it to a sync. */
function wrappedConfig(config: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(config)) {
    const entry: JsonObject = { value: config[k]!, desc: null };
    if (k === "__proto__") Object.defineProperty(out, k, { value: entry, enumerable: true, writable: true });
    else out[k] = entry;
  }
  return out;
}

/** The last value of every system metric, as W&B's run.systemMetrics holds them. */
function lastSystemMetrics(log: RunLog): JsonObject {
  const out: JsonObject = {};
  for (const s of log.stats) Object.assign(out, s.metrics);
  return out;
}

export interface BuildContext {
  entity: string;
  project: string;
  /** The `.wandb` files read, oldest segment first. */
  paths: string[];
  /** wandb-metadata.json from the run folder, when the client wrote one. */
  metadataFile: JsonObject | null;
  warnings: string[];
}

export function buildRunRecord(log: RunLog, ctx: BuildContext): RunRecord {
  const f = log.fields!;
  const summary = log.summary();
  const state = runState(log);
  const created = iso(f.startTime) ?? iso(log.lastTime) ?? new Date(0).toISOString();
  const heartbeat = iso(log.lastTime ?? f.startTime);
  const historyKeys: JsonValue = log.maxStep >= 0 ? { lastStep: log.maxStep } : { lastStep: -1 };
  const metadata: JsonObject =
    ctx.metadataFile ?? (Object.keys(log.environment).length > 0 ? (log.environment as JsonObject) : {});
  const systemMetrics = lastSystemMetrics(log);
  const sweepInfo: JsonObject = f.sweepId ? { sweep_id: f.sweepId, sweep_name: f.sweepId } : {};
  const systemAttrs: JsonObject = {
    name: f.runId,
    displayName: f.displayName || null,
    state,
    createdAt: created,
    heartbeatAt: heartbeat,
    config: wrappedConfig(log.config),
    summaryMetrics: summary,
    systemMetrics,
    historyKeys,
    tags: f.tags,
    group: f.group || null,
    jobType: f.jobType || null,
    notes: f.notes || null,
    host: f.host || null,
    sweepName: f.sweepId || null,
    commit: f.commit || null,
    exitCode: log.exit ? log.exit.exitCode : null,
    runtime: log.exit ? log.exit.runtime : null,
    resumed: f.resumed,
    localImport: {
      files: ctx.paths,
      producer: log.producer,
      records: log.records,
      warnings: ctx.warnings.slice(0, 20),
    },
  };
  return {
    entity: ctx.entity,
    project: ctx.project,
    run_id: f.runId,
    run_name: f.displayName || null,
    state,
    created_at: created,
    heartbeat_at: heartbeat,
    config: userConfig(log.config),
    summary,
    wandb_metadata: metadata,
    system_metrics: systemMetrics,
    system_attrs: systemAttrs,
    sweep_info: sweepInfo,
    tags: f.tags,
    group: f.group || null,
    job_type: f.jobType || null,
    user: null,
    notes: f.notes || null,
    commit: f.commit || null,
    history_keys: historyKeys,
    last_history_step: log.maxStep,
    storage_id: f.storageId,
  };
}

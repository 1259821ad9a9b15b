/**
 * The column catalogues of the archive's tables as the shared SQL writes them (name and cast, in statement order),
 * and the statement parameters of a run and of its sync state in that order. The DDL is schema.ts.
 */
import type { JsonValue } from "../model/json.js";
import { RUN_JSON_COMPONENTS, type RunRecord } from "../model/records.js";
import type { RunSyncState } from "./archive.js";
import { tsText } from "./values.js";

export type Cast = "text" | "ts" | "json" | "tags" | "bigint" | "bool" | "double" | "int" | "doubles";

export const RUN_COLUMNS: [string, Cast][] = [
  ["entity", "text"],
  ["project", "text"],
  ["run_id", "text"],
  ["run_name", "text"],
  ["state", "text"],
  ["created_at", "ts"],
  ["heartbeat_at", "ts"],
  ["config", "json"],
  ["summary", "json"],
  ["wandb_metadata", "json"],
  ["system_metrics", "json"],
  ["system_attrs", "json"],
  ["sweep_info", "json"],
  ["tags", "tags"],
  ["group", "text"],
  ["job_type", "text"],
  ["user", "text"],
  ["notes", "text"],
  ["commit", "text"],
  ["history_keys", "json"],
  ["last_history_step", "bigint"],
  ["storage_id", "text"],
  ["deleted", "bool"],
  ["deleted_at", "ts"],
  ["synced_at", "ts"],
  ["source", "text"],
];

/** runs.source of a run written by a sync (RunWrite.source absent). */
export const RUN_SOURCE_SERVER = "wandb-server";

export const STATE_COLUMNS: [string, Cast][] = [
  ["entity", "text"],
  ["project", "text"],
  ["run_id", "text"],
  ["state", "text"],
  ["heartbeat_at", "text"],
  ["last_step", "bigint"],
  ["history_complete", "bool"],
  ["fingerprint", "text"],
  ["deleted", "bool"],
  ["synced_at", "text"],
  ["selection", "text"],
];

/** The columns of history_rows (src/archive/history-split.ts: what keyset, vals and rest hold). */
export const HISTORY_COLUMNS: [string, Cast][] = [
  ["entity", "text"],
  ["project", "text"],
  ["run_id", "text"],
  ["step", "bigint"],
  ["timestamp", "ts"],
  ["runtime", "double"],
  ["wandb_metadata", "json"],
  ["extra", "json"],
  ["keyset", "int"],
  ["vals", "doubles"],
  ["rest", "json"],
];

export const SYSTEM_COLUMNS: [string, Cast][] = [
  ["entity", "text"],
  ["project", "text"],
  ["run_id", "text"],
  ["timestamp", "ts"],
  ["runtime", "double"],
  ["metrics", "json"],
];

export const FILE_COLUMNS: [string, Cast][] = [
  ["entity", "text"],
  ["project", "text"],
  ["run_id", "text"],
  ["name", "text"],
  ["size", "bigint"],
  ["md5", "text"],
  ["updated_at", "ts"],
  ["local_path", "text"],
];

export function q(name: string): string {
  return `"${name}"`;
}

export function colList(cols: [string, Cast][]): string {
  return cols.map(([c]) => q(c)).join(", ");
}

export function paramRuns(
  record: RunRecord,
  state: RunSyncState,
  json: (v: JsonValue) => string,
  source = RUN_SOURCE_SERVER,
): unknown[] {
  return [
    record.entity,
    record.project,
    record.run_id,
    record.run_name,
    record.state,
    tsText(record.created_at),
    tsText(record.heartbeat_at),
    json(record.config ?? {}),
    json(record.summary ?? {}),
    json(record.wandb_metadata ?? {}),
    json(record.system_metrics ?? {}),
    json(record.system_attrs ?? {}),
    json(record.sweep_info ?? {}),
    JSON.stringify(record.tags ?? []),
    record.group,
    record.job_type,
    record.user,
    record.notes,
    record.commit,
    json(record.history_keys ?? null),
    Math.trunc(record.last_history_step ?? -1),
    record.storage_id,
    state.deleted,
    state.deleted ? tsText(state.synced_at) : null,
    tsText(state.synced_at),
    source,
  ];
}

export function paramState(s: RunSyncState): unknown[] {
  return [
    s.entity,
    s.project,
    s.run_id,
    s.state,
    s.heartbeat_at,
    Math.trunc(s.last_step),
    s.history_complete,
    s.fingerprint,
    s.deleted,
    s.synced_at,
    s.selection,
  ];
}

export function runWeight(record: RunRecord): number {
  // A rough byte size, to keep one multi-row statement from growing without bound (a config may be megabytes).
  let n = 1000;
  for (const k of RUN_JSON_COMPONENTS) {
    n += Object.keys(record[k] ?? {}).length * 64;
  }
  return n;
}

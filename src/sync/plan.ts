/**
 * The sync plan: a pure function from (what the archive remembers, what W&B lists, options) to what to fetch.
 * No I/O here, so every decision is tested with plain data (src/sync/plan.test.ts).
 */
import { createHash } from "node:crypto";
import type { RunSyncState } from "../archive/archive.js";
import { stringifyStrict } from "../model/json.js";
import type { WandbRun } from "../wandb/types.js";

export type HistoryAction =
  /** Nothing to read (runs-only, or the stored history is already complete). */
  | { kind: "none" }
  /** Read everything and replace what is stored. */
  | { kind: "replace" }
  /** Read steps >= fromStep and append (rows >= fromStep are deleted first, so a retry never duplicates). */
  | { kind: "append"; fromStep: number };

export type PlanReason =
  | "new"
  | "force-refresh"
  | "running"
  | "was-running"
  | "changed"
  | "new-steps"
  | "history-incomplete"
  | "selection-changed"
  | "extras-added"
  | "undeleted";

export interface RunAction {
  run: WandbRun;
  reasons: PlanReason[];
  /** Whether the run record (config, summary, metadata...) must be rewritten. */
  writeRecord: boolean;
  /** Whether wandb-metadata.json must be (re)fetched. */
  fetchMetadata: boolean;
  history: HistoryAction;
}

export interface PlanOptions {
  withHistory: boolean;
  forceRefresh: boolean;
  /** JSON of the history selection (keys, step range, samples); a change re-reads stored history. */
  selection: string;
  /**
   * JSON of what else is read per run (files and their pattern/size limit, system metrics), "" for nothing. A run
   * stored without what is now asked for is re-read for it (its history is left as it is).
   */
  extras?: string;
}

/** What sync_state.selection holds: the history selection and the extras, read back by {@link parseStoredSelection}. */
export function storedSelection(history: string, extras: string): string {
  return JSON.stringify({ history, extras });
}

export function parseStoredSelection(s: string): { history: string; extras: string } {
  try {
    const o = JSON.parse(s) as { history?: unknown; extras?: unknown };
    if (o && typeof o.history === "string" && typeof o.extras === "string")
      return { history: o.history, extras: o.extras };
  } catch {
    // an older or foreign value: all of it is the history selection
  }
  return { history: s, extras: "" };
}

/**
 * The history selection `dr-wandb import` records for a run it read from a local `.wandb` file. A sync that then
 * finds the run on W&B sees a different selection and replaces the run's history with W&B's (W&B wins); a sync
 * that does not find it leaves it alone (a local run was never on W&B, so it is not marked deleted there).
 */
export const LOCAL_IMPORT_SELECTION = "local-import";

export interface SyncPlan {
  actions: RunAction[];
  /** Listed runs that need nothing. */
  unchanged: string[];
}

/** The parts of a run whose change makes a stored run worth re-reading. */
export function fingerprint(run: WandbRun): string {
  const h = createHash("sha256");
  h.update(
    stringifyStrict({
      state: run.state,
      heartbeatAt: run.heartbeatAt,
      tags: run.tags,
      summary: run.summary,
      config: run.rawConfig,
      notes: run.notes,
      displayName: run.displayName,
      group: run.group,
      jobType: run.jobType,
      lastStep: run.lastHistoryStep,
    }),
  );
  return h.digest("hex").slice(0, 32);
}

/** Decides what to do with one listed run. Returns null when nothing needs doing. */
export function planRun(run: WandbRun, stored: RunSyncState | undefined, opts: PlanOptions): RunAction | null {
  const wantHistory = opts.withHistory && run.lastHistoryStep >= 0;
  if (!stored || opts.forceRefresh || stored.deleted) {
    const reason: PlanReason = !stored ? "new" : opts.forceRefresh ? "force-refresh" : "undeleted";
    return {
      run,
      reasons: [reason],
      writeRecord: true,
      fetchMetadata: true,
      history: wantHistory ? { kind: "replace" } : { kind: "none" },
    };
  }
  const reasons: PlanReason[] = [];
  const storedSel = parseStoredSelection(stored.selection);
  const changed = stored.fingerprint !== fingerprint(run);
  if (changed) reasons.push("changed");
  if (run.state === "running") reasons.push("running");
  else if (stored.state === "running") reasons.push("was-running");

  let history: HistoryAction = { kind: "none" };
  if (wantHistory) {
    if (storedSel.history !== opts.selection && stored.last_step >= 0) {
      reasons.push("selection-changed");
      history = { kind: "replace" };
    } else if (!stored.history_complete) {
      reasons.push("history-incomplete");
      history = { kind: "append", fromStep: stored.last_step + 1 };
    } else if (run.lastHistoryStep > stored.last_step) {
      reasons.push("new-steps");
      history = { kind: "append", fromStep: stored.last_step + 1 };
    } else if (run.state === "running" || stored.state === "running") {
      // A running run may have steps W&B does not count in lastStep yet; reading from the last step is cheap.
      history = { kind: "append", fromStep: stored.last_step + 1 };
    }
  }
  const extras = opts.extras ?? "";
  if (extras !== "" && storedSel.extras !== extras) reasons.push("extras-added");
  if (reasons.length === 0 && history.kind === "none") return null;
  return {
    run,
    reasons,
    writeRecord: true,
    // wandb-metadata.json is written once when a run starts: the stored copy is kept (RunWrite.preserve)
    fetchMetadata: false,
    history,
  };
}

/** Plans a whole listing. */
export function planSync(runs: WandbRun[], stored: Map<string, RunSyncState>, opts: PlanOptions): SyncPlan {
  const actions: RunAction[] = [];
  const unchanged: string[] = [];
  for (const run of runs) {
    const a = planRun(run, stored.get(run.name), opts);
    if (a) actions.push(a);
    else unchanged.push(run.name);
  }
  return { actions, unchanged };
}

/**
 * Runs the archive has (not yet marked deleted) that the server no longer lists. Only meaningful when the listing
 * was complete and unfiltered: otherwise absence proves nothing, and null is returned.
 */
export function findDeleted(
  stored: Map<string, RunSyncState>,
  seen: Set<string>,
  listing: { complete: boolean; filtered: boolean },
): string[] | null {
  if (!listing.complete || listing.filtered) return null;
  const out: string[] = [];
  for (const [id, s] of stored) {
    if (s.deleted || seen.has(id)) continue;
    if (parseStoredSelection(s.selection).history === LOCAL_IMPORT_SELECTION) continue;
    out.push(id);
  }
  return out.sort();
}

/**
 * `dr-wandb import`: local `.wandb` files into the archive, beside what a sync mirrors from W&B.
 *   1. find the files and read each one's RunRecord (run id, entity, project, start);
 *   2. group the files by run (a resumed run has one folder per segment), oldest segment first;
 *   3. per run: skip it when the archive has it from W&B (W&B wins) or when its files have not changed since the
 *      last import; otherwise read every record, and write the run, its new history rows, system metrics, files
 *      and state in one transaction (Archive.writeRun), as a sync writes a run.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Archive, RunSyncState, RunWrite } from "../archive/index.js";
import { quoteLiteral } from "../model/flatten.js";
import { LOCAL_IMPORT_SELECTION, parseStoredSelection } from "../sync/plan.js";
import { buildRunRecord, runState } from "./build.js";
import { findLogFiles, folderKey, type LogHead, readHead } from "./discover.js";
import { ImportError } from "./errors.js";
import { readMetadataFile, writeRunFiles } from "./files.js";
import { readRun, readRunText } from "./read-run.js";
import { RunLog } from "./run-log.js";
import { TextRows } from "./text-rows.js";

export { readRun } from "./read-run.js";

/** The text-row path (archives with writeRunStreamed) is on unless DR_WANDB_IMPORT_FAST=0. */
export function textRowsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DR_WANDB_IMPORT_FAST !== "0";
}

/** Thrown from writeRunStreamed's finish() when the log had no readable run record (rolls the write back). */
class NoRunRecord extends Error {}

export interface ImportOptions {
  /** Overrides the entity of every run (else the RunRecord's, else `defaultEntity`). */
  entity?: string;
  /** Overrides the project of every run (else the RunRecord's, else "uncategorized" as W&B does). */
  project?: string;
  /** Used for runs whose log names no entity (offline runs usually do not), when `entity` is not given. */
  defaultEntity?: string;
  /** Where run files go (`<outputDir>/files/...`); no files are copied without it. */
  outputDir?: string;
  /** Re-import runs whose files have not changed. */
  force?: boolean;
  /**
   * false: every history row as an object (the path PostgreSQL takes) even where the archive takes text rows
   * (comparisons). Default: on unless DR_WANDB_IMPORT_FAST=0.
   */
  textRows?: boolean;
  /** History rows kept in memory per run before spooling to disk (tests). */
  memoryCells?: number;
  onEvent?: (e: ImportEvent) => void;
}

export type ImportEvent =
  | { type: "found"; files: number; runs: number }
  | { type: "run"; run: string; entity: string; project: string; action: RunAction; historyRows: number }
  | { type: "warning"; message: string };

export type RunAction = "new" | "updated" | "appended" | "unchanged" | "kept-wandb";

export interface ImportResult {
  files: number;
  runs: number;
  runsWritten: number;
  runsUnchanged: number;
  /** Runs the archive has from W&B: left as they are. */
  runsKeptFromWandb: number;
  historyRows: number;
  warnings: string[];
  /** The projects the runs went to. */
  projects: { entity: string; project: string }[];
}

/** runs.source of a run a sync wrote. */
const SOURCE_WANDB = "wandb-server";

export interface RunGroup {
  entity: string;
  project: string;
  runId: string;
  heads: LogHead[];
}

/** What sync_state.selection records for an imported run: the marker, and the files with their sizes. */
interface ImportedSelection {
  history: string;
  extras: string;
  files: { path: string; size: number; mtimeMs: number }[];
}

function fingerprintOf(heads: LogHead[]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(heads.map((x) => [x.path, x.size, x.mtimeMs])));
  return h.digest("hex").slice(0, 32);
}

function storedFiles(state: RunSyncState): ImportedSelection["files"] | null {
  try {
    const o = JSON.parse(state.selection) as Partial<ImportedSelection>;
    return Array.isArray(o.files) ? o.files : null;
  } catch {
    return null;
  }
}

/**
 * An import may append when every file read last time is still there, in the same order, at least as long (an
 * offline run still writing grows its log; a resumed run adds a segment after them).
 */
function canAppend(state: RunSyncState, heads: LogHead[]): boolean {
  const prev = storedFiles(state);
  if (!prev || prev.length > heads.length || state.last_step < 0) return false;
  return prev.every((f, i) => heads[i]!.path === f.path && heads[i]!.size >= f.size);
}

function groupRuns(heads: LogHead[], opts: ImportOptions): RunGroup[] {
  const groups = new Map<string, RunGroup>();
  for (const head of heads) {
    const entity = opts.entity || head.entity || opts.defaultEntity || "";
    const project = opts.project || head.project || "uncategorized";
    if (!entity) {
      throw new ImportError(
        "USAGE",
        `${head.path}: the run names no entity (an offline run); pass --entity ENTITY (or set DR_WANDB_ENTITY)`,
      );
    }
    const key = JSON.stringify([entity, project, head.runId]);
    let g = groups.get(key);
    if (!g) {
      g = { entity, project, runId: head.runId, heads: [] };
      groups.set(key, g);
    }
    g.heads.push(head);
  }
  for (const g of groups.values()) {
    g.heads.sort(
      (a, b) => (a.startTime ?? 0) - (b.startTime ?? 0) || folderKey(a.path).localeCompare(folderKey(b.path)),
    );
  }
  return [...groups.values()];
}

async function storedSources(archive: Archive, entity: string, project: string): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const r = await archive.query(
    `SELECT run_id, source FROM runs WHERE entity = ${quoteLiteral(entity)} AND project = ${quoteLiteral(project)}`,
  );
  for (const [id, source] of r.rows) out.set(String(id), source === null ? null : String(source));
  return out;
}

/** What an import will read: the files found, their runs, and the warnings of files without a run. */
export interface ImportPlan {
  files: string[];
  groups: RunGroup[];
  warnings: string[];
}

/**
 * Finds the files and reads each one's run record; throws ImportError for a PATH that is missing, a file that is not
 * a W&B log or of a newer version, or a run without an entity. Reads nothing else and writes nothing.
 */
export function planImport(paths: string[], opts: ImportOptions = {}): ImportPlan {
  const files = findLogFiles(paths);
  const heads: LogHead[] = [];
  const warnings: string[] = [];
  for (const f of files) {
    const head = readHead(f);
    if (head) heads.push(head);
    else warnings.push(`${f}: no run record in the log (nothing to import from it)`);
  }
  return { files, groups: groupRuns(heads, opts), warnings };
}

export async function importPaths(
  archive: Archive,
  paths: string[] | ImportPlan,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const emit = opts.onEvent ?? (() => {});
  const result: ImportResult = {
    files: 0,
    runs: 0,
    runsWritten: 0,
    runsUnchanged: 0,
    runsKeptFromWandb: 0,
    historyRows: 0,
    warnings: [],
    projects: [],
  };
  const warn = (message: string) => {
    result.warnings.push(message);
    emit({ type: "warning", message });
  };
  const startedAt = new Date().toISOString();
  const plan = Array.isArray(paths) ? planImport(paths, opts) : paths;
  for (const w of plan.warnings) warn(w);
  const { files, groups } = plan;
  result.files = files.length;
  result.runs = groups.length;
  emit({ type: "found", files: files.length, runs: groups.length });

  const byProject = new Map<string, RunGroup[]>();
  for (const g of groups) {
    const k = JSON.stringify([g.entity, g.project]);
    byProject.set(k, [...(byProject.get(k) ?? []), g]);
  }
  for (const list of byProject.values()) {
    const { entity, project } = list[0]!;
    result.projects.push({ entity, project });
    const states = await archive.loadSyncState(entity, project);
    const sources = await storedSources(archive, entity, project);
    let written = 0;
    let rows = 0;
    for (const g of list) {
      const stored = states.get(g.runId);
      const source = sources.get(g.runId);
      const fingerprint = fingerprintOf(g.heads);
      const local = stored !== undefined && parseStoredSelection(stored.selection).history === LOCAL_IMPORT_SELECTION;
      const report = (action: RunAction, historyRows: number) =>
        emit({ type: "run", run: g.runId, entity, project, action, historyRows });
      if (source === SOURCE_WANDB) {
        result.runsKeptFromWandb++;
        report("kept-wandb", 0);
        continue;
      }
      if (stored && local && !stored.deleted && stored.fingerprint === fingerprint && !opts.force) {
        result.runsUnchanged++;
        report("unchanged", 0);
        continue;
      }
      const append = stored !== undefined && local && !stored.deleted && !opts.force && canAppend(stored, g.heads);
      const fromStep = append ? stored!.last_step + 1 : 0;
      const runWarnings: string[] = [];
      const runWarn = (m: string) => {
        runWarnings.push(m);
        warn(m);
      };
      const paths = g.heads.map((h) => h.path);
      /** The run's record, state, metrics and files, once its log is read. */
      const finish = (log: RunLog): Omit<RunWrite, "history"> => {
        if (!log.fields) throw new NoRunRecord();
        const runDirs = g.heads.map((h) => dirname(h.path));
        const ctx = { entity, project, paths, metadataFile: readMetadataFile(runDirs), warnings: runWarnings };
        const fileRows = opts.outputDir
          ? writeRunFiles({
              entity,
              project,
              runId: g.runId,
              runDirs,
              console: log.consoleText(),
              outputDir: opts.outputDir,
            })
          : undefined;
        for (const w of fileRows?.warnings ?? []) runWarn(w);
        const record = buildRunRecord(log, ctx);
        const selection: ImportedSelection = {
          history: LOCAL_IMPORT_SELECTION,
          extras: "",
          files: g.heads.map((h) => ({ path: h.path, size: h.size, mtimeMs: h.mtimeMs })),
        };
        const state: RunSyncState = {
          entity,
          project,
          run_id: g.runId,
          state: runState(log),
          heartbeat_at: record.heartbeat_at,
          last_step: Math.max(log.maxStep, append ? stored!.last_step : -1),
          history_complete: true,
          fingerprint,
          deleted: false,
          synced_at: new Date().toISOString(),
          selection: JSON.stringify(selection),
        };
        record.last_history_step = state.last_step;
        record.history_keys = { lastStep: state.last_step };
        return { record, state, systemMetrics: log.stats, files: fileRows?.records, source: paths[paths.length - 1] };
      };
      let out: { historyRows: number } | null = null;
      if (archive.writeRunStreamed !== undefined && (opts.textRows ?? textRowsEnabled())) {
        const log = new RunLog(opts.memoryCells);
        log.fromStep = fromStep;
        const dir = mkdtempSync(join(tmpdir(), "dr-wandb-import-"));
        try {
          out = await archive.writeRunStreamed({
            entity,
            project,
            run_id: g.runId,
            history: {
              replace: !append,
              fromStep,
              textRows: readRunText(paths, log, new TextRows(dir), runWarn),
              batches: log.history,
            },
            finish: () => finish(log),
          });
        } catch (e) {
          if (!(e instanceof NoRunRecord)) throw e;
        } finally {
          log.history.close();
          rmSync(dir, { recursive: true, force: true });
        }
      } else {
        const log = readRun(paths, fromStep, runWarn, opts.memoryCells);
        try {
          if (log.fields) {
            const rest = finish(log);
            out = await archive.writeRun({ ...rest, history: { replace: !append, fromStep, batches: log.history } });
          }
        } finally {
          log.history.close();
        }
      }
      if (out === null) {
        runWarn(`run ${g.runId}: no run record could be read; nothing written`);
        continue;
      }
      written++;
      rows += out.historyRows;
      result.runsWritten++;
      result.historyRows += out.historyRows;
      report(append ? "appended" : stored ? "updated" : "new", out.historyRows);
    }
    await archive.logSync({
      entity,
      project,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      runs_seen: list.length,
      runs_written: written,
      history_rows: rows,
      requests: 0,
      options: JSON.stringify({ import: list.flatMap((g) => g.heads.map((h) => h.path)) }),
    });
  }
  return result;
}

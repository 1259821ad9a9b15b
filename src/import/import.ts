/**
 * `dr-wandb import`: local `.wandb` files into the archive, beside what a sync mirrors from W&B.
 *   1. find the files and read each one's RunRecord (run id, entity, project, start);
 *   2. group the files by run (a resumed run has one folder per segment), oldest segment first (plan.ts);
 *   3. per run: skip it when the archive has it from W&B (W&B wins) or when its files have not changed since the
 *      last import; otherwise read every record, and write the run, its new history rows, system metrics, files
 *      and state in one transaction (Archive.writeRun), as a sync writes a run.
 * Options, events and the result: types.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Archive, RunSyncState, RunWrite } from "../archive/index.js";
import { LOCAL_IMPORT_SELECTION, parseStoredSelection } from "../sync/plan.js";
import { buildRunRecord, runState } from "./build.js";
import { readMetadataFile, writeRunFiles } from "./files.js";
import {
  canAppend,
  fingerprintOf,
  type ImportedSelection,
  type ImportPlan,
  planImport,
  type RunGroup,
  SOURCE_WANDB,
  storedSources,
} from "./plan.js";
import { readRun, readRunText } from "./read-run.js";
import { RunLog } from "./run-log.js";
import { TextRows } from "./text-rows.js";
import type { ImportOptions, ImportResult, RunAction } from "./types.js";

export { type ImportPlan, planImport } from "./plan.js";
export { readRun } from "./read-run.js";
export type { ImportEvent, ImportOptions, ImportResult, RunAction } from "./types.js";

/** The text-row path (archives with writeRunStreamed) is on unless DR_WANDB_IMPORT_FAST=0. */
export function textRowsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DR_WANDB_IMPORT_FAST !== "0";
}

/** Thrown from writeRunStreamed's finish() when the log had no readable run record (rolls the write back). */
class NoRunRecord extends Error {}

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

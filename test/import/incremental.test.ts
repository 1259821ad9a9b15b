/**
 * Growing runs and runs from two sources. A still-running offline run imported again adds only its new steps; a run
 * the archive has from W&B is left as W&B's (the import skips it); a later sync replaces an imported run's record
 * and history with W&B's and never marks a local-only run deleted (src/sync/plan.ts).
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Archive, openArchive, type RunSyncState } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import type { RunRecord } from "../../src/model/records.js";
import { findDeleted, LOCAL_IMPORT_SELECTION, planRun } from "../../src/sync/plan.js";
import type { WandbRun } from "../../src/wandb/types.js";
import { tempDir } from "../helpers.js";
import { FIXTURES } from "./expected.js";

function fixtureFolder(runId: string): string {
  return join(FIXTURES, "wandb", readdirSync(join(FIXTURES, "wandb")).find((x) => x.endsWith(`-${runId}`))!);
}

async function count(archive: Archive, sql: string): Promise<number> {
  return Number((await archive.query(sql)).rows[0]![0]);
}

describe("incremental imports and sources", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let archive: Archive;
  before(async () => {
    dir = await tempDir();
    archive = await openArchive({ outputDir: join(dir.path, "out") });
  });
  after(async () => {
    await archive?.close();
    await dir?.[Symbol.asyncDispose]();
  });

  it("a run that grew since the last import gets only its new steps; then nothing changes", async () => {
    const src = fixtureFolder("killed01");
    const folder = join(dir.path, "grow", "offline-run-20250101_000000-killed01");
    mkdirSync(folder, { recursive: true });
    const full = readFileSync(join(src, "run-killed01.wandb"));
    const file = join(folder, "run-killed01.wandb");
    writeFileSync(file, full.subarray(0, Math.floor(full.length * 0.45)));
    const first = await importPaths(archive, [folder], { project: "grow" });
    assert.equal(first.runsWritten, 1);
    const k = await count(archive, "SELECT count(*) FROM history WHERE project = 'grow'");
    assert.ok(k > 10);
    writeFileSync(file, full);
    const events: string[] = [];
    const second = await importPaths(archive, [folder], {
      project: "grow",
      onEvent: (e) => {
        if (e.type === "run") events.push(e.action);
      },
    });
    assert.deepEqual(events, ["appended"]);
    const total = await count(archive, "SELECT count(*) FROM history WHERE project = 'grow'");
    assert.equal(second.historyRows, total - k, "only the new steps were written");
    assert.equal(await count(archive, "SELECT count(DISTINCT step) FROM history WHERE project = 'grow'"), total);
    assert.equal(await count(archive, "SELECT max(step) + 1 FROM history WHERE project = 'grow'"), total);
    const third = await importPaths(archive, [folder], { project: "grow" });
    assert.equal(third.runsUnchanged, 1);
    // a log replaced by a different, shorter one is read again from scratch
    writeFileSync(file, full.subarray(0, Math.floor(full.length * 0.2)));
    await importPaths(archive, [folder], { project: "grow" });
    const shorter = await count(archive, "SELECT count(*) FROM history WHERE project = 'grow'");
    assert.ok(shorter < k, `replaced: ${shorter} rows`);
  });

  it("a run the archive has from W&B keeps W&B's copy (one row per run id)", async () => {
    const record: RunRecord = {
      entity: "imp-entity",
      project: "imp-project",
      run_id: "basic001",
      run_name: "synced from W&B",
      state: "finished",
      created_at: "2025-01-01T00:00:00.000Z",
      heartbeat_at: null,
      config: {},
      summary: {},
      wandb_metadata: {},
      system_metrics: {},
      system_attrs: {},
      sweep_info: {},
      tags: [],
      group: null,
      job_type: null,
      user: "someone",
      notes: null,
      commit: null,
      history_keys: { lastStep: 0 },
      last_history_step: 0,
      storage_id: "x",
    };
    const state: RunSyncState = {
      entity: "imp-entity",
      project: "imp-project",
      run_id: "basic001",
      state: "finished",
      heartbeat_at: null,
      last_step: 0,
      history_complete: true,
      fingerprint: "f",
      deleted: false,
      synced_at: new Date().toISOString(),
      selection: JSON.stringify({ history: "{}", extras: "" }),
    };
    const rows = [
      { run_id: "basic001", step: 0, timestamp: 1, runtime: 1, wandb_metadata: {}, metrics: { w: 1 }, extra: {} },
    ];
    await archive.writeRun({ record, state, history: { replace: true, fromStep: 0, batches: [rows] } });
    const root = join(dir.path, "both");
    cpSync(join(FIXTURES, "wandb"), root, { recursive: true });
    const r = await importPaths(archive, [root]);
    assert.equal(r.runsKeptFromWandb, 1);
    const got = await archive.query("SELECT run_name, source FROM runs WHERE run_id = 'basic001'");
    assert.deepEqual(got.rows, [["synced from W&B", "wandb-server"]]);
    assert.equal(await count(archive, "SELECT count(*) FROM history WHERE run_id = 'basic001'"), 1);
    assert.equal(await count(archive, "SELECT count(*) FROM runs WHERE project = 'imp-project'"), 5);
  });

  it("a sync replaces an imported run's history with W&B's, and never marks a local-only run deleted", async () => {
    const states = await archive.loadSyncState("imp-entity", "imp-project");
    const imported = states.get("values01")!;
    assert.equal(JSON.parse(imported.selection).history, LOCAL_IMPORT_SELECTION);
    const run = { name: "values01", state: "finished", lastHistoryStep: 3 } as unknown as WandbRun;
    const action = planRun(run, imported, { withHistory: true, forceRefresh: false, selection: "{}" });
    assert.deepEqual(action?.history, { kind: "replace" });
    // W&B lists only basic001: the imported runs are not W&B's to delete; the synced one would be
    const deleted = findDeleted(states, new Set(), { complete: true, filtered: false });
    assert.deepEqual(deleted, ["basic001"]);
  });
});

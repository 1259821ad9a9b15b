/**
 * The committed offline runs (written by the official wandb 0.31.0 client, test/import/write_offline_runs.py) into a
 * real DuckDB archive: exactly what the script logged, the same row shapes a sync writes (export, status, query work),
 * idempotent, and with its console output and files in the files folder.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Archive, openArchive } from "../../src/archive/index.js";
import { exportArchive } from "../../src/export/archive-export.js";
import { importPaths } from "../../src/import/index.js";
import { duckQuery, tempDir } from "../helpers.js";
import { checkArchive, FIXTURES, loadExpected } from "./expected.js";

const expected = loadExpected(FIXTURES);

describe("import of real offline runs", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let archive: Archive;
  let first: Awaited<ReturnType<typeof importPaths>>;

  before(async () => {
    dir = await tempDir();
    archive = await openArchive({ outputDir: dir.path });
    first = await importPaths(archive, [join(FIXTURES, "wandb")], { outputDir: dir.path });
  });
  after(async () => {
    await archive?.close();
    await dir?.[Symbol.asyncDispose]();
  });

  it("finds every run folder (a resumed run's two segments are one run) and writes each run", () => {
    assert.equal(first.files, 6);
    assert.equal(first.runs, Object.keys(expected).length);
    assert.equal(first.runsWritten, first.runs);
    assert.deepEqual(first.projects, [{ entity: "imp-entity", project: "imp-project" }]);
  });

  it("stores exactly what the script logged: config, summary, state, every history row and value", async () => {
    await checkArchive(archive, expected);
  });

  it("writes system metrics, console output and the run's files as a sync with --files would", async () => {
    const sm = await archive.query("SELECT count(*), min(runtime) FROM system_metrics WHERE run_id = 'basic001'");
    assert.ok(Number(sm.rows[0]![0]) >= 1, "stats records become system_metrics rows");
    const files = await archive.query(
      "SELECT name, local_path, size FROM files WHERE run_id = 'basic001' ORDER BY name",
    );
    const names = files.rows.map((r) => r[0]);
    assert.deepEqual(names, ["output.log", "requirements.txt"]);
    const log = readFileSync(join(dir.path, String(files.rows[0]![1])), "utf8");
    for (const line of expected.basic001!.output_contains ?? []) assert.ok(log.includes(line), `output.log: ${line}`);
    const media = await archive.query("SELECT name FROM files WHERE run_id = 'values01' AND name LIKE 'media/%'");
    assert.equal(media.rows.length, 1, "the logged table's file");
    const meta = await archive.query(
      "SELECT wandb_metadata->>'$.python', wandb_metadata->>'$.startedAt' FROM runs WHERE run_id = 'basic001'",
    );
    assert.match(String(meta.rows[0]![0]), /^CPython 3\./);
    assert.match(String(meta.rows[0]![1]), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
  });

  it("importing the same folder again changes nothing", async () => {
    const before = await archive.query("SELECT count(*), sum(step) FROM history");
    const again = await importPaths(archive, [join(FIXTURES, "wandb")], { outputDir: dir.path });
    assert.equal(again.runsWritten, 0);
    assert.equal(again.runsUnchanged, first.runs);
    assert.deepEqual((await archive.query("SELECT count(*), sum(step) FROM history")).rows, before.rows);
    // a single run folder, given directly, is the same run
    const one = await importPaths(archive, [join(FIXTURES, "wandb", folderOf("basic001"))]);
    assert.equal(one.runsUnchanged, 1);
  });

  it("status and the Parquet export read imported runs unchanged", async () => {
    const s = await archive.status();
    const p = s.projects.find((x) => x.project === "imp-project")!;
    assert.equal(p.runs, Object.keys(expected).length);
    assert.equal(p.runsByState.crashed, 1);
    assert.equal(p.runsByState.failed, 1);
    const ex = await exportArchive(archive, { outputDir: dir.path });
    const hist = ex.files.find((f) => f.endsWith("runs_history.parquet"))!;
    const n = await duckQuery(`SELECT count(*) FROM read_parquet('${hist}')`);
    const stored = await archive.query("SELECT count(*) FROM history");
    assert.equal(Number(n.rows[0]![0]), Number(stored.rows[0]![0]));
  });
});

function folderOf(runId: string): string {
  return readdirSync(join(FIXTURES, "wandb")).find((d) => d.endsWith(`-${runId}`))!;
}

/**
 * `dr-wandb sync` end to end, as the archive issue's "done when" reads: sync a fake project, mutate it on the server
 * (append steps to running runs, finish one, retag one, add runs, delete one), sync again, and the archive equals
 * /_fake/truth with only the changed runs re-read (checked with /_fake/stats). Once with DuckDB, once with PostgreSQL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import type { Archive } from "../../src/archive/archive.js";
import { openArchive } from "../../src/archive/open.js";
import { type JsonObject, parseStrictJson } from "../../src/model/json.js";
import { toHistoryRecord } from "../../src/model/records.js";
import { duckObjects, fakeStats, firstDiff, mutate, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";
import { startTestPg, type TestPgServer } from "../support/pg-test-server.js";

/** History reads; HistoryPages and RunsParquetHistory carry several runs' reads in one request. */
const HISTORY_OPS = [
  "HistoryPage",
  "HistoryPages",
  "RunParquetHistory",
  "RunsParquetHistory",
  "SampledHistoryPage",
  "RunFullHistory",
];

function historyRequests(stats: { byOperation: Record<string, number> }): number {
  return HISTORY_OPS.reduce((n, op) => n + (stats.byOperation[op] ?? 0), 0);
}

function cellJson(v: unknown): unknown {
  return typeof v === "string" ? parseStrictJson(v) : v;
}

/** Asserts that the archive holds exactly the fake's truth for the project (live runs; deleted ones flagged). */
async function assertArchiveEqualsTruth(archive: Archive, fake: FakeWandb, deleted: string[]): Promise<void> {
  const truth = await truthRuns(fake.url);
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const runs = await archive.query(
    `SELECT run_id, state, tags, config, summary, deleted FROM runs WHERE entity = ${q(fake.entity)} AND project = ${q(fake.project)} ORDER BY run_id`,
  );
  const byId = new Map(runs.rows.map((r) => [r[0] as string, r]));
  for (const t of truth) {
    const row = byId.get(t.name as string);
    assert.ok(row, `run ${t.name} missing from the archive`);
    assert.equal(row[1], t.state, `run ${t.name} state`);
    const tags = typeof row[2] === "string" ? JSON.parse(row[2]) : row[2];
    assert.deepEqual([...(tags as string[])].sort(), [...(t.tags as string[])].sort(), `run ${t.name} tags`);
    assert.equal(firstDiff(cellJson(row[3]), t.config), null, `run ${t.name} config`);
    assert.equal(firstDiff(cellJson(row[4]), t.summary), null, `run ${t.name} summary`);
    assert.equal(Boolean(row[5]), false);
    const hist = await archive.query(
      `SELECT step, metrics FROM history WHERE entity = ${q(fake.entity)} AND project = ${q(fake.project)} AND run_id = ${q(t.name as string)} ORDER BY step`,
    );
    const want = (await truthHistory(fake.url, t.name as string)).map((r) => toHistoryRecord(t.name as string, r)!);
    assert.equal(hist.rows.length, want.length, `run ${t.name}: history rows`);
    for (let i = 0; i < want.length; i++) {
      assert.equal(Number(hist.rows[i]![0]), want[i]!.step);
      const d = firstDiff(cellJson(hist.rows[i]![1]), want[i]!.metrics);
      assert.equal(d, null, `run ${t.name} step ${want[i]!.step}: ${d}`);
    }
  }
  for (const id of deleted) {
    const row = byId.get(id);
    assert.ok(row, `deleted run ${id} must be kept`);
    assert.equal(Boolean(row[5]), true, `run ${id} must be marked deleted`);
  }
  const dups = await archive.query(
    "SELECT run_id, step, count(*) AS n FROM history GROUP BY entity, project, run_id, step HAVING count(*) > 1",
  );
  assert.equal(dups.rows.length, 0, "no duplicate history rows");
}

function scenario(name: string, dbUrlFor: (dir: string) => Promise<string | undefined>) {
  describe(`sync into ${name}`, () => {
    let fake: FakeWandb;
    before(async () => {
      fake = await startFakeWandb({ seed: 5, runs: 14, steps: 150, metrics: 5, runningFraction: 0.3 });
    });
    after(async () => {
      await fake?.close();
    });

    it("syncs, then re-reads only what changed on the server", async () => {
      await using dir = await tempDir();
      const dbUrl = await dbUrlFor(dir.path);
      const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
      const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "--json"];
      if (dbUrl) args.push("--db-url", dbUrl);

      const first = await runCli(args, { env });
      assert.equal(first.code, 0, first.stderr);
      const firstStats = await fakeStats(fake.url);
      const open = () => openArchive({ dbUrl, outputDir: dir.path, readOnly: true });
      let archive = await open();
      try {
        await assertArchiveEqualsTruth(archive, fake, []);
      } finally {
        await archive.close();
      }

      const truth = await truthRuns(fake.url);
      const running = truth.filter((t) => t.state === "running").map((t) => t.name as string);
      const finished = truth.filter((t) => t.state === "finished").map((t) => t.name as string);
      assert.ok(running.length >= 3 && finished.length >= 3, "the scenario needs running and finished runs");
      await mutate(fake.url, [
        { op: "appendSteps", run: running[0]!, steps: 40 },
        { op: "appendSteps", run: running[1]!, steps: 1200 },
        { op: "finishRun", run: running[2]! },
        { op: "setTags", run: finished[0]!, tags: ["retagged", "ünïcode"] },
        { op: "addRuns", count: 2 },
        { op: "deleteRun", run: finished[1]! },
      ]);
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });

      const second = await runCli(args, { env });
      assert.equal(second.code, 0, second.stderr);
      const summary = JSON.parse(second.stdout.trim().split("\n").pop()!);
      const p = summary.projects[0];
      assert.equal(p.runsDeleted, 1);
      const stats = await fakeStats(fake.url);
      // Changed: 2 appended + 1 finished + 1 retagged (record only) + 2 new; other running runs are checked too.
      const changedWithHistory = 2 + 1 + 2 + (running.length - 3);
      assert.ok(
        historyRequests(stats) <= changedWithHistory * 3,
        `history requests ${historyRequests(stats)} for ${changedWithHistory} changed runs: ${JSON.stringify(stats.byOperation)}`,
      );
      assert.ok(stats.total < firstStats.total, `second sync ${stats.total} requests, first ${firstStats.total}`);

      archive = await open();
      try {
        await assertArchiveEqualsTruth(archive, fake, [finished[1]!]);
      } finally {
        await archive.close();
      }

      // The Parquet export holds the archive's values.
      const exported = await duckObjects(
        `SELECT run_id, count(*) AS n FROM read_parquet('${join(dir.path, "runs_history.parquet")}') GROUP BY run_id`,
      );
      const counts = new Map(exported.map((r) => [r.run_id as string, Number(r.n)]));
      for (const t of await truthRuns(fake.url)) {
        const want = (await truthHistory(fake.url, t.name as string)).length;
        assert.equal(counts.get(t.name as string) ?? 0, want, `export rows of ${t.name}`);
      }
      const meta = await duckObjects(
        `SELECT run_id, config FROM read_parquet('${join(dir.path, "runs_metadata.parquet")}')`,
      );
      assert.ok(meta.length >= (await truthRuns(fake.url)).length);
      for (const c of ["config", "summary", "wandb_metadata", "system_metrics", "system_attrs", "sweep_info"]) {
        const rows = await duckObjects(
          `SELECT count(*) AS n FROM read_parquet('${join(dir.path, `runs_metadata_${c}.parquet`)}')`,
        );
        assert.equal(Number(rows[0]!.n), meta.length);
      }
    });

    it("re-reads everything with --force-refresh and stays equal to the truth", async () => {
      await using dir = await tempDir();
      const dbUrl = await dbUrlFor(dir.path);
      const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
      const args = ["sync", "--entity", fake.entity, "--project", fake.project, "--output-dir", dir.path, "-q"];
      if (dbUrl) args.push("--db-url", dbUrl);
      assert.equal((await runCli(args, { env })).code, 0);
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      const again = await runCli([...args, "--force-refresh", "--json"], { env });
      assert.equal(again.code, 0, again.stderr);
      const summary = JSON.parse(again.stdout) as { projects: { runsWritten: number; historyRows: number }[] };
      const truth = await truthRuns(fake.url);
      assert.equal(summary.projects[0]!.runsWritten, truth.length, "every run rewritten");
      let rows = 0;
      for (const r of truth) rows += (await truthHistory(fake.url, r.name as string)).length;
      assert.equal(summary.projects[0]!.historyRows, rows, "every history row read again");
      assert.ok(historyRequests(await fakeStats(fake.url)) > 0);
      const archive = await openArchive({ dbUrl, outputDir: dir.path, readOnly: true });
      try {
        await assertArchiveEqualsTruth(archive, fake, []);
      } finally {
        await archive.close();
      }
    });
  });
}

scenario("DuckDB (the default)", async () => undefined);

describe("runs larger than the memory budget", () => {
  it("spool to disk (DR_WANDB_SPOOL_CELLS) and still equal the truth, edge values included; no spool left", async () => {
    const fake = await startFakeWandb({
      seed: 8,
      runs: 6,
      steps: 1200,
      metrics: 6,
      profile: "edge",
      runningFraction: 0.5,
    });
    try {
      await using dir = await tempDir();
      await using spoolDir = await tempDir();
      const env = {
        WANDB_BASE_URL: fake.url,
        WANDB_API_KEY: fake.apiKey,
        DR_WANDB_SPOOL_CELLS: "500",
        TMPDIR: spoolDir.path,
      };
      const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
      assert.equal(r.code, 0, r.stderr);
      const archive = await openArchive({ outputDir: dir.path, readOnly: true });
      try {
        await assertArchiveEqualsTruth(archive, fake, []);
      } finally {
        await archive.close();
      }
      const { readdir } = await import("node:fs/promises");
      assert.deepEqual(
        (await readdir(spoolDir.path)).filter((f) => f.includes("spool")),
        [],
        "spool files removed",
      );
    } finally {
      await fake.close();
    }
  });
});

let pg: TestPgServer | undefined;
let dbCounter = 0;
scenario("PostgreSQL", async () => {
  pg ??= await startTestPg();
  return pg.urlFor(`drwandb_e2e_${process.pid}_${dbCounter++}`).replace(/^postgresql:/, "postgresql+psycopg2:");
});
after(async () => {
  await pg?.stop();
});

export type { JsonObject };

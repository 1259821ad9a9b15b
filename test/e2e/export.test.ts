/** `dr-wandb export`: the archive's Parquet export on demand, and the Hive-partitioned history dataset. */
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { duckObjects, parquetDiff, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";

let fake: FakeWandb;
before(async () => {
  fake = await startFakeWandb({ seed: 31, runs: 6, steps: 80, metrics: 3 });
});
after(async () => {
  await fake?.close();
});

describe("dr-wandb export", () => {
  it("writes the history as a Hive-partitioned dataset that reads as one table, replaced whole", async () => {
    await using dir = await tempDir();
    const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    const sync = await runCli(
      ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q", "--no-export"],
      {
        env,
      },
    );
    assert.equal(sync.code, 0, sync.stderr);
    assert.deepEqual(await readdir(dir.path), ["wandb.duckdb"], "--no-export writes no Parquet");

    let truthRows = 0;
    for (const t of await truthRuns(fake.url)) truthRows += (await truthHistory(fake.url, t.name as string)).length;
    for (let pass = 0; pass < 2; pass++) {
      const r = await runCli(["export", "--output-dir", dir.path, "--partitioned", "--json"], {});
      assert.equal(r.code, 0, r.stderr);
      const part = join(dir.path, "runs_history", `entity=${fake.entity}`, `project=${fake.project}`);
      assert.ok(
        (await readdir(part)).some((f) => f.endsWith(".parquet")),
        "partition folder has Parquet files",
      );
      const rows = await duckObjects(
        `SELECT entity, project, count(*) AS n, count(DISTINCT run_id) AS runs FROM read_parquet('${join(dir.path, "runs_history")}/**/*.parquet', hive_partitioning = true) GROUP BY ALL`,
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.entity, fake.entity);
      assert.equal(Number(rows[0]!.n), truthRows);
      assert.equal(Number(rows[0]!.runs), 6);
      const leftovers = (await readdir(dir.path)).filter((n) => n.includes(".tmp") || n.includes(".old"));
      assert.deepEqual(leftovers, []);
    }
    assert.ok((await readdir(dir.path)).includes("runs_metadata.parquet"));
  });

  it("writes the runs files in order chunk by chunk when their JSON is large: the same files as one sort", async () => {
    await using dir = await tempDir();
    const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    const sync = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
    assert.equal(sync.code, 0, sync.stderr);
    await using chunked = await tempDir();
    await mkdir(chunked.path, { recursive: true });
    await writeFile(join(chunked.path, "wandb.duckdb"), await readFile(join(dir.path, "wandb.duckdb")));
    // a chunk of one byte: every run sorted alone, the file read back from six chunk files
    const r = await runCli(["export", "--output-dir", chunked.path, "-q"], {
      env: { DR_WANDB_EXPORT_CHUNK_BYTES: "1" },
    });
    assert.equal(r.code, 0, r.stderr);
    const names = (await readdir(dir.path)).filter((n) => /^runs_metadata.*\.parquet$/.test(n)).sort();
    assert.equal(names.length, 7);
    for (const n of names) {
      assert.deepEqual(await parquetDiff(join(dir.path, n), join(chunked.path, n)), {
        onlyA: 0,
        onlyB: 0,
        sameSchema: true,
        moved: 0,
      });
    }
    const leftovers = (await readdir(chunked.path)).filter((n) => n.includes(".tmp"));
    assert.deepEqual(leftovers, []);
  });

  it("cuts the runs into chunks at whole sort keys: ties, a NULL creation time and two projects as one sort", async () => {
    await using dir = await tempDir();
    const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    const sync = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
    assert.equal(sync.code, 0, sync.stderr);
    // The archive's runs, then: a second project (the same runs), a run without a creation time, two runs created
    // at the same microsecond.
    const db = await DuckDBInstance.create(join(dir.path, "wandb.duckdb"));
    const conn = await db.connect();
    const ids = (await conn.runAndReadAll("SELECT run_id FROM runs ORDER BY created_at, run_id")).getRows();
    await conn.run(`UPDATE runs SET created_at = NULL WHERE run_id = '${ids[1]![0]}'`);
    await conn.run(
      `UPDATE runs SET created_at = (SELECT created_at FROM runs WHERE run_id = '${ids[3]![0]}') WHERE run_id = '${ids[4]![0]}'`,
    );
    await conn.run("INSERT INTO runs SELECT * REPLACE ('a-second-project' AS project) FROM runs");
    const payload = Number(
      (
        await conn.runAndReadAll(
          "SELECT sum(length(config::VARCHAR) + length(summary::VARCHAR) + length(system_attrs::VARCHAR)) FROM runs",
        )
      ).getRows()[0]![0],
    );
    conn.closeSync();
    db.closeSync();
    const one = await runCli(["export", "--output-dir", dir.path, "-q"], {});
    assert.equal(one.code, 0, one.stderr);
    const order = await duckObjects(
      `SELECT project, created_at IS NULL AS nul FROM read_parquet('${join(dir.path, "runs_metadata.parquet")}')`,
    );
    assert.equal(order.length, 12);
    assert.deepEqual(
      order.map((r) => `${r.project === fake.project ? "p" : "a"}${r.nul ? "0" : "1"}`),
      ["a1", "a1", "a1", "a1", "a1", "a0", "p1", "p1", "p1", "p1", "p1", "p0"],
      "projects in order, each with its run without a creation time last",
    );
    // chunks of one key each, and of about three keys (a chunk holding the NULL key and the keys before it)
    for (const chunk of ["1", String(Math.ceil(payload / 4))]) {
      await using chunked = await tempDir();
      await writeFile(join(chunked.path, "wandb.duckdb"), await readFile(join(dir.path, "wandb.duckdb")));
      const r = await runCli(["export", "--output-dir", chunked.path, "-q"], {
        env: { DR_WANDB_EXPORT_CHUNK_BYTES: chunk },
      });
      assert.equal(r.code, 0, r.stderr);
      for (const n of (await readdir(dir.path)).filter((f) => /^runs_metadata.*\.parquet$/.test(f))) {
        assert.deepEqual(await parquetDiff(join(dir.path, n), join(chunked.path, n)), {
          onlyA: 0,
          onlyB: 0,
          sameSchema: true,
          moved: 0,
        });
      }
    }
  });

  it("removes what a killed earlier export left (temp files and dataset folders of dead processes)", async () => {
    await using dir = await tempDir();
    const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    const sync = await runCli(
      ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q", "--runs-only"],
      {
        env,
      },
    );
    assert.equal(sync.code, 0, sync.stderr);
    // a pid far above Linux's pid_max default: no such process
    const stale = [".runs_history.parquet.tmp-99999999-abc123", ".runs_metadata.parquet.tmp-99999999-def456"];
    for (const n of stale) await writeFile(join(dir.path, n), "torn");
    await mkdir(join(dir.path, ".runs_history.tmp-99999999-0a1b2c", "entity=x"), { recursive: true });
    const r = await runCli(["export", "--output-dir", dir.path, "--partitioned"], {});
    assert.equal(r.code, 0, r.stderr);
    // (.runs_history.manifest.json is not a leftover: it lets the next export reuse unchanged runs' rows)
    const left = (await readdir(dir.path)).filter((n) => n.startsWith(".") && n !== ".runs_history.manifest.json");
    assert.deepEqual(left, []);
  });

  it("says clearly when there is no archive yet", async () => {
    await using dir = await tempDir();
    const r = await runCli(["export", "--output-dir", dir.path], {});
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr.trim(), /no archive/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });
});

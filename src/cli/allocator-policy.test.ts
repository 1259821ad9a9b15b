import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { allocatorConf, DEFAULT_ALLOCATOR_CONF } from "./allocator-policy.js";

test("allocatorConf: ours by default, a user's DUCKDB_JE_MALLOC_CONF kept as it is", () => {
  assert.equal(allocatorConf({}), DEFAULT_ALLOCATOR_CONF);
  assert.equal(allocatorConf({ DUCKDB_JE_MALLOC_CONF: " " }), DEFAULT_ALLOCATOR_CONF);
  assert.equal(allocatorConf({ DUCKDB_JE_MALLOC_CONF: "narenas:4" }), "narenas:4");
});

test("DuckDB's jemalloc takes the options set in-process by the policy module before DuckDB is loaded", () => {
  // A child process as the bins start: the policy module first, then DuckDB (loaded lazily by the commands). jemalloc
  // prints its options at exit when stats_print is among them, which shows which ones it took.
  const policy = new URL("./allocator-policy.ts", import.meta.url).href;
  const duckdb = import.meta.resolve("@duckdb/node-api");
  const script = `
    await import(${JSON.stringify(policy)});
    process.env.DUCKDB_JE_MALLOC_CONF += ",stats_print:true";
    const { DuckDBInstance } = await import(${JSON.stringify(duckdb)});
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    await conn.run("SELECT sum(i) FROM range(100000) t(i)");
    conn.closeSync();
    db.closeSync();
  `;
  const env = { ...process.env };
  delete env.DUCKDB_JE_MALLOC_CONF;
  const dir = mkdtempSync(join(tmpdir(), "dr-wandb-allocator-"));
  const file = join(dir, "start.mjs");
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ["--import", "tsx", file], {
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  assert.match(r.stderr, /opt\.narenas: 1\b/);
  assert.match(r.stderr, /opt\.dirty_decay_ms: 10\b/);
  assert.match(r.stderr, /opt\.muzzy_decay_ms: 0\b/);
});

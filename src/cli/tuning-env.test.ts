import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { runCli, tempDir } from "../../test/helpers.js";
import { TUNING_RULES, tuningEnvProblem } from "./tuning-env.js";

test("tuningEnvProblem: unset, blank and good values pass", () => {
  assert.equal(tuningEnvProblem({}), null);
  const good: NodeJS.ProcessEnv = {
    DR_WANDB_DUCKDB_MEMORY: "48MiB",
    DR_WANDB_DUCKDB_EXPORT_MEMORY: " 1.5GB ",
    DR_WANDB_DUCKDB_CHECKPOINT: "128 mib",
    DR_WANDB_DUCKDB_THREADS: "2",
    DR_WANDB_MAX_BUFFERED_CELLS: "1500000",
    DR_WANDB_SPOOL_CELLS: "0",
    DR_WANDB_WINDOW_CELLS: "",
    DR_WANDB_LARGE_HEAP_MB: "0.5",
    DR_WANDB_HEAP_GROWING_PERCENT: "0",
    DR_WANDB_YOUNG_GROWTH_FACTOR: "16",
    DR_WANDB_COLUMNAR: "0",
    DR_WANDB_DOWNLOAD_COLUMNAR: "1",
    DR_WANDB_UNKNOWN_THING: "anything", // not a tuning variable: not ours to judge
  };
  assert.equal(tuningEnvProblem(good), null);
});

test("tuningEnvProblem: a value its reader would misread is named, with what was expected", () => {
  const cases: [string, string, RegExp][] = [
    ["DR_WANDB_DUCKDB_EXPORT_MEMORY", "lots", /memory size such as 64MiB/],
    ["DR_WANDB_DUCKDB_MEMORY", "100", /memory size/], // DuckDB refuses a bare number
    ["DR_WANDB_DUCKDB_MEMORY", "0MiB", /memory size/],
    ["DR_WANDB_DUCKDB_MEMORY", "80%", /memory size/],
    ["DR_WANDB_DUCKDB_CHECKPOINT", "1PB", /memory size/],
    ["DR_WANDB_DUCKDB_THREADS", "0", /from 1 to 1024/],
    ["DR_WANDB_MAX_BUFFERED_CELLS", "abc", /whole number of at least 1/],
    ["DR_WANDB_MAX_BUFFERED_CELLS", "0", /at least 1/],
    ["DR_WANDB_SPOOL_CELLS", "-1", /at least 0/],
    ["DR_WANDB_WINDOW_CELLS", "1.5", /whole number/],
    ["DR_WANDB_YOUNG_GROWTH_FACTOR", "17", /from 0 to 16/],
    ["DR_WANDB_COLUMNAR", "false", /0 or 1/],
  ];
  for (const [name, value, want] of cases) {
    const msg = tuningEnvProblem({ [name]: value });
    assert.ok(msg !== null, `${name}=${value} passed`);
    assert.ok(msg.startsWith(`${name}=${JSON.stringify(value)}: expected `), msg);
    assert.match(msg, want);
    assert.ok(!msg.includes("\n"));
  }
  const long = tuningEnvProblem({ DR_WANDB_COLUMNAR: "x".repeat(500) });
  assert.ok(long !== null && long.length < 120, "a long value is shortened");
});

test("every memory size the check accepts, DuckDB accepts (and it refuses what DuckDB cannot read)", async () => {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const rule = TUNING_RULES.DR_WANDB_DUCKDB_CHECKPOINT!;
    for (const v of [
      "64MiB",
      "64 MiB",
      "64mib",
      "64MB",
      "1GB",
      "1.5GB",
      "0.5GiB",
      "2m",
      "2g",
      "1e3MB",
      ".5GB",
      "1TiB",
    ]) {
      assert.ok(rule.ok(v), `${v} refused`);
      await conn.run(`SET checkpoint_threshold = '${v}'`); // throws if DuckDB cannot read it
    }
    for (const v of ["abc", "100", "80%", "1PB", "64 MiBs", "1,000MB"]) {
      assert.equal(rule.ok(v), false, `${v} accepted`);
      await assert.rejects(conn.run(`SET checkpoint_threshold = '${v}'`), `DuckDB read ${v}`);
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
});

test("a bad tuning variable stops sync and wandb-download with a usage error, before anything is written", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "out");
  const sync = await runCli(["sync", "e/p", "--output-dir", out, "--api-key", "k".repeat(40)], {
    env: { DR_WANDB_DUCKDB_EXPORT_MEMORY: "lots", WANDB_BASE_URL: "http://127.0.0.1:9" },
  });
  assert.equal(sync.code, 2, sync.stderr);
  assert.equal(
    sync.stderr,
    'dr-wandb: error: DR_WANDB_DUCKDB_EXPORT_MEMORY="lots": expected a memory size such as 64MiB or 1GB (or unset it)\n',
  );
  assert.equal(existsSync(out), false, "nothing written");
  const dl = await runCli(["e", "p", out, "--api-key", "k".repeat(40)], {
    bin: "wandb-download",
    env: { DR_WANDB_COLUMNAR: "off", WANDB_BASE_URL: "http://127.0.0.1:9" },
  });
  assert.equal(dl.code, 2, dl.stderr);
  assert.match(dl.stderr, /^wandb-download: error: DR_WANDB_COLUMNAR="off": expected 0 or 1 \(or unset it\)\n$/);
  const help = await runCli(["--help"], { env: { DR_WANDB_DUCKDB_EXPORT_MEMORY: "lots" } });
  assert.equal(help.code, 0, "help still works");
});

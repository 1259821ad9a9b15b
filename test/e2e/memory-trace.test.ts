/**
 * DR_WANDB_MEMORY_TRACE: the sampler behind docs/benchmarks.md's memory split writes JSON lines of numbers and a
 * summary at exit, with DuckDB's own memory counted, and never the API key.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { runCli, tempDir } from "../helpers.js";

let fake: FakeWandb;
before(async () => {
  fake = await startFakeWandb({ seed: 5, runs: 4, steps: 300, metrics: 4 });
});
after(async () => {
  await fake?.close();
});

describe("memory trace", () => {
  it("samples RSS, the JS heap and DuckDB's memory to a file, with a summary and no secret", async () => {
    await using dir = await tempDir();
    const trace = join(dir.path, "trace.ndjson");
    const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", join(dir.path, "out"), "-q"], {
      env: {
        WANDB_BASE_URL: fake.url,
        WANDB_API_KEY: fake.apiKey,
        DR_WANDB_MEMORY_TRACE: trace,
        DR_WANDB_MEMORY_TRACE_MS: "20",
      },
      // the command's bin starts the trace (and the summary is written at the process's exit)
      process: true,
    });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(trace, "utf8");
    assert.ok(!text.includes(fake.apiKey), "the API key is never written");
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.at(-1)!.summary as { atPeakRss: Record<string, number>; max: Record<string, number> };
    assert.ok(summary, "a summary line at exit");
    for (const k of ["rss", "heapUsed", "heapTotal", "external", "arrayBuffers", "duckdb"]) {
      assert.equal(typeof summary.max[k], "number", k);
    }
    assert.ok(summary.max.rss! > summary.max.heapUsed!, "RSS covers the heap");
    assert.ok(summary.max.duckdb! > 0, "the archive's DuckDB memory is counted");
    assert.ok(lines.length > 2, "samples before the summary");
  });
});

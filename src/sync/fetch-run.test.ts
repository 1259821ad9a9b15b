/**
 * fetchHistory's history budget against the real fake-wandb: reserved after a run's export check (so that many runs'
 * checks can share a request), before its downloads and live rows, and given back on release.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { forgetCapabilities } from "../wandb/capabilities.js";
import { WandbClient } from "../wandb/client.js";
import type { WandbRun } from "../wandb/types.js";
import { WeightedSemaphore } from "./concurrency.js";
import { fetchHistory, releaseHistory } from "./fetch-run.js";

const scratch = mkdtempSync(join(tmpdir(), "drw-fetch-run-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Resolves once `cond` holds, checked on every turn of the event loop (no wall-clock margin). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

describe("fetchHistory with a memory budget", () => {
  let fake: FakeWandb;
  let client: WandbClient;
  const runs: WandbRun[] = [];
  before(async () => {
    // Runs longer than one history window, so that their exports are asked for; half of them still running.
    fake = await startFakeWandb({ seed: 41, runs: 4, steps: 1500, metrics: 4, runningFraction: 0.5 });
    forgetCapabilities(fake.url);
    client = await WandbClient.create({
      apiKey: fake.apiKey,
      baseUrl: fake.url,
      env: {},
      cwd: scratch,
      home: scratch,
      retry: { minDelayMs: 5, maxDelayMs: 50, maxServerWaitMs: 50 },
    });
    for await (const page of client.listRuns(fake.entity, fake.project)) runs.push(...page.runs);
  });
  after(async () => {
    await fake?.close();
  });

  test("the export check goes out while the budget is held; the download and the live rows wait for it", async () => {
    const finished = runs.find((r) => r.state === "finished" && r.lastHistoryStep >= 1000);
    const running = runs.find((r) => r.state === "running" && r.lastHistoryStep >= 1000);
    assert.ok(finished && running, "the fake needs a long finished run and a long running run");
    const budget = new WeightedSemaphore(1000);
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    let hold = await budget.acquire(1000);

    let settled = false;
    const files = fetchHistory(client, finished, 0, {}, undefined, { columnar: true, budget }).finally(() => {
      settled = true;
    });
    await until(() => budget.queued === 1 || settled, "the finished run's read reached the budget");
    assert.equal(settled, false, "the download waits while the budget is taken");
    const stats = async () =>
      (await (await fetch(`${fake.url}/_fake/stats`)).json()) as {
        byOperation: Record<string, number>;
        parquet: number;
      };
    const ops = await stats();
    const checks = (ops.byOperation.RunParquetHistory ?? 0) + (ops.byOperation.RunsParquetHistory ?? 0);
    assert.equal(checks, 1, `the export check went out first: ${JSON.stringify(ops.byOperation)}`);
    assert.equal(ops.parquet, 0, "no export downloaded yet");
    hold();
    const taken = await files;
    assert.ok(taken.parquet.length > 0, "the finished run's history came as export files");
    assert.equal(taken.rows, finished.lastHistoryStep + 1);
    assert.ok((await stats()).parquet > 0, "its exports were downloaded once the budget was given back");
    await releaseHistory(taken);

    hold = await budget.acquire(1000);
    settled = false;
    const live = fetchHistory(client, running, 0, {}, undefined, { columnar: true, budget }).finally(() => {
      settled = true;
    });
    await until(() => budget.queued === 1 || settled, "the running run's read reached the budget");
    assert.equal(settled, false, "a read of live rows waits while the budget is taken");
    hold();
    const h = await live;
    assert.ok(h.rows > 0, "its rows were read once the budget was given back");
    // Its reservation is given back on release: the whole budget can be taken again at once.
    await releaseHistory(h);
    const again = await budget.acquire(1000);
    assert.equal(budget.queued, 0);
    again();
  });
});

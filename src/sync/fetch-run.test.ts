/**
 * fetchHistory's memory budget against the real fake-wandb: reserved only once a read holds rows in memory, so that
 * a run whose exports are taken as files never waits behind runs holding the budget, and given back on release.
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

  test("a finished run's exports are taken while the budget is held; a running run waits for it", async () => {
    const finished = runs.find((r) => r.state === "finished" && r.lastHistoryStep >= 1000);
    const running = runs.find((r) => r.state === "running" && r.lastHistoryStep >= 1000);
    assert.ok(finished && running, "the fake needs a long finished run and a long running run");
    const budget = new WeightedSemaphore(1000);
    const hold = await budget.acquire(1000);

    const taken = await fetchHistory(client, finished, 0, {}, undefined, { columnar: true, budget });
    assert.ok(taken.parquet.length > 0, "the finished run's history came as export files");
    assert.equal(taken.rows, finished.lastHistoryStep + 1);
    assert.equal(budget.queued, 0, "no reservation for rows held on disk");
    await releaseHistory(taken);

    let settled = false;
    const live = fetchHistory(client, running, 0, {}, undefined, { columnar: true, budget }).finally(() => {
      settled = true;
    });
    await until(() => budget.queued === 1 || settled, "the running run's read reached the budget");
    assert.equal(settled, false, "a read holding live rows waits while the budget is taken");
    hold();
    const h = await live;
    assert.ok(h.rows > 0, "its live rows were read once the budget was given back");
    // Its reservation is given back on release: the whole budget can be taken again at once.
    await releaseHistory(h);
    const again = await budget.acquire(1000);
    assert.equal(budget.queued, 0);
    again();
  });
});

/**
 * Rate-limit pacing end to end: WandbClient against the real fake-wandb with its fixed-window limit on the API host.
 * No timing assertions (speed is the benchmark's business, scenario S4): the checks are that every request (GraphQL
 * and /files GETs alike) went through the governor, that it learned the window's budget from the RateLimit-*
 * headers, and that pacing kept the 429s to a handful while every row arrived.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { WandbClient } from "./client.js";

const scratch = mkdtempSync(join(tmpdir(), "drw-ratelimit-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const LIMIT = 20;
const STEPS = 300;

describe("pacing under fake-wandb's rate limit", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({
      runs: 12,
      steps: STEPS,
      metrics: 5,
      seed: 41,
      rateLimit: LIMIT,
      latencyMs: 20,
      parquetExports: false,
    });
  });
  after(() => fake.close());

  test("the budget is learned from the headers and spread over each window: every row, at most 2 429s", async () => {
    const client = await WandbClient.create({
      apiKey: fake.apiKey,
      baseUrl: fake.url,
      env: {},
      cwd: scratch,
      home: scratch,
    });
    try {
      const truth = await (await fetch(`${fake.url}/_fake/truth/runs`)).text();
      const runs = truth
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => (JSON.parse(l) as { name: string }).name);
      fake.resetStats();
      // Per run: its record, its metadata file (a /files GET on the API host), its last step and its history.
      const rows = await Promise.all(
        runs.map(async (name) => {
          assert.ok(await client.getRun(fake.entity, fake.project, name));
          await client.fetchJsonFile(fake.entity, fake.project, name, "wandb-metadata.json");
          await client.lastHistoryStep(fake.entity, fake.project, name);
          let n = 0;
          for await (const batch of client.scanHistory(fake.entity, fake.project, name)) n += batch.length;
          return n;
        }),
      );
      assert.deepEqual(
        rows,
        runs.map(() => STEPS),
      );
      const s = fake.stats();
      const api = s.graphql + s.files;
      const governor = client.stats().governor;
      assert.ok(s.files >= runs.length, "the metadata GETs went to the API host");
      assert.equal(governor.granted, api, "every API-host request (GraphQL and /files) took a governor slot");
      assert.deepEqual(
        { capacity: governor.pacing?.capacity, windowMs: governor.pacing?.windowMs },
        { capacity: LIMIT, windowMs: 1000 },
      );
      assert.ok(api >= 48, `${api} requests: enough to span a few windows`);
      assert.ok(s.rateLimited <= 2, `${s.rateLimited} of ${api} API requests were answered 429`);
    } finally {
      await client.close();
    }
  });
});

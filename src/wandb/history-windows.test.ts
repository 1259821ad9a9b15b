/**
 * History windows sized by the known steps (liveData), checked against them, and several runs' reads combined in one
 * aliased document; against the real fake-wandb, including one that silently down-samples large `samples` and one
 * that rejects the non-SDK shapes.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { type JsonObject, jsonEquals, parseWandbJson } from "../model/json.js";
import { forgetCapabilities } from "./capabilities.js";
import { WandbClient } from "./client.js";
import type { HistoryRow, WandbRun } from "./types.js";

const scratch = mkdtempSync(join(tmpdir(), "drw-windows-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function clientFor(fake: FakeWandb, compat = false): Promise<WandbClient> {
  forgetCapabilities(fake.url);
  const client = await WandbClient.create({
    apiKey: fake.apiKey,
    baseUrl: fake.url,
    env: {},
    cwd: scratch,
    home: scratch,
    compat,
    retry: { minDelayMs: 5, maxDelayMs: 50, maxServerWaitMs: 50 },
  });
  await listAll(client, fake);
  return client;
}

async function control(fake: FakeWandb, path: string): Promise<string> {
  const res = await fetch(`${fake.url}${path}`);
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return res.text();
}

const ndjson = (text: string): JsonObject[] =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => parseWandbJson(l) as JsonObject);

async function runNames(fake: FakeWandb): Promise<string[]> {
  return ndjson(await control(fake, "/_fake/truth/runs")).map((r) => r.name as string);
}

async function truth(fake: FakeWandb, run: string): Promise<JsonObject[]> {
  return ndjson(await control(fake, `/_fake/truth/history?run=${encodeURIComponent(run)}`));
}

async function operations(fake: FakeWandb): Promise<Record<string, number>> {
  return (JSON.parse(await control(fake, "/_fake/stats")) as { byOperation: Record<string, number> }).byOperation;
}

const listings = new WeakMap<WandbClient, Map<string, WandbRun>>();

/** Lists the project's runs once per client (then resets the fake's counters), as a sync has them. */
async function listAll(client: WandbClient, fake: FakeWandb): Promise<void> {
  const m = new Map<string, WandbRun>();
  for await (const page of client.listRuns(fake.entity, fake.project)) for (const r of page.runs) m.set(r.name, r);
  listings.set(client, m);
  fake.resetStats();
}

/** Reads a run's history from `minStep`, given its listing (as the sync does: no RunHistoryKeys request). */
async function scan(client: WandbClient, fake: FakeWandb, run: string, minStep = 0): Promise<HistoryRow[]> {
  const listed = listings.get(client)?.get(run);
  const rows: HistoryRow[] = [];
  const options = listed ? { minStep, historyKeys: listed.historyKeys, lastStep: listed.lastHistoryStep } : { minStep };
  for await (const b of client.scanHistory(fake.entity, fake.project, run, options)) rows.push(...b);
  return rows;
}

function assertSame(actual: HistoryRow[], expected: JsonObject[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: row count`);
  for (let i = 0; i < expected.length; i++) {
    if (!jsonEquals(actual[i]!, expected[i]!)) assert.fail(`${label}: row ${i} differs`);
  }
}

describe("history windows from known steps", () => {
  test("no exports: one RunParquetHistory and one HistoryPage for 5,000 steps, every row exact", async () => {
    const fake = await startFakeWandb({ runs: 1, steps: 5000, metrics: 4, seed: 5, parquetExports: false });
    const client = await clientFor(fake);
    try {
      const [name] = await runNames(fake);
      assertSame(await scan(client, fake, name!), await truth(fake, name!), name!);
      const ops = await operations(fake);
      assert.equal(ops.RunParquetHistory, 1);
      assert.equal(ops.HistoryPage, 1, JSON.stringify(ops));
      assert.equal(client.stats().capabilities.historyWindows, true);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("one window's 20,000 rows come in one request and are handed out a chunk at a time, every row exact", async () => {
    const fake = await startFakeWandb({ runs: 1, steps: 20_000, metrics: 4, seed: 5, parquetExports: false });
    const client = await clientFor(fake);
    try {
      const [name] = await runNames(fake);
      const listed = listings.get(client)!.get(name!)!;
      const pages: number[] = [];
      const rows: HistoryRow[] = [];
      const options = { historyKeys: listed.historyKeys, lastStep: listed.lastHistoryStep };
      for await (const b of client.scanHistory(fake.entity, fake.project, name!, options)) {
        pages.push(b.length);
        rows.push(...b);
      }
      assertSame(rows, await truth(fake, name!), name!);
      const ops = await operations(fake);
      assert.equal(ops.HistoryPage, 1, JSON.stringify(ops));
      // DECODE_CHUNK_CELLS (32,768) over the run's keys: the window's rows are never all objects at once
      assert.ok(pages.length >= 3, `pages of ${pages.join(", ")}`);
      assert.ok(Math.max(...pages) <= 32_768 / 4, `pages of ${pages.join(", ")}`);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a server that down-samples large samples is found out: rows exact, SDK windows from then on", async () => {
    const fake = await startFakeWandb({
      runs: 2,
      steps: 3500,
      metrics: 3,
      seed: 6,
      parquetExports: false,
      historySamplesCap: 1000,
    });
    const client = await clientFor(fake);
    try {
      const [a, b] = await runNames(fake);
      assertSame(await scan(client, fake, a!), await truth(fake, a!), a!);
      assert.equal(client.stats().capabilities.historyWindows, false);
      assert.equal(client.stats().downsampledWindows, 1);
      const first = await operations(fake);
      // The big window (sampled, thrown away), then four SDK windows.
      assert.equal(first.HistoryPage, 1 + 4, JSON.stringify(first));
      fake.resetStats();
      assertSame(await scan(client, fake, b!), await truth(fake, b!), b!);
      const second = await operations(fake);
      assert.equal(second.HistoryPage, 4, "no second probe once learned");
      assert.equal(client.stats().downsampledWindows, 1);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a running run with partial exports: parquet below the boundary, its live steps in one window", async () => {
    const fake = await startFakeWandb({ runs: 12, steps: 4000, metrics: 3, seed: 7, runningFraction: 1 });
    const client = await clientFor(fake);
    try {
      for (const name of await runNames(fake)) {
        assertSame(await scan(client, fake, name), await truth(fake, name), name);
      }
      assert.notEqual(client.stats().capabilities.historyWindows, false);
      assert.equal(client.stats().downsampledWindows, 0);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("compat: only the SDK's 1,000-step windows and single-run documents", async () => {
    const fake = await startFakeWandb({ runs: 3, steps: 2500, metrics: 2, seed: 8, parquetExports: false });
    const client = await clientFor(fake, true);
    try {
      const names = await runNames(fake);
      const got = await Promise.all(names.map((n) => scan(client, fake, n)));
      for (const [i, n] of names.entries()) assertSame(got[i]!, await truth(fake, n), n);
      const ops = await operations(fake);
      assert.equal(ops.HistoryPage, 3 * 3);
      assert.equal(ops.HistoryPages, undefined);
      assert.equal(ops.RunsParquetHistory, undefined);
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

describe("several runs' reads in one document", () => {
  test("tails of 20 runs read at once: one HistoryPages request, each run's rows exact", async () => {
    const fake = await startFakeWandb({ runs: 20, steps: 600, metrics: 3, seed: 9 });
    const client = await clientFor(fake);
    try {
      const names = await runNames(fake);
      const got = await Promise.all(names.map((n) => scan(client, fake, n, 100)));
      for (const [i, n] of names.entries()) {
        assertSame(
          got[i]!,
          (await truth(fake, n)).filter((r) => (r._step as number) >= 100),
          n,
        );
      }
      const ops = await operations(fake);
      assert.equal(ops.HistoryPages, 1, JSON.stringify(ops));
      assert.equal(ops.HistoryPage, undefined);
      assert.equal(client.stats().capabilities.aliases, true);
      assert.equal(client.stats().batchedReads, 20);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("whole histories of several runs: parquetHistory reads batched too, rows exact", async () => {
    const fake = await startFakeWandb({ runs: 6, steps: 3000, metrics: 3, seed: 10, runningFraction: 0.5 });
    const client = await clientFor(fake);
    try {
      const names = await runNames(fake);
      const got = await Promise.all(names.map((n) => scan(client, fake, n)));
      for (const [i, n] of names.entries()) assertSame(got[i]!, await truth(fake, n), n);
      const ops = await operations(fake);
      assert.equal(ops.RunsParquetHistory, 1, JSON.stringify(ops));
      assert.equal(ops.RunParquetHistory, undefined);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a server that rejects aliased runs: each read alone with the SDK's documents, learned once", async () => {
    const fake = await startFakeWandb({ runs: 6, steps: 1500, metrics: 2, seed: 12, sdkShapesOnly: true });
    const client = await clientFor(fake);
    try {
      const names = await runNames(fake);
      const got = await Promise.all(names.map((n) => scan(client, fake, n)));
      for (const [i, n] of names.entries()) assertSame(got[i]!, await truth(fake, n), n);
      assert.equal(client.stats().capabilities.aliases, false);
      const ops = await operations(fake);
      assert.equal(ops.RunsParquetHistory, 1, "one rejected probe");
      assert.equal(ops.RunParquetHistory, names.length);
      assert.equal(ops.HistoryPages, undefined, "not tried again once rejected");
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("a run missing from a batch fails alone; the others are read", async () => {
    const fake = await startFakeWandb({ runs: 4, steps: 500, metrics: 2, seed: 13 });
    const client = await clientFor(fake);
    try {
      const names = await runNames(fake);
      // Listed (so its window is batched with the others) but gone from the server.
      const listing = listings.get(client)!;
      listing.set("no-such-run", { ...listing.get(names[0]!)!, name: "no-such-run" });
      const reads = [...names, "no-such-run"].map((n) =>
        scan(client, fake, n, 10).then(
          (rows) => ({ n, rows }),
          (e: unknown) => ({ n, error: e }),
        ),
      );
      const results = await Promise.all(reads);
      const ops = await operations(fake);
      assert.equal(ops.HistoryPages, 1, `the missing run's window was batched: ${JSON.stringify(ops)}`);
      for (const r of results) {
        if (r.n === "no-such-run") {
          assert.ok("error" in r && /not found/i.test(String((r.error as Error).message)), "the missing run fails");
        } else {
          assert.ok("rows" in r, `${r.n} was read`);
          assertSame(
            r.rows,
            (await truth(fake, r.n)).filter((x) => (x._step as number) >= 10),
            r.n,
          );
        }
      }
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

/**
 * Listing disjoint createdAt ranges at once (ListRunsOptions.parallel) against the real fake-wandb: every run exactly
 * as a serial listing gives it, user filters kept, and a server that ignores filters found out and listed serially.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { collectGarbage } from "../model/heap.js";
import type { JsonObject } from "../model/json.js";
import { forgetCapabilities } from "./capabilities.js";
import { createdAtRanges, WandbClient } from "./client.js";
import type { ListRunsOptions, WandbRun } from "./types.js";

const scratch = mkdtempSync(join(tmpdir(), "drw-ranges-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function clientFor(fake: FakeWandb, compat = false): Promise<WandbClient> {
  forgetCapabilities(fake.url);
  return WandbClient.create({ apiKey: fake.apiKey, baseUrl: fake.url, env: {}, cwd: scratch, home: scratch, compat });
}

async function list(client: WandbClient, fake: FakeWandb, options: ListRunsOptions): Promise<WandbRun[]> {
  const out: WandbRun[] = [];
  for await (const page of client.listRuns(fake.entity, fake.project, options)) out.push(...page.runs);
  return out;
}

async function runsRequests(fake: FakeWandb): Promise<number> {
  const res = await fetch(`${fake.url}/_fake/stats`);
  return ((await res.json()) as { byOperation: Record<string, number> }).byOperation.Runs ?? 0;
}

/** name -> run, failing on a run listed twice with different contents. */
function byName(runs: WandbRun[]): Map<string, WandbRun> {
  const m = new Map<string, WandbRun>();
  for (const r of runs) {
    const prev = m.get(r.name);
    if (prev) assert.deepEqual(r, prev, `${r.name} listed twice, differently`);
    m.set(r.name, r);
  }
  return m;
}

describe("createdAtRanges", () => {
  test("splits evenly at whole seconds, written like the input, last range open", () => {
    const r = createdAtRanges("2025-01-01T00:00:00", "2025-01-01T00:00:40", 4)!;
    assert.equal(r.length, 4);
    assert.deepEqual(r[0]!.filters({}), {
      $and: [{ createdAt: { $gte: "2025-01-01T00:00:00" } }, { createdAt: { $lt: "2025-01-01T00:00:10" } }],
    });
    assert.deepEqual(r[3]!.filters({ state: "finished" } as JsonObject), {
      $and: [{ state: "finished" }, { createdAt: { $gte: "2025-01-01T00:00:30" } }],
    });
    assert.ok(r[1]!.holds("2025-01-01T00:00:10") && !r[1]!.holds("2025-01-01T00:00:20"));
    assert.ok(r[3]!.holds("2026-01-01T00:00:00"), "the last range has no upper end");
    assert.equal(createdAtRanges("2025-01-01T00:00:00", "2025-01-01T00:00:00", 4), null);
    assert.equal(createdAtRanges("not a time", "2025-01-01T00:00:00", 4), null);
    // two runs a second apart cannot make eight ranges: as many as there are whole seconds
    assert.equal(createdAtRanges("2025-01-01T00:00:00", "2025-01-01T00:00:01", 8), null);
  });
});

describe("parallel createdAt ranges", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 2300, steps: 2, metrics: 2, seed: 31 });
  });
  after(() => fake.close());

  test("every run, exactly as a serial listing has it; few extra requests", async () => {
    const serialClient = await clientFor(fake);
    const serial = byName(await list(serialClient, fake, { perPage: 200 }));
    await serialClient.close();
    const client = await clientFor(fake);
    try {
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      const got = await list(client, fake, { perPage: 200, parallel: 4 });
      const ranged = byName(got);
      assert.equal(ranged.size, serial.size);
      for (const [name, run] of serial) assert.deepEqual(ranged.get(name), run, name);
      assert.ok(got.length - ranged.size <= 4, `${got.length - ranged.size} runs listed twice`);
      assert.equal(client.stats().capabilities.rangeListing, true);
      // first page + the newest run + each range's pages (a range's last page may be short)
      const requests = await runsRequests(fake);
      assert.ok(requests >= 2 + 11 && requests <= 2 + 11 + 4, `${requests} Runs requests`);
    } finally {
      await client.close();
    }
  });

  test("a page handed out is not held by the listing: its runs can be collected while the listing goes on", async () => {
    const client = await clientFor(fake);
    try {
      const it = client.listRuns(fake.entity, fake.project, { perPage: 200, parallel: 4 })[Symbol.asyncIterator]();
      const firstRun = await (async () => {
        const first = await it.next();
        assert.equal(first.done, false);
        return new WeakRef(first.value.runs[0]!);
      })();
      const second = await it.next(); // the ranges are being listed: the generator is suspended mid-listing
      assert.equal(second.done, false);
      await new Promise((r) => setImmediate(r)); // a WeakRef's target is kept until the job that made it ends
      assert.ok(collectGarbage({}), "a full collection ran");
      assert.equal(firstRun.deref(), undefined, "the first page's run was collected");
      await it.return?.();
    } finally {
      await client.close();
    }
  });

  test("user filters are kept inside every range", async () => {
    const filters = { state: "finished" } as JsonObject;
    const client = await clientFor(fake);
    try {
      const serial = byName(await list(client, fake, { perPage: 100, filters }));
      const ranged = byName(await list(client, fake, { perPage: 100, filters, parallel: 6 }));
      assert.ok(serial.size > 300, "enough runs to split");
      assert.deepEqual([...ranged.keys()].sort(), [...serial.keys()].sort());
      for (const r of ranged.values()) assert.equal(r.state, "finished");
    } finally {
      await client.close();
    }
  });

  test("--compat and other orders list serially", async () => {
    const client = await clientFor(fake, true);
    try {
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      assert.equal((await list(client, fake, { perPage: 500, parallel: 8 })).length, 2300);
      assert.equal(await runsRequests(fake), Math.ceil(2300 / 50), "SDK pages of 50, no ranges");
      assert.equal(client.stats().capabilities.rangeListing, undefined);
    } finally {
      await client.close();
    }
    const other = await clientFor(fake);
    try {
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      assert.equal((await list(other, fake, { perPage: 500, parallel: 8, order: "-created_at" })).length, 2300);
      assert.equal(await runsRequests(fake), 5);
    } finally {
      await other.close();
    }
  });
});

test("a server that ignores filters is found out: every run once more, serially, remembered", async () => {
  const fake = await startFakeWandb({ runs: 1200, steps: 2, metrics: 2, seed: 32, ignoreRunFilters: true });
  const client = await clientFor(fake);
  try {
    const got = byName(await list(client, fake, { perPage: 200, parallel: 4 }));
    assert.equal(got.size, 1200);
    assert.equal(client.stats().capabilities.rangeListing, false);
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    assert.equal(byName(await list(client, fake, { perPage: 200, parallel: 4 })).size, 1200);
    assert.equal(await runsRequests(fake), 6, "serial from then on: no newest-run request, no ranges");
  } finally {
    await client.close();
    await fake.close();
  }
});

/**
 * End-to-end tests of WandbClient against the real fake-wandb server over HTTP: request counts, exact history
 * (parquet exports and live windows) under faults, every encoding case of the edge profile, error behaviour per
 * fault kind, credential scoping, downloads, and the capability fallbacks of an SDK-shapes-only server.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeWandb, type FaultKind, startFakeWandb } from "../../fake-wandb/index.js";
import { isJsonObject, type JsonObject, jsonEquals, parseWandbJson, stringifyWandb } from "../model/json.js";
import { WandbClient, type WandbClientOptions } from "./client.js";
import { NotFoundError, WandbError } from "./errors.js";
import { RateGovernor } from "./governor.js";
import { lazyLinesCreated } from "./lazy-lines.js";
import type { HistoryRow, WandbFile } from "./types.js";

const scratch = mkdtempSync(join(tmpdir(), "drw-client-e2e-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Fast retries for tests: tiny backoff, server waits capped at 50 ms. */
const FAST = { minDelayMs: 5, maxDelayMs: 50, maxServerWaitMs: 50 };

function clientFor(fake: FakeWandb, extra: Partial<WandbClientOptions> = {}): Promise<WandbClient> {
  return WandbClient.create({
    apiKey: fake.apiKey,
    baseUrl: fake.url,
    env: {},
    cwd: scratch,
    home: scratch,
    retry: FAST,
    ...extra,
  });
}

async function control(fake: FakeWandb, path: string): Promise<string> {
  const res = await fetch(`${fake.url}${path}`);
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return res.text();
}

async function fakeStats(fake: FakeWandb): Promise<{
  byOperation: Record<string, number>;
  authLeaks: unknown[];
  faults: Record<string, number>;
  byStatus: Record<string, number>;
}> {
  // biome-ignore lint/suspicious/noExplicitAny: control endpoint JSON
  return JSON.parse(await control(fake, "/_fake/stats")) as any;
}

function ndjson(text: string): JsonObject[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => parseWandbJson(l) as JsonObject);
}

async function truthHistory(fake: FakeWandb, run: string): Promise<JsonObject[]> {
  return ndjson(await control(fake, `/_fake/truth/history?run=${encodeURIComponent(run)}`));
}

async function truthRuns(fake: FakeWandb): Promise<JsonObject[]> {
  return ndjson(await control(fake, "/_fake/truth/runs"));
}

async function scanAll(
  client: WandbClient,
  fake: FakeWandb,
  run: string,
  options: Parameters<WandbClient["scanHistory"]>[3] = {},
): Promise<HistoryRow[]> {
  const rows: HistoryRow[] = [];
  for await (const batch of client.scanHistory(fake.entity, fake.project, run, options)) {
    assert.ok(batch.length > 0, "no empty batches");
    rows.push(...batch);
  }
  return rows;
}

function assertRowsEqual(actual: HistoryRow[], expected: JsonObject[], label: string): void {
  const firstDiff = () => {
    for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
      if (!jsonEquals(actual[i] ?? null, expected[i] ?? null)) return i;
    }
    return -1;
  };
  const i = firstDiff();
  if (i >= 0) {
    assert.fail(
      `${label}: ${actual.length} rows vs ${expected.length} in truth; first difference at row ${i}:\n` +
        `  got  ${actual[i] === undefined ? "(none)" : stringifyWandb(actual[i]!)}\n` +
        `  want ${expected[i] === undefined ? "(none)" : stringifyWandb(expected[i]!)}`,
    );
  }
}

function steps(rows: HistoryRow[]): number[] {
  return rows.map((r) => r._step as number);
}

describe("listing runs", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 1000, steps: 3, metrics: 2, seed: 11 });
  });
  after(() => fake.close());

  test("1,000 runs take ceil(1000/perPage) Runs requests and nothing per run", async () => {
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      const names: string[] = [];
      let runCount = 0;
      for await (const page of client.listRuns(fake.entity, fake.project)) {
        names.push(...page.runs.map((r) => r.name));
        runCount = page.runCount;
      }
      assert.equal(names.length, 1000);
      assert.equal(new Set(names).size, 1000);
      assert.equal(runCount, 1000);
      const truth = await truthRuns(fake);
      assert.deepEqual(
        names,
        truth.map((r) => r.name),
      );
      const s = await fakeStats(fake);
      assert.deepEqual(s.byOperation, { Runs: Math.ceil(1000 / 500) });
      assert.deepEqual(client.stats().byOperation, { Runs: 2 });
    } finally {
      await client.close();
    }
  });

  test("a smaller perPage pages by the last edge's cursor", async () => {
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      let n = 0;
      let pages = 0;
      for await (const page of client.listRuns(fake.entity, fake.project, { perPage: 300 })) {
        n += page.runs.length;
        pages++;
      }
      assert.equal(n, 1000);
      assert.equal(pages, 4);
      assert.equal((await fakeStats(fake)).byOperation.Runs, 4);
    } finally {
      await client.close();
    }
  });

  test("filters and order go through; runCount uses the same filters", async () => {
    const client = await clientFor(fake);
    try {
      const filters = { state: "running" };
      const count = await client.runCount(fake.entity, fake.project, filters);
      const seen: string[] = [];
      for await (const page of client.listRuns(fake.entity, fake.project, { filters, order: "-created_at" })) {
        assert.equal(page.runCount, count);
        for (const r of page.runs) {
          assert.equal(r.state, "running");
          seen.push(r.createdAt);
        }
      }
      assert.equal(seen.length, count);
      assert.ok(count > 0 && count < 1000);
      assert.deepEqual(seen, [...seen].sort().reverse());
    } finally {
      await client.close();
    }
  });

  test("getRuns fetches many runs in one aliased request", async () => {
    const client = await clientFor(fake);
    try {
      const truth = await truthRuns(fake);
      const names = truth.slice(0, 40).map((r) => r.name as string);
      fake.resetStats();
      const got = await client.getRuns(fake.entity, fake.project, [...names, "doesnotexist"]);
      assert.equal(got.size, 41);
      for (const n of names) assert.equal(got.get(n)?.name, n);
      assert.equal(got.get("doesnotexist"), null);
      assert.deepEqual((await fakeStats(fake)).byOperation, { RunsByName: 1 });
      assert.equal(client.stats().capabilities.aliases, true);
    } finally {
      await client.close();
    }
  });
});

describe("runs, config and errors for missing things", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 12, steps: 50, profile: "edge", seed: 7 });
  });
  after(() => fake.close());

  test("decoded runs match the truth (config unwrapped, NaN/big ints exact, summary, system metrics)", async () => {
    const client = await clientFor(fake);
    try {
      const truth = new Map((await truthRuns(fake)).map((r) => [r.name as string, r]));
      let checked = 0;
      for await (const page of client.listRuns(fake.entity, fake.project)) {
        for (const run of page.runs) {
          const t = truth.get(run.name)!;
          assert.ok(t, run.name);
          assert.ok(jsonEquals(run.config, t.config!), `config of ${run.name}`);
          assert.ok(jsonEquals(run.summary, t.summary!), `summary of ${run.name}`);
          assert.ok(jsonEquals(run.systemMetrics, t.systemMetrics!), `systemMetrics of ${run.name}`);
          assert.deepEqual(run.tags, t.tags);
          assert.equal(run.displayName, t.displayName);
          assert.equal(run.storageId, t.storageId);
          assert.equal(run.createdAt, t.createdAt);
          assert.equal(run.lastHistoryStep, t.lastStep);
          assert.equal(run.historyLineCount, t.historyLineCount);
          assert.ok(isJsonObject(run.rawConfig._wandb), "rawConfig keeps _wandb");
          assert.ok(!("_wandb" in run.config));
          checked++;
        }
      }
      assert.equal(checked, 12);
      const sink = [...truth.values()].find((r) => isJsonObject(r.config) && r.config.scenario === "kitchen-sink")!;
      const run = (await client.getRun(fake.entity, fake.project, sink.name as string))!;
      assert.ok(Number.isNaN(run.config.nan_param));
      assert.equal(run.config.inf_param, Number.POSITIVE_INFINITY);
      assert.equal(run.config.big_param, 9007199254740993n);
    } finally {
      await client.close();
    }
  });

  test("viewer, missing run (null), missing project (NotFoundError)", async () => {
    const client = await clientFor(fake);
    try {
      const v = await client.viewer();
      assert.equal(v.entity, fake.entity);
      assert.equal(await client.getRun(fake.entity, fake.project, "nosuchrun"), null);
      await assert.rejects(client.runCount(fake.entity, "nosuchproject"), (e: unknown) => {
        assert.ok(e instanceof NotFoundError);
        assert.equal(e.code, "NOT_FOUND");
        assert.match(e.message, /project fake-entity\/nosuchproject not found/);
        return true;
      });
      await assert.rejects(async () => {
        for await (const _ of client.listRuns(fake.entity, "nosuchproject")) {
          // nothing
        }
      }, NotFoundError);
      await assert.rejects(client.lastHistoryStep(fake.entity, fake.project, "nosuchrun"), NotFoundError);
    } finally {
      await client.close();
    }
  });
});

describe("history: exact, with and without parquet, under faults", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({
      runs: 14,
      steps: 1300,
      profile: "edge",
      seed: 21,
      failRate: 0.1,
      stallMs: 2000,
    });
  });
  after(() => fake.close());

  test("every run's full history equals /_fake/truth/history, parquet and live (failRate 0.1, all fault kinds)", async () => {
    const client = await clientFor(fake, { timeoutMs: 2500, downloadTimeoutMs: 2500, maxAttempts: 10 });
    try {
      const runs = (await truthRuns(fake)).map((r) => r.name as string);
      fake.resetStats();
      const lazyBefore = lazyLinesCreated();
      for (const name of runs) {
        const truth = await truthHistory(fake, name);
        for (const useParquet of [true, false]) {
          const rows = await scanAll(client, fake, name, { useParquet, pageSize: 100 });
          assertRowsEqual(rows, truth, `${name} (parquet ${useParquet})`);
        }
      }
      const s = await fakeStats(fake);
      // The faults really happened (each kind on its own is checked below), and the client went through them.
      const drawn = Object.values(s.faults).reduce((a, b) => a + b, 0);
      assert.ok(drawn >= 15 && Object.keys(s.faults).length >= 6, `faults drawn: ${JSON.stringify(s.faults)}`);
      assert.ok(client.stats().retries > 0);
      assert.ok((s.byOperation.RunParquetHistory ?? 0) > 0);
      assert.ok((s.byOperation.HistoryPage ?? 0) > 0);
      assert.ok(client.stats().byOperation.parquetFile! > 0, "parquet exports were read");
      assert.equal(client.stats().parquetFallbacks, 0);
      assert.deepEqual(s.authLeaks, []);
      // 1,300-row windows are answers of ~0.5 MB: their rows were read from the answers' bytes (lazy-lines.ts).
      assert.ok(lazyLinesCreated() > lazyBefore, "history rows were left in the answers' bytes");
    } finally {
      await client.close();
    }
  });

  test("the same on a server without parquet exports (empty parquetUrls, liveData only)", async () => {
    const bare = await startFakeWandb({
      runs: 8,
      steps: 1300,
      profile: "edge",
      seed: 22,
      failRate: 0.1,
      stallMs: 2000,
      parquetExports: false,
    });
    const client = await clientFor(bare, { timeoutMs: 2500, downloadTimeoutMs: 2500, maxAttempts: 10 });
    try {
      for (const r of await truthRuns(bare)) {
        const name = r.name as string;
        assertRowsEqual(await scanAll(client, bare, name, { pageSize: 100 }), await truthHistory(bare, name), name);
      }
      assert.equal(client.stats().byOperation.parquetFile ?? 0, 0);
      assert.ok((client.stats().byOperation.RunParquetHistory ?? 0) > 0);
    } finally {
      await client.close();
      await bare.close();
    }
  });
});

describe("history: the edge profile's encoding cases", () => {
  let fake: FakeWandb;
  let client: WandbClient;
  let truthByScenario: Map<string, JsonObject>;
  before(async () => {
    fake = await startFakeWandb({ runs: 16, steps: 200, profile: "edge", seed: 5 });
    client = await clientFor(fake);
    truthByScenario = new Map();
    for (const r of await truthRuns(fake)) {
      const sc = isJsonObject(r.config) ? r.config.scenario : undefined;
      if (typeof sc === "string" && !truthByScenario.has(sc)) truthByScenario.set(sc, r);
    }
  });
  after(async () => {
    await client.close();
    await fake.close();
  });

  async function both(scenario: string): Promise<{ name: string; rows: HistoryRow[]; truth: JsonObject[] }> {
    const t = truthByScenario.get(scenario);
    assert.ok(t, `the edge profile has a ${scenario} run (have ${[...truthByScenario.keys()].join(", ")})`);
    const name = t.name as string;
    const truth = await truthHistory(fake, name);
    // pageSize below the run's length, so that the parquet path is taken (a one-window span is read live).
    const viaParquet = await scanAll(client, fake, name, { pageSize: 64 });
    assertRowsEqual(viaParquet, truth, `${scenario} via parquet`);
    const live = await scanAll(client, fake, name, { useParquet: false });
    assertRowsEqual(live, truth, `${scenario} live`);
    return { name, rows: viaParquet, truth };
  }

  test("kitchen sink: NaN, ±Infinity, big ints, unicode/dotted/quoted keys, media, histograms", async () => {
    const { rows } = await both("kitchen-sink");
    const weird = rows.map((r) => r.weird).filter((v) => v !== undefined);
    assert.ok(
      weird.some((v) => typeof v === "number" && Number.isNaN(v)),
      "NaN",
    );
    assert.ok(weird.includes(Number.POSITIVE_INFINITY), "Infinity");
    assert.ok(weird.includes(Number.NEGATIVE_INFINITY), "-Infinity");
    assert.equal(rows[0]!.big_counter, 9007199254740993n);
    const huge = rows.find((r) => r.huge_int !== undefined)!;
    assert.equal(typeof huge.huge_int, "bigint");
    assert.ok((huge.huge_int as bigint) > 2n ** 63n);
    for (const k of ["精度", "émoji 🚀", 'val "acc"', "it's", "a.b.c", "train.loss", "key with spaces"]) {
      assert.ok(
        rows.some((r) => k in r),
        `key ${k}`,
      );
    }
    const media = rows.find((r) => r.examples !== undefined)!.examples as JsonObject;
    assert.equal(media._type, "image-file");
    assert.equal(typeof media.path, "string");
    const hist = rows.find((r) => r["gradients/w"] !== undefined)!["gradients/w"] as JsonObject;
    assert.ok(Array.isArray(hist.values) && Array.isArray(hist.bins));
    assert.ok(rows.some((r) => typeof r.run_id === "string"));
    assert.ok(rows.some((r) => typeof r.is_best === "boolean"));
  });

  test("float steps (10.0 on the wire) come back as integers; half exported, half live", async () => {
    const { rows } = await both("float-step");
    assert.ok(rows.every((r) => Number.isInteger(r._step)));
  });

  test("a run starting above step 0", async () => {
    const { rows } = await both("late-start");
    assert.equal(rows[0]!._step, 1000);
  });

  test("sparse steps and sparse keys", async () => {
    const { rows } = await both("sparse-steps");
    const s = steps(rows);
    assert.ok(
      s.some((x, i) => i > 0 && x - s[i - 1]! > 1000),
      "a gap wider than a window",
    );
    const withKey = rows.filter((r) => "sparse/every_7" in r).length;
    assert.ok(withKey > 0 && withKey < rows.length);
  });

  test("every other run of the profile too (wide, no history, running, ...)", async () => {
    for (const [scenario, t] of truthByScenario) {
      if (["kitchen-sink", "float-step", "late-start", "sparse-steps"].includes(scenario)) continue;
      const name = t.name as string;
      const truth = await truthHistory(fake, name);
      assertRowsEqual(await scanAll(client, fake, name, { pageSize: 64 }), truth, `${scenario} via parquet`);
      assertRowsEqual(await scanAll(client, fake, name, { useParquet: false }), truth, `${scenario} live`);
    }
  });

  test("windows: minStep/maxStep, small pages, lastStep given", async () => {
    const t = truthByScenario.get("kitchen-sink")!;
    const name = t.name as string;
    const truth = await truthHistory(fake, name);
    const want = truth.filter((r) => (r._step as number) >= 100 && (r._step as number) < 450);
    for (const useParquet of [true, false]) {
      const rows = await scanAll(client, fake, name, { minStep: 100, maxStep: 450, pageSize: 64, useParquet });
      assertRowsEqual(rows, want, `window (parquet ${useParquet})`);
    }
    const before = client.stats().byOperation.RunHistoryKeys ?? 0;
    const rows = await scanAll(client, fake, name, { lastStep: t.lastStep as number, pageSize: 100 });
    assertRowsEqual(rows, truth, "with lastStep");
    assert.equal(client.stats().byOperation.RunHistoryKeys ?? 0, before, "lastStep saves the RunHistoryKeys request");
  });

  test("keys: SampledHistoryPage windows give the rows having every key, projected to them", async () => {
    const t = truthByScenario.get("kitchen-sink")!;
    const name = t.name as string;
    const truth = await truthHistory(fake, name);
    const keys = ["loss", "sparse/every_7", "weird"];
    const want = truth
      .filter((r) => keys.every((k) => k in r))
      .map((r) => ({ _step: r._step!, loss: r.loss!, "sparse/every_7": r["sparse/every_7"]!, weird: r.weird! }));
    assert.ok(
      want.some((r) => Number.isNaN(r.weird)),
      "the keyed rows include a NaN",
    );
    const before = client.stats().byOperation.SampledHistoryPage ?? 0;
    const rows = await scanAll(client, fake, name, { keys, pageSize: 500 });
    assertRowsEqual(rows, want, "keyed scan");
    const windows = Math.ceil(((t.lastStep as number) + 1) / 500);
    assert.equal((client.stats().byOperation.SampledHistoryPage ?? 0) - before, windows);
    // The run's historyKeys (as the sync has it from listRuns) replaces the RunHistoryKeys request, types included.
    const run = (await client.getRun(fake.entity, fake.project, name))!;
    const keysBefore = client.stats().byOperation.RunHistoryKeys ?? 0;
    const again = await scanAll(client, fake, name, { keys, pageSize: 500, historyKeys: run.historyKeys });
    assertRowsEqual(again, want, "keyed scan with the run's historyKeys");
    assert.equal(client.stats().byOperation.RunHistoryKeys ?? 0, keysBefore);
  });

  test("a span of one window skips the parquet request: one HistoryPage", async () => {
    const t = truthByScenario.get("kitchen-sink")!;
    const name = t.name as string;
    const last = t.lastStep as number;
    const truth = (await truthHistory(fake, name)).filter((r) => (r._step as number) >= last - 9);
    const before = { ...client.stats().byOperation };
    const rows = await scanAll(client, fake, name, { minStep: last - 9, lastStep: last });
    assertRowsEqual(rows, truth, "tail");
    const after = client.stats().byOperation;
    assert.equal((after.HistoryPage ?? 0) - (before.HistoryPage ?? 0), 1);
    assert.equal(after.RunParquetHistory ?? 0, before.RunParquetHistory ?? 0);
    assert.equal(after.RunHistoryKeys ?? 0, before.RunHistoryKeys ?? 0);
  });

  test("sampledHistory and systemEvents", async () => {
    const t = truthByScenario.get("kitchen-sink")!;
    const name = t.name as string;
    const sampled = await client.sampledHistory(fake.entity, fake.project, name, { samples: 50 });
    assert.ok(sampled.length > 0 && sampled.length <= 60);
    assert.ok(sampled.every((r) => Number.isInteger(r._step)));
    const keyed = await client.sampledHistory(fake.entity, fake.project, name, { keys: ["loss"], samples: 20 });
    assert.ok(keyed.length > 0 && keyed.every((r) => "loss" in r && "_step" in r));
    const events = await client.systemEvents(fake.entity, fake.project, name, 10_000);
    const truthEvents = ndjson(await control(fake, `/_fake/truth/events?run=${encodeURIComponent(name)}`));
    assertRowsEqual(events, truthEvents, "events");
  });
});

describe("each fault kind is retried, or fails clearly", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 3, steps: 20, seed: 3, stallMs: 300 });
  });
  after(() => fake.close());

  const expected: Record<FaultKind, string[]> = {
    "500": ["SERVER"],
    "502": ["SERVER"],
    "503": ["SERVER"],
    "429": ["RATE_LIMITED"],
    reset: ["NETWORK"],
    truncated: ["NETWORK", "PROTOCOL"],
    stall: ["TIMEOUT", "NETWORK"],
    graphql: ["GRAPHQL"],
  };

  for (const kind of Object.keys(expected) as FaultKind[]) {
    test(`${kind}: retried through at failRate 0.5; a clear error when it never stops`, async () => {
      fake.setFaults({ failRate: 0.5, faultKinds: [kind] });
      const ok = await clientFor(fake, { maxAttempts: 12, timeoutMs: 200 });
      try {
        assert.equal(await ok.runCount(fake.entity, fake.project), 3);
        for (let i = 0; i < 5; i++)
          assert.ok(await ok.getRun(fake.entity, fake.project, (await truthRuns(fake))[0]!.name as string));
      } finally {
        await ok.close();
      }
      fake.setFaults({ failRate: 1, faultKinds: [kind] });
      const bad = await clientFor(fake, { maxAttempts: 3, timeoutMs: 200 });
      try {
        await assert.rejects(bad.runCount(fake.entity, fake.project), (e: unknown) => {
          assert.ok(e instanceof WandbError, String(e));
          assert.ok(expected[kind].includes(e.code), `${kind} gave ${e.code}: ${e.message}`);
          assert.equal(e.attempts, 3);
          assert.equal(e.retried, true);
          assert.equal(e.transient, true);
          assert.match(e.message, /^W&B RunCount \(fake-entity\/fake-project\) failed: .+; gave up after 3 attempts$/);
          assert.ok(!e.message.includes(fake.apiKey));
          return true;
        });
      } finally {
        await bad.close();
        fake.setFaults({ failRate: 0 });
      }
    });
  }

  test("401 (bad key): AUTH, not retried, and the key is nowhere in the message", async () => {
    const badKey = "wrongkey_0123456789abcdefghijklmnopqrstuvwxyz";
    const client = await WandbClient.create({
      apiKey: badKey,
      baseUrl: fake.url,
      env: {},
      cwd: scratch,
      home: scratch,
      retry: FAST,
    });
    try {
      fake.resetStats();
      await assert.rejects(client.viewer(), (e: unknown) => {
        assert.ok(e instanceof WandbError);
        assert.equal(e.code, "AUTH");
        assert.equal(e.status, 401);
        assert.equal(e.attempts, 1);
        assert.equal(e.retried, false);
        assert.ok(!e.message.includes(badKey));
        assert.ok(!e.message.includes(Buffer.from(`api:${badKey}`).toString("base64")));
        assert.ok(!JSON.stringify(e).includes(badKey));
        assert.match(e.message, /WANDB_API_KEY/);
        return true;
      });
      assert.equal((await fakeStats(fake)).byOperation.Viewer, 1);
    } finally {
      await client.close();
    }
  });

  test("400 (invalid filter column): BAD_REQUEST, not retried, no page-size probing", async () => {
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      await assert.rejects(
        async () => {
          for await (const _ of client.listRuns(fake.entity, fake.project, { filters: { "summary.epoch": 9 } })) {
            // nothing
          }
        },
        (e: unknown) => e instanceof WandbError && e.code === "BAD_REQUEST" && e.status === 400 && e.attempts === 1,
      );
      assert.equal((await fakeStats(fake)).byOperation.Runs, 1);
    } finally {
      await client.close();
    }
  });

  test("404 (missing file): NOT_FOUND, not retried", async () => {
    const client = await clientFor(fake);
    try {
      const run = (await truthRuns(fake))[0]!.name as string;
      const file: WandbFile = {
        id: "x",
        name: "nope.txt",
        url: `${fake.url}/files/${fake.entity}/${fake.project}/${run}/nope.txt`,
        directUrl: null,
        sizeBytes: 3,
        mimetype: null,
        updatedAt: null,
        md5: null,
      };
      const dest = join(scratch, "nope.txt");
      await assert.rejects(
        client.downloadFile(file, dest),
        (e: unknown) => e instanceof WandbError && e.code === "NOT_FOUND" && e.attempts === 1,
      );
      assert.equal(client.stats().byOperation.downloadFile, 1);
      await assert.rejects(stat(`${dest}.part`));
    } finally {
      await client.close();
    }
  });
});

describe("files", () => {
  let fake: FakeWandb;
  let sink: string;
  before(async () => {
    fake = await startFakeWandb({ runs: 4, steps: 40, profile: "edge", seed: 9 });
    sink = (await truthRuns(fake)).find((r) => isJsonObject(r.config) && r.config.scenario === "kitchen-sink")!
      .name as string;
  });
  after(() => fake.close());

  async function truthFiles(run: string): Promise<Map<string, { size: number; md5: string }>> {
    const lines = ndjson(await control(fake, `/_fake/truth/files?run=${encodeURIComponent(run)}`));
    return new Map(lines.map((l) => [l.name as string, { size: l.size as number, md5: l.md5 as string }]));
  }

  function localName(f: WandbFile): string {
    return createHash("sha1").update(f.name).digest("hex");
  }

  test("listFiles pages, pattern and names; downloads verify size and md5; no credentials to storage", async () => {
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      const truth = await truthFiles(sink);
      const all: WandbFile[] = [];
      for await (const page of client.listFiles(fake.entity, fake.project, sink, { perPage: 100 })) all.push(...page);
      assert.equal(all.length, truth.size);
      const pngs: WandbFile[] = [];
      for await (const page of client.listFiles(fake.entity, fake.project, sink, { pattern: "%.png" }))
        pngs.push(...page);
      assert.ok(pngs.length > 0 && pngs.every((f) => f.name.endsWith(".png")));
      const named: WandbFile[] = [];
      for await (const page of client.listFiles(fake.entity, fake.project, sink, { names: ["config.yaml"] }))
        named.push(...page);
      assert.deepEqual(
        named.map((f) => f.name),
        ["config.yaml"],
      );

      const dir = mkdtempSync(join(scratch, "files-"));
      const some = all.filter((f) => !f.name.endsWith(".png")).concat(pngs.slice(0, 5));
      await Promise.all(some.map((f) => client.downloadFile(f, join(dir, localName(f)))));
      for (const f of some) {
        const bytes = readFileSync(join(dir, localName(f)));
        assert.equal(bytes.length, truth.get(f.name)!.size, f.name);
        assert.equal(createHash("md5").update(bytes).digest("base64"), truth.get(f.name)!.md5, f.name);
      }
      assert.ok(!(await readdir(dir)).some((n) => n.endsWith(".part")));
      const runFilesBefore = client.stats().byOperation.RunFiles ?? 0;
      const meta = await client.fetchJsonFile(fake.entity, fake.project, sink, "wandb-metadata.json");
      assert.ok(meta && typeof meta === "object");
      assert.equal(await client.fetchJsonFile(fake.entity, fake.project, sink, "missing.json"), null);
      assert.equal(client.stats().byOperation.RunFiles ?? 0, runFilesBefore, "fetched straight from {base}/files/...");
      assert.equal(client.stats().capabilities.directFiles, true);
      const compat = await clientFor(fake, { compat: true });
      try {
        assert.deepEqual(await compat.fetchJsonFile(fake.entity, fake.project, sink, "wandb-metadata.json"), meta);
        assert.equal(compat.stats().byOperation.RunFiles, 1);
      } finally {
        await compat.close();
      }
      // parquet reads too
      await scanAll(client, fake, sink);
      const s = await fakeStats(fake);
      assert.ok((s.byOperation.RunFiles ?? 0) > 0);
      assert.deepEqual(s.authLeaks, [], "Authorization never reached the storage host");
    } finally {
      await client.close();
    }
  });

  test("downloads under faults (truncation, resets, 5xx) resume and still verify", async () => {
    const client = await clientFor(fake, { maxAttempts: 12, downloadTimeoutMs: 1000, timeoutMs: 1000 });
    try {
      fake.setFaults({ failRate: 0.3, faultKinds: ["500", "503", "reset", "truncated", "429"] });
      const truth = await truthFiles(sink);
      const all: WandbFile[] = [];
      for await (const page of client.listFiles(fake.entity, fake.project, sink)) all.push(...page);
      const big = all.find((f) => f.name === "checkpoints/large.bin")!;
      const dir = mkdtempSync(join(scratch, "faulty-"));
      for (const f of [big, ...all.slice(0, 8)]) {
        await client.downloadFile(f, join(dir, localName(f)));
        const bytes = readFileSync(join(dir, localName(f)));
        assert.equal(createHash("md5").update(bytes).digest("base64"), truth.get(f.name)!.md5, f.name);
      }
      assert.deepEqual((await fakeStats(fake)).authLeaks, []);
    } finally {
      fake.setFaults({ failRate: 0 });
      await client.close();
    }
  });

  test("resume continues a partial download with Range; a bad md5 removes the partial file", async () => {
    const client = await clientFor(fake);
    try {
      const all: WandbFile[] = [];
      for await (const page of client.listFiles(fake.entity, fake.project, sink, { names: ["checkpoints/large.bin"] }))
        all.push(...page);
      const big = all[0]!;
      const dir = mkdtempSync(join(scratch, "resume-"));
      const dest = join(dir, "large.bin");
      await client.downloadFile(big, dest);
      const full = readFileSync(dest);
      rmSync(dest);
      writeFileSync(`${dest}.part`, full.subarray(0, 1_000_000));
      const before = client.stats().bytes;
      await client.downloadFile(big, dest, { resume: true });
      assert.ok(readFileSync(dest).equals(full));
      const fetched = client.stats().bytes - before;
      assert.ok(fetched < full.length - 900_000, `resumed download fetched ${fetched} bytes`);

      const wrong = { ...big, md5: "AAAAAAAAAAAAAAAAAAAAAA==" };
      const dest2 = join(dir, "large2.bin");
      await assert.rejects(
        client.downloadFile(wrong, dest2),
        (e: unknown) => e instanceof WandbError && e.code === "PROTOCOL" && /md5 mismatch/.test(e.message),
      );
      await assert.rejects(stat(dest2));
      await assert.rejects(stat(`${dest2}.part`));
    } finally {
      await client.close();
    }
  });
});

describe("capability fallbacks on a server that accepts only the SDK's shapes", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 30, steps: 10, seed: 13, sdkShapesOnly: true });
  });
  after(() => fake.close());

  test("getRuns falls back to one Run per name (once), listRuns halves an oversized page", async () => {
    const cacheFile = join(scratch, "caps.json");
    const client = await clientFor(fake, { capabilityCacheFile: cacheFile });
    try {
      const names = (await truthRuns(fake)).map((r) => r.name as string);
      fake.resetStats();
      const got = await client.getRuns(fake.entity, fake.project, names.slice(0, 10));
      assert.equal([...got.values()].filter(Boolean).length, 10);
      const s1 = await fakeStats(fake);
      assert.equal(s1.byOperation.RunsByName, 1, "an alias rejection is recognised at once");
      assert.equal(s1.byOperation.Run, 10);
      assert.equal(client.stats().capabilities.aliases, false);
      // remembered: no more aliased attempts
      fake.resetStats();
      await client.getRuns(fake.entity, fake.project, names.slice(10, 15));
      assert.deepEqual((await fakeStats(fake)).byOperation, { Run: 5 });

      fake.resetStats();
      let n = 0;
      for await (const page of client.listRuns(fake.entity, fake.project, { perPage: 4000 })) n += page.runs.length;
      assert.equal(n, 30);
      assert.equal(client.stats().capabilities.maxRunsPerPage, 1000);
      assert.deepEqual((await fakeStats(fake)).byOperation, { Runs: 3 }); // 4000 and 2000 rejected, 1000 accepted
      const cached = JSON.parse(readFileSync(cacheFile, "utf8"));
      assert.equal(cached[fake.url].aliases, false);
    } finally {
      await client.close();
    }
  });

  test("compat: true sends only SDK shapes from the start", async () => {
    const client = await clientFor(fake, { compat: true });
    try {
      const names = (await truthRuns(fake)).map((r) => r.name as string);
      fake.resetStats();
      const got = await client.getRuns(fake.entity, fake.project, names.slice(0, 3));
      assert.equal(got.size, 3);
      let n = 0;
      for await (const page of client.listRuns(fake.entity, fake.project)) n += page.runs.length;
      assert.equal(n, 30);
      const s = await fakeStats(fake);
      assert.deepEqual(s.byOperation, { Run: 3, Runs: 1 });
      assert.equal(s.byStatus["400"] ?? 0, 0);
    } finally {
      await client.close();
    }
  });
});

describe("a shared governor keeps parallel clients under the server's rate limit", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 6, steps: 3000, seed: 17, rateLimit: 25, parquetExports: false });
  });
  after(() => fake.close());

  test("three clients scanning in parallel through one governor finish exactly", async () => {
    const governor = new RateGovernor({ initialConcurrency: 8 });
    const clients = await Promise.all([0, 1, 2].map(() => clientFor(fake, { governor, maxAttempts: 20 })));
    try {
      const names = (await truthRuns(fake)).map((r) => r.name as string);
      fake.resetStats();
      await Promise.all(
        names.map(async (name, i) => {
          const rows = await scanAll(clients[i % 3]!, fake, name, { pageSize: 500 });
          assertRowsEqual(rows, await truthHistory(fake, name), name);
        }),
      );
      const s = await fakeStats(fake);
      const total = Object.values(s.byOperation).reduce((a, b) => a + b, 0);
      const limited = s.byStatus["429"] ?? 0;
      assert.ok(governor.stats().rateLimited === limited, "every 429 reached the governor");
      assert.ok(limited < total / 2, `${limited} of ${total} requests were rate limited`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

describe("run files selected inside the Runs pages (filesInRuns)", () => {
  const META = "wandb-metadata.json";

  /** Every run of the listing with its metadata file: read from the listing when it has it, else asked for. */
  async function listWithMetadata(client: WandbClient, fake: FakeWandb, perPage: number) {
    const out = new Map<string, { listed: WandbFile[] | undefined; meta: JsonObject | null }>();
    for await (const page of client.listRuns(fake.entity, fake.project, { perPage, files: [META] })) {
      for (const run of page.runs) {
        const listed = run.files ? (run.files.find((f) => f.name === META) ?? null) : undefined;
        const meta = await client.fetchJsonFile(fake.entity, fake.project, run.name, META, listed);
        assert.equal("files" in run.raw, false, "the files are not part of the run's record");
        out.set(run.name, { listed: run.files, meta });
      }
    }
    return out;
  }

  /** Each run's metadata the SDK's way (RunFiles + its url), the reference. */
  async function sdkMetadata(fake: FakeWandb, names: string[]): Promise<Map<string, JsonObject | null>> {
    const compat = await clientFor(fake, { compat: true });
    try {
      const out = new Map<string, JsonObject | null>();
      for (const n of names) out.set(n, await compat.fetchJsonFile(fake.entity, fake.project, n, META));
      return out;
    } finally {
      await compat.close();
    }
  }

  test("a server that accepts them: no per-run API request, the signed URL read without credentials", async () => {
    const fake = await startFakeWandb({ runs: 12, steps: 5, seed: 31 });
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      const got = await listWithMetadata(client, fake, 5);
      const s = (await fakeStats(fake)) as Awaited<ReturnType<typeof fakeStats>> & { storage: number; files: number };
      assert.equal(got.size, 12);
      assert.deepEqual(s.byOperation, { Runs: 3 }, "three pages, no RunFiles, no RunCount");
      assert.equal(s.files, 0, "no {base}/files/... request");
      assert.equal(s.storage, 12, "one storage GET per run");
      assert.deepEqual(s.authLeaks, []);
      assert.equal(client.stats().capabilities.filesInRuns, true);
      const want = await sdkMetadata(fake, [...got.keys()]);
      for (const [name, { listed, meta }] of got) {
        assert.equal(listed?.length, 1, name);
        assert.ok(listed?.[0]?.directUrl?.startsWith(fake.storageUrl), "a signed storage URL");
        assert.ok(meta !== null, name);
        assert.ok(jsonEquals(meta, want.get(name) ?? null), `${name}: the same metadata as the SDK's way`);
      }
      // a run without the file: known from the listing, no request at all
      fake.resetStats();
      assert.equal(await client.fetchJsonFile(fake.entity, fake.project, "any", META, null), null);
      assert.equal((await fakeStats(fake)).byOperation.RunFiles ?? 0, 0);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("an SDK-shapes-only server: the files shape is given up once, metadata the SDK's way, same values", async () => {
    const fake = await startFakeWandb({ runs: 12, steps: 5, seed: 31, sdkShapesOnly: true });
    const client = await clientFor(fake);
    try {
      fake.resetStats();
      const got = await listWithMetadata(client, fake, 5);
      assert.equal(got.size, 12);
      assert.equal(client.stats().capabilities.filesInRuns, false);
      assert.equal(client.stats().capabilities.maxRunsPerPage, undefined, "the page size was not blamed");
      const s1 = await fakeStats(fake);
      // the first page twice (with files: rejected; without), then two pages in the SDK's shape
      assert.equal(s1.byOperation.Runs, 4);
      assert.equal(s1.byOperation.RunFiles ?? 0, 0, "the {base}/files/... URL still saves RunFiles");
      const want = await sdkMetadata(fake, [...got.keys()]);
      for (const [name, { listed, meta }] of got) {
        assert.equal(listed, undefined, name);
        assert.ok(jsonEquals(meta, want.get(name) ?? null), name);
      }
      // remembered: the next listing never sends the files shape
      fake.resetStats();
      await listWithMetadata(client, fake, 5);
      assert.equal((await fakeStats(fake)).byOperation.Runs, 3);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test("compat sends only the SDK's Runs shape", async () => {
    const fake = await startFakeWandb({ runs: 6, steps: 5, seed: 32, sdkShapesOnly: true });
    const client = await clientFor(fake, { compat: true });
    try {
      fake.resetStats();
      const got = await listWithMetadata(client, fake, 50);
      assert.equal(got.size, 6);
      const s = await fakeStats(fake);
      assert.equal(s.byOperation.Runs, 1, "no rejected attempt");
      assert.equal(s.byOperation.RunFiles, 6, "the SDK's RunFiles per run");
      assert.equal(client.stats().capabilities.filesInRuns, undefined);
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

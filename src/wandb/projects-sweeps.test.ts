/**
 * Listing an entity's projects and reading sweeps, against fake-wandb over HTTP (and a small scripted server for a
 * listing of several pages); the per-sync SweepCache; sweep_info built from a sweep, and its fallback.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../archive/open.js";
import { parseStrictJson } from "../model/json.js";
import { syncProject } from "../sync/pipeline.js";
import { sweepInfoFor } from "../sync/run-record.js";
import { SweepCache } from "../sync/sweeps.js";
import { WandbClient } from "./client.js";
import { NotFoundError, WandbError } from "./errors.js";
import type { WandbApi, WandbProject, WandbRun, WandbSweep } from "./types.js";

async function all<T>(pages: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const p of pages) out.push(...p);
  return out;
}

function clientFor(url: string, apiKey: string): Promise<WandbClient> {
  return WandbClient.create({
    apiKey,
    baseUrl: url,
    env: {},
    cwd: tmpdir(),
    home: tmpdir(),
    maxAttempts: 2,
    retry: { minDelayMs: 1, maxDelayMs: 5, maxServerWaitMs: 5 },
  });
}

describe("listProjects and getSweep against fake-wandb", () => {
  let fake: FakeWandb;
  let client: WandbClient;
  before(async () => {
    fake = await startFakeWandb({ profile: "edge", seed: 3, runs: 20, steps: 20 });
    client = await clientFor(fake.url, fake.apiKey);
  });
  after(async () => {
    await client?.close();
    await fake?.close();
  });

  it("lists the entity's project with the SDK's Projects document", async () => {
    fake.resetStats();
    const projects = await all(client.listProjects(fake.entity));
    assert.deepEqual(
      projects.map((p) => ({ name: p.name, entity: p.entity })),
      [{ name: fake.project, entity: fake.entity }],
    );
    assert.ok(projects[0]!.storageId !== "");
    assert.equal(fake.stats().byOperation.Projects, 1);
  });

  it("lists nothing for an entity W&B does not know", async () => {
    assert.deepEqual(await all(client.listProjects("no-such-entity")), []);
  });

  it("several sweeps asked for at once share one aliased GetSweeps request; a strict server gets one GetSweep each", async () => {
    const names = [...new Set(fake.store.runs().flatMap((r) => (r.sweepName ? [r.sweepName] : [])))];
    assert.ok(names.length >= 2, "the edge profile has several sweeps");
    fake.resetStats();
    const batched = await Promise.all(
      [...names, "no-such-sweep"].map((n) => client.getSweep(fake.entity, fake.project, n)),
    );
    assert.deepEqual(fake.stats().byOperation, { GetSweeps: 1 });
    assert.equal(batched.at(-1), null, "an unknown sweep is null, the others are read");
    const strict = await startFakeWandb({ profile: "edge", seed: 3, runs: 20, steps: 20, sdkShapesOnly: true });
    const strictClient = await clientFor(strict.url, strict.apiKey);
    try {
      strict.resetStats();
      const alone = await Promise.all(names.map((n) => strictClient.getSweep(strict.entity, strict.project, n)));
      assert.deepEqual(alone, batched.slice(0, -1), "the same sweeps either way");
      assert.deepEqual(strict.stats().byOperation, { GetSweeps: 1, GetSweep: names.length });
      assert.equal(strictClient.stats().capabilities.sweepBatches, false);
      assert.notEqual(strictClient.stats().capabilities.aliases, false, "run aliases are a separate question");
    } finally {
      await strictClient.close();
      await strict.close();
    }
  });

  it("reads a sweep's fields, config parsed from its JSON string", async () => {
    const runs = fake.store.runs().filter((r) => r.sweepName);
    assert.ok(runs.length > 0, "the edge profile has sweep runs");
    const name = runs[0]!.sweepName!;
    const sweep = await client.getSweep(fake.entity, fake.project, name);
    assert.ok(sweep);
    assert.equal(sweep.name, name);
    assert.equal(sweep.method, "random");
    assert.match(sweep.state ?? "", /^(RUNNING|FINISHED)$/);
    assert.deepEqual(sweep.config, {
      method: "random",
      metric: { goal: "minimize", name: "loss" },
      name,
      parameters: {},
    });
    assert.equal(sweep.runCount, runs.filter((r) => r.sweepName === name).length);
    assert.equal(sweep.runCountExpected, null);
    assert.equal(typeof sweep.createdAt, "string");
  });

  it("gives null for an unknown sweep and NotFoundError for an unknown project", async () => {
    assert.equal(await client.getSweep(fake.entity, fake.project, "nosuchsweep"), null);
    await assert.rejects(client.getSweep(fake.entity, "no-such-project", "x"), NotFoundError);
  });

  it("syncs runs whose sweep cannot be read: one warning per sweep, fallback sweep_info, the run still written", async () => {
    const failing: WandbApi = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === "getSweep") {
          return async () => {
            throw new WandbError({ code: "SERVER", operation: "GetSweep", reason: "HTTP 500", attempts: 8 });
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const dir = await mkdtemp(join(tmpdir(), "drw-sweeps-"));
    const archive = await openArchive({ outputDir: dir });
    try {
      const r = await syncProject(failing, archive, { entity: fake.entity, project: fake.project, withHistory: false });
      const sweepNames = new Set(fake.store.runs().flatMap((x) => (x.sweepName ? [x.sweepName] : [])));
      const sweepWarnings = r.warnings.filter((w) => w.startsWith("sweep "));
      assert.equal(sweepWarnings.length, sweepNames.size, sweepWarnings.join("\n"));
      assert.ok(sweepWarnings.every((w) => /could not be read .*HTTP 500/.test(w)));
      assert.ok(!sweepWarnings.some((w) => w.includes(fake.apiKey)));
      assert.equal(r.runsWritten, fake.store.runs().length);
      const rows = await archive.query("SELECT run_id, sweep_info FROM runs");
      for (const [runId, info] of rows.rows) {
        const run = fake.store.run(runId as string)!;
        const parsed = typeof info === "string" ? parseStrictJson(info) : info;
        if (!run.sweepName) assert.deepEqual(parsed, {});
        else assert.deepEqual(Object.keys(parsed as object).sort(), ["sweep_id", "sweep_name", "sweep_url"]);
      }
    } finally {
      await archive.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("listProjects over several pages (scripted server)", () => {
  let server: Server;
  let base: string;
  const cursors: (string | null)[] = [];
  const names = Array.from({ length: 120 }, (_, i) => `p${String(i).padStart(3, "0")}`);
  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        const { operationName, variables } = JSON.parse(body) as {
          operationName: string;
          variables: { entity: string; cursor: string | null; perPage: number };
        };
        assert.equal(operationName, "Projects");
        cursors.push(variables.cursor);
        const start = variables.cursor === null ? 0 : Number(variables.cursor) + 1;
        const slice = names.slice(start, start + variables.perPage);
        const reply = {
          data: {
            models: {
              edges: slice.map((name, i) => ({
                node: { id: `id-${name}`, name, entityName: variables.entity, createdAt: null, isBenchmark: false },
                cursor: String(start + i),
              })),
              pageInfo: {
                endCursor: String(start + slice.length - 1),
                hasNextPage: start + slice.length < names.length,
              },
            },
          },
        };
        const text = JSON.stringify(reply);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  it("follows the last edge's cursor through every page", async () => {
    const client = await clientFor(base, "stub-key-0123456789abcdefghijklmnopqrstuvwxyz");
    try {
      const pages: WandbProject[][] = [];
      for await (const p of client.listProjects("team")) pages.push(p);
      assert.deepEqual(
        pages.map((p) => p.length),
        [50, 50, 20],
      );
      assert.deepEqual(
        pages.flat().map((p) => p.name),
        names,
      );
      assert.ok(pages.flat().every((p) => p.entity === "team"));
      assert.deepEqual(cursors, [null, "49", "99"]);
    } finally {
      await client.close();
    }
  });
});

describe("SweepCache", () => {
  const sweep = (name: string): WandbSweep => ({
    name,
    storageId: "",
    displayName: null,
    method: "grid",
    state: "FINISHED",
    description: null,
    bestLoss: 0.5,
    config: {},
    createdAt: null,
    updatedAt: null,
    runCount: 2,
    runCountExpected: 4,
    raw: {},
  });

  it("asks once per distinct sweep, also for concurrent requests", async () => {
    const asked: string[] = [];
    const cache = new SweepCache({
      getSweep: async (e, p, s) => {
        asked.push(`${e}/${p}/${s}`);
        await new Promise((r) => setTimeout(r, 10));
        return sweep(s);
      },
    });
    const got = await Promise.all([
      cache.get("e", "p", "a"),
      cache.get("e", "p", "a"),
      cache.get("e", "p", "b"),
      cache.get("e", "q", "a"),
    ]);
    assert.deepEqual(
      got.map((s) => s?.name),
      ["a", "a", "b", "a"],
    );
    assert.equal(got[0], got[1]);
    await cache.get("e", "p", "a");
    assert.deepEqual(asked, ["e/p/a", "e/p/b", "e/q/a"]);
    assert.equal(cache.size, 3);
    assert.deepEqual(cache.warnings, []);
  });

  it("turns null and W&B errors into null with one warning per sweep; rethrows bugs", async () => {
    const warned: string[] = [];
    const cache = new SweepCache(
      {
        getSweep: async (_e, _p, s) => {
          if (s === "gone") return null;
          if (s === "bug") throw new TypeError("a bug");
          throw new WandbError({ code: "TIMEOUT", operation: "GetSweep", reason: "timed out", attempts: 8 });
        },
      },
      (m) => warned.push(m),
    );
    assert.equal(await cache.get("e", "p", "gone"), null);
    assert.equal(await cache.get("e", "p", "gone"), null);
    assert.equal(await cache.get("e", "p", "slow"), null);
    await assert.rejects(cache.get("e", "p", "bug"), TypeError);
    assert.equal(warned.length, 2);
    assert.match(warned[0]!, /^sweep e\/p\/gone not found on W&B/);
    assert.match(warned[1]!, /^sweep e\/p\/slow could not be read \(.*timed out.*gave up after 8 attempts/);
    assert.deepEqual(cache.warnings, warned);
  });
});

describe("sweepInfoFor", () => {
  const run = { entity: "my team", project: "proj", sweepName: "ab12cd34" } as WandbRun;

  it("is {} without a sweep, the fallback fields when the sweep was not read", () => {
    assert.deepEqual(sweepInfoFor({ ...run, sweepName: null }, "https://api.wandb.ai"), {});
    const fallback = {
      sweep_id: "ab12cd34",
      sweep_name: "ab12cd34",
      sweep_url: "https://wandb.ai/my%20team/proj/sweeps/ab12cd34",
    };
    assert.deepEqual(sweepInfoFor(run, "https://api.wandb.ai"), fallback);
    assert.deepEqual(sweepInfoFor(run, "https://api.wandb.ai", null), fallback);
  });

  it("holds the sweep's fields; sweep_name as the SDK names it; YAML config kept as text", () => {
    const s: WandbSweep = {
      name: "ab12cd34",
      storageId: "U3dlZXA6YWI=",
      displayName: null,
      method: "bayes",
      state: "RUNNING",
      description: "lr search",
      bestLoss: 0.125,
      config: "method: bayes\nname: lr-search\n",
      createdAt: "2025-01-02T03:04:05",
      updatedAt: "2025-01-03T00:00:00Z",
      runCount: 3,
      runCountExpected: null,
      raw: {},
    };
    assert.deepEqual(sweepInfoFor(run, "https://wandb.example.com", s), {
      sweep_id: "ab12cd34",
      sweep_name: "ab12cd34",
      display_name: null,
      method: "bayes",
      state: "RUNNING",
      description: "lr search",
      best_loss: 0.125,
      config: "method: bayes\nname: lr-search\n",
      run_count: 3,
      run_count_expected: null,
      created_at: "2025-01-02T03:04:05.000Z",
      updated_at: "2025-01-03T00:00:00.000Z",
      sweep_url: "https://wandb.example.com/my%20team/proj/sweeps/ab12cd34",
    });
    assert.equal(
      sweepInfoFor(run, "https://api.wandb.ai", { ...s, config: { name: "lr-search" } }).sweep_name,
      "lr-search",
    );
    assert.equal(
      sweepInfoFor(run, "https://api.wandb.ai", { ...s, displayName: "My sweep", config: { name: "x" } }).sweep_name,
      "My sweep",
    );
  });
});

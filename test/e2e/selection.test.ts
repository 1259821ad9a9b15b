/**
 * Issue #8, selecting runs and history end to end, on `dr-wandb sync` and on `wandb-download`: --state, --tags,
 * --created-after/--created-before, --max-runs, --filters pick exactly the runs the truth says; --history-keys,
 * --min-step/--max-step and --samples shape the stored history; the selection is recorded, so a second sync with the
 * same options reads no history and one with other --history-keys replaces it; a filtered sync marks nothing deleted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/open.js";
import { type JsonObject, parseStrictJson } from "../../src/model/json.js";
import { HISTORY_FIXED_COLUMNS, toHistoryRecord } from "../../src/model/records.js";
import { duckObjects, fakeStats, firstDiff, mutate, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";

const HISTORY_OPS = ["HistoryPage", "RunParquetHistory", "SampledHistoryPage", "RunFullHistory", "RunSampledHistory"];

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;
let truth: JsonObject[];
/** Each run's truth history: step -> metrics. */
const truthSteps = new Map<string, Map<number, JsonObject>>();

before(async () => {
  fake = await startFakeWandb({ runs: 12, steps: 120, metrics: 4, seed: 9, runningFraction: 0.25 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
  truth = await truthRuns(fake.url);
  for (const t of truth) {
    const name = t.name as string;
    const rows = (await truthHistory(fake.url, name)).map((r) => toHistoryRecord(name, r)!);
    truthSteps.set(name, new Map(rows.map((r) => [r.step, r.metrics])));
  }
});
after(async () => {
  await fake?.close();
});

const names = (runs: JsonObject[]) => runs.map((r) => r.name as string).sort();

function sync(dir: string, ...extra: string[]) {
  return runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir, "-q", ...extra], { env });
}

function download(dir: string, ...extra: string[]) {
  return runCli([fake.entity, fake.project, join(dir, "out"), "-q", ...extra], { env, bin: "wandb-download" });
}

async function query(dir: string, sql: string): Promise<Record<string, unknown>[]> {
  const archive = await openArchive({ outputDir: dir, readOnly: true });
  try {
    const r = await archive.query(sql);
    return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]])));
  } finally {
    await archive.close();
  }
}

async function archivedRuns(dir: string): Promise<string[]> {
  return (await query(dir, "SELECT run_id FROM runs")).map((r) => r.run_id as string).sort();
}

async function downloadedRuns(dir: string): Promise<string[]> {
  const file = join(dir, "out", `${fake.entity}_${fake.project}_runs.parquet`);
  return (await duckObjects(`SELECT run_id FROM read_parquet('${file}')`)).map((r) => r.run_id as string).sort();
}

/** The archive's history as run -> step -> metrics. */
async function archivedHistory(dir: string): Promise<Map<string, Map<number, JsonObject>>> {
  const out = new Map<string, Map<number, JsonObject>>();
  for (const r of await query(dir, "SELECT run_id, step, metrics FROM history ORDER BY run_id, step")) {
    const m = out.get(r.run_id as string) ?? new Map<number, JsonObject>();
    m.set(Number(r.step), (typeof r.metrics === "string" ? parseStrictJson(r.metrics) : r.metrics) as JsonObject);
    out.set(r.run_id as string, m);
  }
  return out;
}

/** wandb-download's history as run -> step -> metrics (the non-null metric columns of each row). */
async function downloadedHistory(dir: string): Promise<Map<string, Map<number, JsonObject>>> {
  const file = join(dir, "out", `${fake.entity}_${fake.project}_histories.parquet`);
  const out = new Map<string, Map<number, JsonObject>>();
  for (const row of await duckObjects(`SELECT * FROM read_parquet('${file}')`)) {
    const metrics: JsonObject = {};
    for (const [k, v] of Object.entries(row)) {
      if (!(HISTORY_FIXED_COLUMNS as readonly string[]).includes(k) && v !== null) metrics[k] = v as never;
    }
    const m = out.get(row.run_id as string) ?? new Map<number, JsonObject>();
    m.set(Number(row.step), metrics);
    out.set(row.run_id as string, m);
  }
  return out;
}

/** Every stored row equals the truth at its step, projected to `keys` (all keys when undefined). */
function assertRowsMatchTruth(label: string, got: Map<string, Map<number, JsonObject>>, keys?: string[]): void {
  for (const [run, steps] of got) {
    const want = truthSteps.get(run);
    assert.ok(want, `${label}: unknown run ${run}`);
    for (const [step, metrics] of steps) {
      const w = want.get(step);
      assert.ok(w, `${label}: ${run} has step ${step}, which the truth has not`);
      const expected = keys ? Object.fromEntries(keys.filter((k) => k in w).map((k) => [k, w[k]!])) : w;
      const d = firstDiff(metrics, expected);
      assert.equal(d, null, `${label}: ${run} step ${step}: ${d}`);
    }
  }
}

async function resetStats(): Promise<void> {
  await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
}

async function historyRequests(): Promise<Record<string, number>> {
  const { byOperation } = await fakeStats(fake.url);
  return Object.fromEntries(HISTORY_OPS.map((op) => [op, byOperation[op] ?? 0]));
}

function noHistoryRequests(counts: Record<string, number>): boolean {
  return Object.values(counts).every((n) => n === 0);
}

/** A second sync with the same selection rewrites only running runs (checked on every sync), not the others. */
function assertOnlyRunningRewritten(stdout: string): void {
  const p = JSON.parse(stdout.trim().split("\n").pop()!).projects[0];
  const running = truth.filter((t) => t.state === "running").length;
  assert.ok(running < truth.length);
  assert.equal(p.runsWritten, running, `runs rewritten by a second sync with the same selection: ${JSON.stringify(p)}`);
}

async function selections(dir: string): Promise<Set<string>> {
  return new Set((await query(dir, "SELECT selection FROM sync_state")).map((r) => r.selection as string));
}

describe("run selection picks the runs the truth says, on sync and on wandb-download", () => {
  const cases: { name: string; args: () => string[]; expect: () => JsonObject[] }[] = [
    {
      name: "--state finished",
      args: () => ["--state", "finished"],
      expect: () => truth.filter((t) => t.state === "finished"),
    },
    {
      name: "--tags",
      args: () => ["--tags", someTag()],
      expect: () => truth.filter((t) => (t.tags as string[]).includes(someTag())),
    },
    {
      name: "--created-after/--created-before",
      // W&B sends createdAt without a zone, meaning UTC; after is inclusive, before exclusive.
      args: () => ["--created-after", `${truth[3]!.createdAt}Z`, "--created-before", `${truth[8]!.createdAt}Z`],
      expect: () => truth.slice(3, 8),
    },
    {
      name: "--max-runs 3 (the oldest)",
      args: () => ["--max-runs", "3"],
      expect: () => [...truth].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt))).slice(0, 3),
    },
    {
      name: "--filters on config.lr.value",
      args: () => ["--filters", JSON.stringify({ "config.lr.value": { $gt: medianLr() } })],
      expect: () => truth.filter((t) => lr(t) > medianLr()),
    },
  ];
  /** A tag some runs carry and others do not. */
  const someTag = () => {
    const counts = new Map<string, number>();
    for (const t of truth) for (const tag of t.tags as string[]) counts.set(tag, (counts.get(tag) ?? 0) + 1);
    return [...counts].filter(([, n]) => n < truth.length).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  };
  const lr = (t: JsonObject) => (t.config as { lr: number }).lr;
  const medianLr = () => {
    const xs = truth.map(lr).sort((a, b) => a - b);
    return (xs[5]! + xs[6]!) / 2;
  };

  for (const c of cases) {
    it(c.name, async () => {
      const want = names(c.expect());
      assert.ok(want.length > 0 && want.length < truth.length, `${c.name} must select some runs, not all: ${want}`);
      await using dir = await tempDir();
      const s = await sync(dir.path, "--runs-only", "--no-export", ...c.args());
      assert.equal(s.code, 0, s.stderr);
      assert.deepEqual(await archivedRuns(dir.path), want, `sync ${c.name}`);
      const d = await download(dir.path, "--runs-only", "--no-metadata", ...c.args());
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(await downloadedRuns(dir.path), want, `wandb-download ${c.name}`);
    });
  }
});

describe("history selection shapes the stored history and is recorded for incremental syncs", () => {
  it("--history-keys: only those keys, every row having them; a second sync reads nothing; other keys replace it", async () => {
    await using dir = await tempDir();
    const keys = ["loss", "acc"];
    assert.equal((await sync(dir.path, "--history-keys", keys.join(","))).code, 0);
    const got = await archivedHistory(dir.path);
    assert.deepEqual([...got.keys()].sort(), names(truth));
    for (const [run, steps] of got) {
      // The fake logs every key at every step: every row has both keys.
      assert.equal(steps.size, truthSteps.get(run)!.size, `${run}: rows`);
      for (const m of steps.values()) assert.deepEqual(Object.keys(m).sort(), [...keys].sort());
    }
    assertRowsMatchTruth("sync --history-keys", got, keys);
    const before = await selections(dir.path);
    assert.equal(before.size, 1);

    await resetStats();
    const again = await sync(dir.path, "--history-keys", keys.join(","), "--json");
    assert.equal(again.code, 0, again.stderr);
    const counts = await historyRequests();
    assert.ok(noHistoryRequests(counts), `same selection, no history read: ${JSON.stringify(counts)}`);
    assertOnlyRunningRewritten(again.stdout);

    const other = await sync(dir.path, "--history-keys", "loss");
    assert.equal(other.code, 0, other.stderr);
    const replaced = await archivedHistory(dir.path);
    for (const [run, steps] of replaced) {
      assert.equal(steps.size, truthSteps.get(run)!.size, `${run}: rows after the new selection`);
      for (const m of steps.values())
        assert.deepEqual(Object.keys(m), ["loss"], `${run}: keys after the new selection`);
    }
    assertRowsMatchTruth("sync --history-keys loss", replaced, ["loss"]);
    const after = await selections(dir.path);
    assert.equal(after.size, 1);
    assert.notDeepEqual([...after], [...before], "sync_state.selection records the new keys");

    const d = await download(dir.path, "--history-keys", keys.join(","));
    assert.equal(d.code, 0, d.stderr);
    const dl = await downloadedHistory(dir.path);
    assert.deepEqual([...dl.keys()].sort(), names(truth));
    for (const [run, steps] of dl) {
      assert.equal(steps.size, truthSteps.get(run)!.size, `download ${run}: rows`);
      for (const m of steps.values()) assert.deepEqual(Object.keys(m).sort(), [...keys].sort());
    }
    assertRowsMatchTruth("wandb-download --history-keys", dl, keys);
  });

  it("--history-keys with a key the last rows lack: the window still counts as read, a second sync reads nothing", async () => {
    await using dir = await tempDir();
    // W&B returns only rows having every key: a metric logged every N steps (here: never) leaves the last steps
    // without rows, which must not look like history still to read.
    const args = ["--history-keys", "loss,never_logged"];
    assert.equal((await sync(dir.path, ...args)).code, 0);
    assert.equal((await archivedHistory(dir.path)).size, 0, "no row has both keys");
    await resetStats();
    const again = await sync(dir.path, ...args, "--json");
    assert.equal(again.code, 0, again.stderr);
    const counts = await historyRequests();
    assert.ok(noHistoryRequests(counts), `same selection, no history read: ${JSON.stringify(counts)}`);
    assertOnlyRunningRewritten(again.stdout);
  });

  it("--min-step/--max-step: exactly the steps in [min, max); a second sync reads nothing", async () => {
    await using dir = await tempDir();
    const [min, max] = [20, 50];
    const args = ["--min-step", String(min), "--max-step", String(max)];
    assert.equal((await sync(dir.path, ...args)).code, 0);
    const check = (label: string, got: Map<string, Map<number, JsonObject>>) => {
      assert.deepEqual([...got.keys()].sort(), names(truth), `${label}: runs with history`);
      for (const [run, steps] of got) {
        const want = [...truthSteps.get(run)!.keys()].filter((s) => s >= min && s < max);
        assert.deepEqual(
          [...steps.keys()].sort((a, b) => a - b),
          want,
          `${label}: ${run} steps`,
        );
      }
      assertRowsMatchTruth(label, got);
    };
    check("sync", await archivedHistory(dir.path));

    await resetStats();
    const again = await sync(dir.path, ...args, "--json");
    assert.equal(again.code, 0, again.stderr);
    const counts = await historyRequests();
    assert.ok(noHistoryRequests(counts), `same selection, no history read: ${JSON.stringify(counts)}`);
    assertOnlyRunningRewritten(again.stdout);
    check("second sync", await archivedHistory(dir.path));

    const d = await download(dir.path, ...args);
    assert.equal(d.code, 0, d.stderr);
    check("wandb-download", await downloadedHistory(dir.path));
  });

  it("--samples 20: about 20 rows of each run, each equal to the truth; a second sync reads nothing", async () => {
    await using dir = await tempDir();
    const check = (label: string, got: Map<string, Map<number, JsonObject>>) => {
      assert.deepEqual([...got.keys()].sort(), names(truth), `${label}: runs with history`);
      for (const [run, steps] of got) {
        // W&B samples at random (the fake too: each row kept with probability 20/120).
        assert.ok(steps.size >= 5 && steps.size <= 40, `${label}: ${run} has ${steps.size} rows, about 20 expected`);
      }
      assertRowsMatchTruth(label, got);
    };
    assert.equal((await sync(dir.path, "--samples", "20")).code, 0);
    const first = await archivedHistory(dir.path);
    check("sync", first);

    await resetStats();
    const again = await sync(dir.path, "--samples", "20", "--json");
    assert.equal(again.code, 0, again.stderr);
    const counts = await historyRequests();
    assert.ok(noHistoryRequests(counts), `same selection, no history read: ${JSON.stringify(counts)}`);
    assertOnlyRunningRewritten(again.stdout);
    const second = await archivedHistory(dir.path);
    check("second sync", second);
    for (const [run, steps] of first) {
      assert.deepEqual([...second.get(run)!.keys()], [...steps.keys()], `${run}: the stored sample is kept`);
    }

    const d = await download(dir.path, "--samples", "20");
    assert.equal(d.code, 0, d.stderr);
    check("wandb-download", await downloadedHistory(dir.path));
  });
});

describe("deletion detection with a filter", () => {
  let small: FakeWandb;
  before(async () => {
    small = await startFakeWandb({ runs: 8, steps: 10, metrics: 2, seed: 9, runningFraction: 0.25 });
  });
  after(async () => {
    await small?.close();
  });

  it("a filtered sync marks no run deleted (runs outside the filter are not gone); an unfiltered one does", async () => {
    await using dir = await tempDir();
    const smallEnv = { WANDB_BASE_URL: small.url, WANDB_API_KEY: small.apiKey };
    const run = (...extra: string[]) =>
      runCli(["sync", `${small.entity}/${small.project}`, "--output-dir", dir.path, "-q", "--runs-only", ...extra], {
        env: smallEnv,
      });
    const all = await truthRuns(small.url);
    const finished = all.filter((t) => t.state === "finished");
    assert.ok(finished.length >= 2 && finished.length < all.length, "the scenario needs finished and other runs");
    assert.equal((await run()).code, 0);
    const deleted = async () =>
      (await query(dir.path, "SELECT run_id FROM runs WHERE deleted")).map((r) => r.run_id as string).sort();

    for (const filter of [
      ["--state", "finished"],
      ["--max-runs", "2"],
      ["--filters", '{"state": "finished"}'],
    ]) {
      const r = await run(...filter);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await deleted(), [], `after a sync with ${filter.join(" ")}`);
    }
    // A run really deleted on W&B is not marked by a filtered sync either (absence proves nothing)...
    const gone = finished[0]!.name as string;
    await mutate(small.url, { op: "deleteRun", run: gone });
    assert.equal((await run("--state", "finished")).code, 0);
    assert.deepEqual(await deleted(), []);
    // ...but by the next unfiltered one.
    assert.equal((await run()).code, 0);
    assert.deepEqual(await deleted(), [gone]);
    assert.equal((await archivedRuns(dir.path)).length, all.length, "deleted runs are kept");
  });
});

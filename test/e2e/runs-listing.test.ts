/**
 * Issue #6 (S1), listing runs with their metadata end to end: `dr-wandb sync --runs-only` and `wandb-download
 * --runs-only` read each run's wandb-metadata.json from the signed URL the Runs page selected (no RunCount, no
 * RunFiles, no {base}/files/... request per run; checked with /_fake/stats), and with --compat or on a server that
 * accepts only the SDK's shapes they fall back to the SDK's requests. Every value still equals the fake's truth.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/open.js";
import { type JsonObject, parseStrictJson, parseWandbJson } from "../../src/model/json.js";
import { fakeStats, firstDiff, runCli, tempDir, truthRuns } from "../helpers.js";

const RUNS = 23;

interface Stats {
  byOperation: Record<string, number>;
  files: number;
  storage: number;
  authLeaks: unknown[];
}

async function stats(fake: FakeWandb): Promise<Stats> {
  return (await fakeStats(fake.url)) as unknown as Stats;
}

/** Each run's wandb-metadata.json as the fake serves it ({} when the run has none). */
async function truthMetadata(fake: FakeWandb): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  const auth = `Basic ${Buffer.from(`api:${fake.apiKey}`).toString("base64")}`;
  for (const run of await truthRuns(fake.url)) {
    const name = run.name as string;
    const res = await fetch(`${fake.url}/files/${fake.entity}/${fake.project}/${name}/wandb-metadata.json`, {
      headers: { authorization: auth },
    });
    out.set(name, res.status === 404 ? {} : (parseWandbJson(await res.text()) as JsonObject));
  }
  return out;
}

function jsonCell(v: unknown): unknown {
  return typeof v === "string" ? parseStrictJson(v) : v;
}

async function downloadedMetadata(dir: string, fake: FakeWandb): Promise<Map<string, unknown>> {
  const text = await readFile(join(dir, `${fake.entity}_${fake.project}_runs.jsonl`), "utf8");
  const rows = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { run_id: string; wandb_metadata: unknown });
  return new Map(rows.map((r) => [r.run_id, r.wandb_metadata]));
}

function assertMetadata(got: Map<string, unknown>, want: Map<string, JsonObject>, count = want.size): void {
  assert.equal(got.size, count);
  for (const [run, meta] of got) {
    assert.ok(want.has(run), run);
    assert.equal(firstDiff(jsonCell(meta), want.get(run)), null, `${run}: wandb_metadata`);
  }
}

describe("runs-only listing with each run's metadata file", () => {
  let fake: FakeWandb;
  let strict: FakeWandb;
  let want: Map<string, JsonObject>;
  before(async () => {
    fake = await startFakeWandb({ runs: RUNS, steps: 5, seed: 41 });
    strict = await startFakeWandb({ runs: RUNS, steps: 5, seed: 41, sdkShapesOnly: true });
    want = await truthMetadata(fake);
  });
  after(async () => {
    await fake.close();
    await strict.close();
  });
  const envOf = (f: FakeWandb) => ({ WANDB_BASE_URL: f.url, WANDB_API_KEY: f.apiKey });

  it("sync --runs-only: one Runs page, one storage GET per run, nothing else", async () => {
    await using dir = await tempDir();
    fake.resetStats();
    const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "--runs-only", "-q"], {
      env: envOf(fake),
    });
    assert.equal(r.code, 0, r.stderr);
    const s = await stats(fake);
    const { GetSweep = 0, GetSweeps = 0, ...rest } = s.byOperation;
    assert.deepEqual(rest, { Runs: 1 }, "no RunCount, no RunFiles");
    assert.ok(GetSweep + GetSweeps <= 3, "at most one request per sweep");
    assert.equal(s.files, 0, "no {base}/files/... request");
    assert.equal(s.storage, RUNS);
    assert.deepEqual(s.authLeaks, []);
    const archive = await openArchive({ outputDir: dir.path, readOnly: true });
    try {
      const rows = await archive.query("SELECT run_id, wandb_metadata FROM runs");
      assertMetadata(new Map(rows.rows.map((row) => [row[0] as string, row[1]])), want);
    } finally {
      await archive.close();
    }
  });

  it("wandb-download --runs-only --max-runs: the runs asked for, no page past them", async () => {
    await using dir = await tempDir();
    fake.resetStats();
    const r = await runCli(
      [
        fake.entity,
        fake.project,
        dir.path,
        "--runs-only",
        "--format",
        "jsonl",
        "--runs-per-page",
        "5",
        "--max-runs",
        "7",
        "-q",
      ],
      { env: envOf(fake), bin: "wandb-download" },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = await stats(fake);
    assert.equal(s.byOperation.Runs, 2, "two pages of 5 for 7 runs");
    assert.equal(s.byOperation.RunCount ?? 0, 0);
    assert.equal(s.byOperation.RunFiles ?? 0, 0);
    assert.equal(s.files, 0);
    assert.equal(s.storage, 7);
    assertMetadata(await downloadedMetadata(dir.path, fake), want, 7);
  });

  it("--compat: the SDK's requests (RunFiles and its URL per run), the same values", async () => {
    await using dir = await tempDir();
    fake.resetStats();
    const r = await runCli(
      [fake.entity, fake.project, dir.path, "--runs-only", "--format", "jsonl", "--compat", "-q"],
      {
        env: envOf(fake),
        bin: "wandb-download",
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = await stats(fake);
    assert.equal(s.byOperation.RunFiles, RUNS);
    assert.equal(s.byOperation.Runs, 1);
    assertMetadata(await downloadedMetadata(dir.path, fake), want);
  });

  it("a server that accepts only the SDK's shapes: the files shape is given up after one rejection", async () => {
    await using dir = await tempDir();
    strict.resetStats();
    const r = await runCli(
      ["sync", `${strict.entity}/${strict.project}`, "--output-dir", dir.path, "--runs-only", "-q"],
      {
        env: envOf(strict),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = await stats(strict);
    assert.equal(s.byOperation.Runs, 2, "the rejected page, then the SDK's shape");
    assert.equal(s.files, RUNS, "each run's metadata from {base}/files/...");
    const archive = await openArchive({ outputDir: dir.path, readOnly: true });
    try {
      const rows = await archive.query("SELECT run_id, wandb_metadata FROM runs");
      assertMetadata(new Map(rows.rows.map((row) => [row[0] as string, row[1]])), want);
    } finally {
      await archive.close();
    }
  });
});

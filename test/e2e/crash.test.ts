/**
 * Crash consistency: kill -9 at seeded random moments (listing, history, commit, export), then rerun to completion.
 * The archive and its export must equal a clean run's, with no duplicate history rows and no torn files; a killed
 * wandb-download leaves the previous files (or none), never a torn one. `npm run soak` runs 20 kills; this runs 5.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { archiveDigest, duckObjects, runCli, startCli, tempDir } from "../helpers.js";

const SEED = Number(process.env.DR_WANDB_CRASH_SEED ?? 7);
const KILLS = Number(process.env.DR_WANDB_CRASH_KILLS ?? 5);

/** mulberry32: the kill moments are replayable from the seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;
let cleanDigest: string;
let cleanMs: number;

before(async () => {
  // Latency stretches a sync (a few dozen requests now) over a few seconds so that kills land in every phase.
  fake = await startFakeWandb({ seed: SEED, runs: 16, steps: 1500, metrics: 5, latencyMs: 40, runningFraction: 0.2 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
  await using dir = await tempDir();
  const t0 = Date.now();
  const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
  cleanMs = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  cleanDigest = await archiveDigest(undefined, dir.path, fake);
});
after(async () => {
  await fake?.close();
});

/** Every Parquet file in the folder opens whole. */
async function assertWholeParquet(dir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith(".parquet")) continue;
    await duckObjects(`SELECT count(*) FROM read_parquet('${join(dir, name)}')`);
    n++;
  }
  return n;
}

describe("kill -9 and rerun", () => {
  it(`a sync killed at ${KILLS} random moments ends equal to a clean sync`, async () => {
    const next = rng(SEED);
    const moments: number[] = [];
    let interrupted = 0;
    for (let k = 0; k < KILLS; k++) {
      await using dir = await tempDir();
      const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"];
      // spread over the whole run (cleanMs includes process start-up), never past its end
      const at = Math.round(50 + next() * 0.9 * cleanMs);
      moments.push(at);
      const { child, done } = startCli(args, { env });
      const timer = setTimeout(() => child.kill("SIGKILL"), at);
      const killed = await done;
      clearTimeout(timer);
      if (killed.signal === "SIGKILL") interrupted++;
      await assertWholeParquet(dir.path);
      const rerun = await runCli(args, { env });
      assert.equal(
        rerun.code,
        0,
        `after a kill at ${at} ms (${killed.signal ?? `exit ${killed.code}`}): ${rerun.stderr}`,
      );
      assert.equal(await archiveDigest(undefined, dir.path, fake), cleanDigest, `after a kill at ${at} ms`);
      assert.equal(await assertWholeParquet(dir.path), 9);
      const left = (await readdir(dir.path)).filter((n) => n.includes(".tmp"));
      assert.deepEqual(left, [], "temporary files left behind after the rerun");
    }
    assert.equal(moments.length, KILLS);
    assert.ok(
      interrupted >= Math.ceil(KILLS / 2),
      `only ${interrupted} of ${KILLS} kills landed before the sync ended`,
    );
  });

  it("a killed wandb-download leaves the previous files or none, never a torn one", async () => {
    const next = rng(SEED + 1);
    for (const format of ["parquet", "pkl", "jsonl"] as const) {
      await using dir = await tempDir();
      const args = [fake.entity, fake.project, dir.path, "--format", format, "-q"];
      const first = await runCli(args, { env, bin: "wandb-download" });
      assert.equal(first.code, 0, first.stderr);
      const before = new Map<string, string>();
      for (const name of await readdir(dir.path)) before.set(name, fileDigest(join(dir.path, name)));
      const at = Math.round(300 + next() * cleanMs);
      const { child, done } = startCli(args, { env, bin: "wandb-download" });
      const timer = setTimeout(() => child.kill("SIGKILL"), at);
      await done;
      clearTimeout(timer);
      for (const name of await readdir(dir.path)) {
        if (name.startsWith(".")) continue; // a temporary file of the killed run (never a final name)
        const path = join(dir.path, name);
        const prev = before.get(name);
        assert.ok(prev !== undefined, `unexpected file ${name}`);
        // either the previous file or a new complete one: it must open whole
        if (format === "parquet") await duckObjects(`SELECT count(*) FROM read_parquet('${path}')`);
        if (format === "pkl") {
          const p = spawnSync("python3", ["-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", path]);
          assert.equal(p.status, 0, `${name} does not load: ${p.stderr}`);
        }
        if (format === "jsonl") {
          const text = spawnSync("cat", [path], { encoding: "utf8", maxBuffer: 1 << 30 }).stdout;
          for (const line of text.split("\n").filter((l) => l !== "")) JSON.parse(line);
        }
      }
    }
  });
});

function fileDigest(path: string): string {
  return spawnSync("sha256sum", [path], { encoding: "utf8" }).stdout.split(" ")[0]!;
}

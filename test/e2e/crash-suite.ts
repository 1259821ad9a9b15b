/**
 * Crash consistency: kill -9 at chosen moments of a sync (listing, history, commits, export), then rerun to
 * completion. The archive and its export must equal a clean run's, with no duplicate history rows and no torn or
 * temporary files; a killed wandb-download leaves the previous files (or none), never a torn one.
 *
 * The moments are events, not delays: the CLI talks to fake-wandb through a counting proxy (test/gate-proxy.ts);
 * a kill holds a chosen request unanswered and kills the process while it waits, so the kill always lands mid-sync,
 * whatever the machine's load. Only requests every sync of the project makes are chosen: a sync's request count and
 * names vary with batching and prefetch under load (HistoryPages or HistoryPage, RunsParquetHistory or
 * RunParquetHistory, one tail page or two), so the kills are (1) the first request of each family of operations the
 * clean sync made (listing, parquet history, history pages, sweeps: each is made by any sync of this project) and
 * (2) seeded request numbers up to the number of those families, which any sync reaches. The export phase (no
 * requests) is reached by waiting for the first temporary export file to appear in the output folder.
 * Run by crash.test.ts (default tier) and crash.heavy.test.ts (more kills); `npm run soak` runs 20.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { watch } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, type FakeWandbOptions, startFakeWandb } from "../../fake-wandb/index.js";
import { mulberry32 as rng } from "../../fake-wandb/random.js";
import { type GateProxy, startGateProxy } from "../gate-proxy.js";
import { archiveDigest, duckObjects, runCli, startCli, tempDir } from "../helpers.js";

/** The operation families of a sync: one sync asks for one member or the other of a family, depending on batching. */
const FAMILIES: readonly RegExp[] = [/^Runs$/, /^Runs?ParquetHistory$/, /^HistoryPages?$/, /^GetSweeps?$/];

/** The families a sequence of request names touches (in order of first appearance); a name of no family is its own. */
function familiesOf(names: readonly string[]): RegExp[] {
  const found: RegExp[] = [];
  for (const name of names) {
    if (found.some((f) => f.test(name))) continue;
    found.push(FAMILIES.find((f) => f.test(name)) ?? new RegExp(`^${name.replace(/[^\w]/g, "\\$&")}$`));
  }
  return found;
}

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

function fileDigest(path: string): string {
  return spawnSync("sha256sum", [path], { encoding: "utf8" }).stdout.split(" ")[0]!;
}

/** Resolves when a file whose name includes `.tmp` appears in `dir` (the export's first temporary file). */
function whenTempFileAppears(dir: string): { seen: Promise<string>; stop: () => void } {
  let stop = () => {};
  const seen = new Promise<string>((resolve) => {
    const w = watch(dir, (_event, name) => {
      if (name?.includes(".tmp") && name.includes("parquet")) {
        w.close();
        resolve(name);
      }
    });
    stop = () => w.close();
  });
  return { seen, stop };
}

export function crashSuite(opts: {
  seed: number;
  /** Kills at seeded request numbers, besides the first request of each operation family and the export. */
  randomKills: number;
  data: Pick<FakeWandbOptions, "runs" | "steps" | "metrics" | "runningFraction">;
}): void {
  let fake: FakeWandb;
  let gate: GateProxy;
  let env: NodeJS.ProcessEnv;
  let cleanDigest: string;
  let cleanRequests: number;
  let families: RegExp[];

  before(async () => {
    fake = await startFakeWandb({ seed: opts.seed, ...opts.data });
    gate = await startGateProxy(fake.url);
    env = { WANDB_BASE_URL: gate.url, WANDB_API_KEY: fake.apiKey };
    await using dir = await tempDir();
    const before = gate.count;
    const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
    assert.equal(r.code, 0, r.stderr);
    cleanRequests = gate.count - before;
    families = familiesOf(gate.names.slice(before));
    cleanDigest = await archiveDigest(undefined, dir.path, fake);
  });
  after(async () => {
    await gate?.close();
    await fake?.close();
  });

  async function rerunAndCompare(dir: string, label: string): Promise<void> {
    await assertWholeParquet(dir);
    const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir, "-q"];
    const rerun = await runCli(args, { env });
    assert.equal(rerun.code, 0, `after a kill ${label}: ${rerun.stderr}`);
    assert.equal(await archiveDigest(undefined, dir, fake), cleanDigest, `after a kill ${label}`);
    assert.equal(await assertWholeParquet(dir), 9);
    const left = (await readdir(dir)).filter((n) => n.includes(".tmp"));
    assert.deepEqual(left, [], `temporary files left behind after the rerun (kill ${label})`);
  }

  describe("kill -9 and rerun", () => {
    it(`a sync killed at the first request of each operation family, ${opts.randomKills} seeded requests and the export ends equal to a clean sync`, async () => {
      assert.ok(families.length >= 3, `a clean sync touched ${families.length} operation families`);
      const next = rng(opts.seed);
      const moments: { name: string | RegExp; k: number }[] = families.map((f) => ({ name: f, k: 1 }));
      for (let i = 0; i < opts.randomKills; i++)
        moments.push({ name: "*", k: 2 + Math.floor(next() * (families.length - 1)) });
      for (const { name, k } of moments) {
        const label = `${name === "*" ? "request" : `${name} request`} ${k} (clean sync: ${cleanRequests} requests)`;
        await using dir = await tempDir();
        const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"];
        const held = gate.holdAt(name, k);
        const { child, done } = startCli(args, { env });
        const path = await Promise.race([held, done.then((r) => `(ended first: ${r.code} ${r.stderr})`)]);
        assert.ok(path.startsWith("/"), `${label} was never made: ${path}`);
        child.kill("SIGKILL");
        const killed = await done;
        gate.clearHold();
        assert.equal(killed.signal, "SIGKILL", `killed while ${label} was held`);
        await rerunAndCompare(dir.path, `at ${label}`);
      }
    });

    it("a sync killed while it writes its export ends equal to a clean sync after a rerun", async () => {
      await using dir = await tempDir();
      const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"];
      const temp = whenTempFileAppears(dir.path);
      const { child, done } = startCli(args, { env });
      const first = await Promise.race([temp.seen, done.then(() => null)]);
      temp.stop();
      assert.ok(first !== null, "the sync ended without writing a temporary export file");
      child.kill("SIGKILL");
      await done;
      // Whether the kill came before the export's last rename or after it, a rerun must give the clean archive.
      await rerunAndCompare(dir.path, `during the export (${first})`);
    });

    it("a killed wandb-download leaves the previous files or none, never a torn one", async () => {
      const next = rng(opts.seed + 1);
      for (const format of ["parquet", "pkl", "jsonl"] as const) {
        await using dir = await tempDir();
        const args = [fake.entity, fake.project, dir.path, "--format", format, "-q"];
        const start = gate.count;
        const first = await runCli(args, { env, bin: "wandb-download" });
        assert.equal(first.code, 0, first.stderr);
        const requests = gate.count - start;
        // As for the sync: a request number every download of this project reaches (one per operation family).
        const reached = familiesOf(gate.names.slice(start)).length;
        const before = new Map<string, string>();
        for (const name of await readdir(dir.path)) before.set(name, fileDigest(join(dir.path, name)));
        const n = 1 + Math.floor(next() * reached);
        const held = gate.holdAt("*", n);
        const { child, done } = startCli(args, { env, bin: "wandb-download" });
        const path = await Promise.race([held, done.then((r) => `(ended first: ${r.code} ${r.stderr})`)]);
        assert.ok(path.startsWith("/"), `${format}: request ${n} of ${requests} was never made: ${path}`);
        child.kill("SIGKILL");
        const killed = await done;
        gate.clearHold();
        assert.equal(killed.signal, "SIGKILL");
        for (const name of await readdir(dir.path)) {
          if (name.startsWith(".")) continue; // a temporary file of the killed run (never a final name)
          const p = join(dir.path, name);
          const prev = before.get(name);
          assert.ok(prev !== undefined, `unexpected file ${name}`);
          assert.equal(fileDigest(p), prev, `${format}: ${name} changed although the download was killed`);
        }
        if (format === "parquet") assert.ok((await assertWholeParquet(dir.path)) > 0);
        if (format === "pkl") {
          for (const name of before.keys()) {
            const p = spawnSync("python3", [
              "-c",
              "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))",
              join(dir.path, name),
            ]);
            assert.equal(p.status, 0, `${name} does not load: ${p.stderr}`);
          }
        }
      }
    });
  });
}

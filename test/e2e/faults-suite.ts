/**
 * The fault soak: a fake project served with 15% of requests failing over every fault kind (500, 502, 503, 429,
 * reset, truncated body, stalled response, GraphQL error). The sync (DuckDB and PostgreSQL) and wandb-download
 * (every format) must produce exactly what a fault-free run produces, and the truth. The faults are drawn from the
 * seed request by request, so the same project and seed always inject the same faults. Run by faults.test.ts (a
 * small project) and faults.heavy.test.ts (the larger one); `npm run soak` runs more seeds.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, type FakeWandbOptions, startFakeWandb } from "../../fake-wandb/index.js";
import { startTestPg, type TestPgServer } from "../../src/archive/pg-test-server.js";
import { archiveDigest, duckObjects, fakeStats, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";

const ALL_FAULTS = ["500", "502", "503", "429", "reset", "truncated", "stall", "graphql"] as const;

let clean: FakeWandb;
let faulty: FakeWandb;
let pg: TestPgServer | undefined;

const FAST = ["--timeout", "1", "--concurrency", "4"];

function envFor(f: FakeWandb): NodeJS.ProcessEnv {
  return { WANDB_BASE_URL: f.url, WANDB_API_KEY: f.apiKey };
}

async function syncAndDigest(f: FakeWandb, dbUrl?: string): Promise<string> {
  await using dir = await tempDir();
  const args = ["sync", `${f.entity}/${f.project}`, "--output-dir", dir.path, "-q", ...FAST];
  if (dbUrl) args.push("--db-url", dbUrl);
  const r = await runCli(args, { env: envFor(f) });
  assert.equal(r.code, 0, r.stderr);
  return await archiveDigest(dbUrl, dir.path, f); // await: the folder is removed when this scope ends
}

/**
 * The suite on a project of `data` (no parquet exports: every history read is a GraphQL request (a run's steps in one
 * window, a few runs' windows in one document with --concurrency 4), plus the metadata files).
 */
export function faultsSuite(
  label: string,
  seed: number,
  data: Pick<FakeWandbOptions, "runs" | "steps" | "metrics">,
): void {
  before(async () => {
    const d = { seed, ...data, runningFraction: 0.2, parquetExports: false };
    clean = await startFakeWandb(d);
    faulty = await startFakeWandb({ ...d, failRate: 0.15, faultKinds: [...ALL_FAULTS], stallMs: 1500 });
  });
  after(async () => {
    await clean?.close();
    await faulty?.close();
    await pg?.stop();
  });

  describe(`under 15% faults of every kind, ${label}`, () => {
    it("a DuckDB sync equals the fault-free sync and the truth", async () => {
      await fetch(`${faulty.url}/_fake/stats/reset`, { method: "POST" });
      const want = await syncAndDigest(clean);
      const got = await syncAndDigest(faulty);
      assert.equal(got, want);
      const stats = await fakeStats(faulty.url);
      const injected = Object.values(stats.faults as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.ok(injected >= 3, `only ${injected} faults were injected: ${JSON.stringify(stats.faults)}`);
      let truthRows = 0;
      const truth = await truthRuns(clean.url);
      for (const t of truth) truthRows += (await truthHistory(clean.url, t.name as string)).length;
      assert.match(want, new RegExp(`^${truth.length} runs, ${truthRows} rows`));
    });

    it("a PostgreSQL sync equals the fault-free sync", async () => {
      pg ??= await startTestPg();
      const want = await syncAndDigest(clean, pg.urlFor(`drwandb_soak_clean_${process.pid}`));
      const got = await syncAndDigest(faulty, pg.urlFor(`drwandb_soak_faulty_${process.pid}`));
      assert.equal(got, want);
    });

    for (const format of ["parquet", "pkl", "jsonl"] as const) {
      it(`wandb-download --format ${format} equals the fault-free download`, async () => {
        await using dir = await tempDir();
        const out = async (f: FakeWandb, name: string) => {
          const r = await runCli([f.entity, f.project, join(dir.path, name), "--format", format, "-q", ...FAST], {
            env: envFor(f),
            bin: "wandb-download",
          });
          assert.equal(r.code, 0, r.stderr);
          return join(dir.path, name, `${f.entity}_${f.project}_histories.${format}`);
        };
        const a = await out(clean, "clean");
        const b = await out(faulty, "faulty");
        if (format === "parquet") {
          const q = (p: string) =>
            duckObjects(`SELECT * EXCLUDE (timestamp) FROM read_parquet('${p}') ORDER BY run_id, step`).then((rows) =>
              JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? v.toString() : Number.isNaN(v) ? "NaN" : v)),
            );
          assert.equal(await q(b), await q(a));
        } else {
          assert.ok((await readFile(a)).equals(await readFile(b)), `${format} files differ`);
        }
      });
    }
  });
}

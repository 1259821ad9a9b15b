/**
 * The columnar ingest of parquet exports (src/archive/parquet-ingest.ts) against the row path (DR_WANDB_COLUMNAR=0)
 * on the fake's edge profile: the same archive byte for byte (history text, metric kinds, sync state), the same
 * Parquet export, and the fake's truth; and wandb-download's columnar Parquet path (src/output/columnar-history.ts)
 * against its row path (DR_WANDB_DOWNLOAD_COLUMNAR=0): the same files. Run by columnar.test.ts (sized for the default tier) and
 * columnar.heavy.test.ts (the larger edge project of the heavy tier).
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, type FakeWandbOptions, startFakeWandb } from "../../fake-wandb/index.js";
import type { Archive, HistoryWrite } from "../../src/archive/archive.js";
import type { DuckDBArchive } from "../../src/archive/duckdb.js";
import { openArchive } from "../../src/archive/open.js";
import { connect } from "../../src/index.js";
import { parseStrictJson } from "../../src/model/json.js";
import { toHistoryRecord } from "../../src/model/records.js";
import { syncProject } from "../../src/sync/pipeline.js";
import {
  canonicalHistorySql,
  fakeStats,
  firstDiff,
  mutate,
  parquetDiff,
  runCli,
  tempDir,
  truthHistory,
  truthRuns,
} from "../helpers.js";

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

async function dump(outputDir: string): Promise<Record<string, string>> {
  const archive = await openArchive({ outputDir, readOnly: true });
  try {
    const text = async (sql: string) =>
      (await archive.query(sql)).rows
        .map((r) => r.map((v) => (typeof v === "bigint" ? `${v}n` : String(v))).join("\u0001"))
        .join("\n");
    return {
      history: await text(canonicalHistorySql()),
      metricKeys: await text("SELECT entity, project, key, kinds FROM metric_keys ORDER BY key"),
      state: await text("SELECT run_id, last_step, history_complete FROM sync_state ORDER BY run_id"),
      runs: await text("SELECT run_id, state, config, summary, last_history_step FROM runs ORDER BY run_id"),
    };
  } finally {
    await archive.close();
  }
}

/** The runs_history.parquet of an output folder. */
async function historyFile(outputDir: string): Promise<string> {
  const files = (await readdir(outputDir, { recursive: true })).filter((f) => f.endsWith("runs_history.parquet"));
  assert.equal(files.length, 1, `one runs_history.parquet in ${outputDir}: ${files.join(", ")}`);
  return join(outputDir, files[0]!);
}

const SAME = { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 };

/** The archive holds the fake's truth: every run's metrics, step by step. */
async function assertTruth(outputDir: string): Promise<void> {
  const fake = current!;
  const archive = await openArchive({ outputDir, readOnly: true });
  try {
    for (const t of await truthRuns(fake.url)) {
      const name = t.name as string;
      const hist = await archive.query(`SELECT step, metrics FROM history WHERE run_id = ${q(name)} ORDER BY step`);
      const want = (await truthHistory(fake.url, name)).map((r) => toHistoryRecord(name, r)!);
      assert.equal(hist.rows.length, want.length, `run ${name}: rows`);
      for (let i = 0; i < want.length; i++) {
        assert.equal(Number(hist.rows[i]![0]), want[i]!.step);
        const d = firstDiff(parseStrictJson(String(hist.rows[i]![1])), want[i]!.metrics);
        assert.equal(d, null, `run ${name} step ${want[i]!.step}: ${d}`);
      }
    }
  } finally {
    await archive.close();
  }
}

let current: FakeWandb | undefined;

/**
 * The suite over a fake edge project of `steps` steps per run (> 1000 split each export in two files; running runs
 * add a live tail after the exported part).
 */
export function columnarSuite(
  label: string,
  data: Pick<FakeWandbOptions, "seed" | "runs" | "steps" | "metrics">,
  opts: { truthAfterFirstSync: boolean },
): void {
  describe(`columnar ingest of parquet exports (DuckDB), ${label}`, () => {
    let fake: FakeWandb;
    before(async () => {
      fake = await startFakeWandb({ ...data, profile: "edge", runningFraction: 0.4 });
      current = fake;
    });
    after(async () => {
      await fake?.close();
    });

    it("stores the same archive and export as the row path (DR_WANDB_COLUMNAR=0), equal to the truth", async () => {
      await using rowDir = await tempDir();
      await using colDir = await tempDir();
      const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
      const args = (dir: string) => ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir, "-q"];
      const a = await runCli(args(rowDir.path), { env: { ...env, DR_WANDB_COLUMNAR: "0" } });
      assert.equal(a.code, 0, a.stderr);
      const b = await runCli(args(colDir.path), { env });
      assert.equal(b.code, 0, b.stderr);

      const rowDump = await dump(rowDir.path);
      const colDump = await dump(colDir.path);
      assert.ok(rowDump.history!.split("\n").length > 8 * 1000, "history rows");
      for (const k of Object.keys(rowDump)) assert.equal(colDump[k], rowDump[k], `${k} differs`);
      // (The dumps hold the runs' config, summary and state and every history row as stored text, byte for byte:
      // stronger than archiveDigest's parsed comparison, which the backends' tests use.)
      assert.deepEqual(
        await parquetDiff(await historyFile(colDir.path), await historyFile(rowDir.path)),
        SAME,
        "runs_history.parquet differs",
      );

      if (opts.truthAfterFirstSync) await assertTruth(colDir.path);

      // An incremental sync: runs that logged more than a window's worth of steps (1,000) and finished are read from
      // their stored last step out of the new exports (fromStep > 0, across the fake's 1,000-step export files),
      // others from live windows; both ways again the same.
      const truth = await truthRuns(fake.url);
      const running = truth.filter((t) => t.state === "running").map((t) => t.name as string);
      const finished = truth.filter((t) => t.state === "finished").map((t) => t.name as string);
      assert.ok(running.length >= 1 && finished.length >= 1, `running ${running.length}, finished ${finished.length}`);
      await mutate(fake.url, [
        { op: "appendSteps", run: running[0]!, steps: 1400 },
        { op: "finishRun", run: running[0]! },
        { op: "appendSteps", run: finished[0]!, steps: 1200 },
        { op: "finishRun", run: finished[0]! },
        { op: "addRuns", count: 1 },
      ]);
      const a2 = await runCli(args(rowDir.path), { env: { ...env, DR_WANDB_COLUMNAR: "0" } });
      assert.equal(a2.code, 0, a2.stderr);
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      const b2 = await runCli(args(colDir.path), { env });
      assert.equal(b2.code, 0, b2.stderr);
      const ops = (await fakeStats(fake.url)).byOperation;
      assert.ok((ops.RunParquetHistory ?? 0) + (ops.RunsParquetHistory ?? 0) >= 1, JSON.stringify(ops));
      const rowDump2 = await dump(rowDir.path);
      const colDump2 = await dump(colDir.path);
      assert.notEqual(rowDump2.history, rowDump.history, "the second sync wrote rows");
      for (const k of Object.keys(rowDump2))
        assert.equal(colDump2[k], rowDump2[k], `${k} differs after the second sync`);
      assert.deepEqual(
        await parquetDiff(await historyFile(colDir.path), await historyFile(rowDir.path)),
        SAME,
        "runs_history.parquet differs",
      );
      await assertTruth(colDir.path);
    });

    it("hands the exports to the DuckDB archive as files (and as rows with DR_WANDB_COLUMNAR=0)", async () => {
      for (const columnar of [true, false]) {
        await using dir = await tempDir();
        const saved = process.env.DR_WANDB_COLUMNAR;
        if (!columnar) process.env.DR_WANDB_COLUMNAR = "0";
        const api = await connect({ baseUrl: fake.url, apiKey: fake.apiKey });
        const archive = await openArchive({ outputDir: dir.path });
        try {
          const seen: HistoryWrite[] = [];
          const spy = new Proxy(archive, {
            get(target, prop, receiver) {
              if (prop === "writeRun") {
                return (w: Parameters<Archive["writeRun"]>[0]) => {
                  if (w.history) seen.push(w.history);
                  return target.writeRun(w);
                };
              }
              const v = Reflect.get(target, prop, receiver);
              return typeof v === "function" ? v.bind(target) : v;
            },
          });
          const r = await syncProject(api, spy, { entity: fake.entity, project: fake.project });
          const withFiles = seen.filter((h) => (h.parquetSources?.length ?? 0) > 0).length;
          if (columnar) assert.ok(withFiles >= 4, `runs written from parquet files: ${withFiles}`);
          else assert.equal(withFiles, 0);
          const n = await archive.query("SELECT count(*) FROM history");
          assert.equal(Number(n.rows[0]![0]), r.historyRows);
          const stats = (archive as DuckDBArchive).parquetIngest;
          if (columnar) {
            assert.equal(stats.sources, withFiles, "every source inserted with SQL");
            assert.equal(stats.decoded, 0, "no source decoded to rows");
            assert.ok(stats.rows > withFiles * 1000, `rows inserted with SQL: ${stats.rows}`);
          } else assert.equal(stats.sources + stats.decoded, 0);
        } finally {
          await archive.close();
          await api.close();
          if (saved === undefined) delete process.env.DR_WANDB_COLUMNAR;
          else process.env.DR_WANDB_COLUMNAR = saved;
        }
      }
    });

    it("wandb-download --format parquet writes the same files reading the exports with DuckDB as decoding them", async () => {
      await using rowDir = await tempDir();
      await using colDir = await tempDir();
      const env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
      const args = (dir: string) => [fake.entity, fake.project, dir, "--format", "parquet", "--json"];
      const a = await runCli(args(rowDir.path), {
        env: { ...env, DR_WANDB_DOWNLOAD_COLUMNAR: "0" },
        bin: "wandb-download",
      });
      assert.equal(a.code, 0, a.stderr);
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      const b = await runCli(args(colDir.path), { env, bin: "wandb-download" });
      assert.equal(b.code, 0, b.stderr);
      // the exports were downloaded as files (each finished run's in two: the fake splits them at 1,000 steps)
      const stats = await fakeStats(fake.url);
      assert.ok(Number(stats.parquet) >= 8, `parquet GETs: ${stats.parquet}`);
      for (const kind of ["histories", "runs"]) {
        const file = `${fake.entity}_${fake.project}_${kind}.parquet`;
        assert.deepEqual(await parquetDiff(join(colDir.path, file), join(rowDir.path, file)), SAME, `${file} differs`);
      }
    });
  });
}

/**
 * Issue #8, run extras end to end: `dr-wandb sync --files` (every file with the server's size and md5, hostile names
 * skipped, nothing downloaded twice, partial downloads resumed, --files-pattern, --max-file-size) and
 * `--system-metrics` (every event of /_fake/truth/events in the archive, its Parquet export and `wandb-download`).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/open.js";
import { parseStrictJson } from "../../src/model/json.js";
import { duckObjects, fakeStats, firstDiff, ndjson, runCli, tempDir, truthRuns } from "../helpers.js";

/** The names of the edge profile's kitchen-sink run that would leave the run's folder. */
const HOSTILE = ["../../escape.txt", "/abs/path.txt", "a/../../b.txt"];

interface TruthFile {
  name: string;
  size: number;
  md5: string;
}

async function truthFiles(fake: FakeWandb): Promise<Map<string, TruthFile[]>> {
  const out = new Map<string, TruthFile[]>();
  for (const run of await truthRuns(fake.url)) {
    const name = run.name as string;
    out.set(name, (await ndjson(`${fake.url}/_fake/truth/files?run=${encodeURIComponent(name)}`)) as never);
  }
  return out;
}

/** Base64 of the MD5 digest, as W&B reports a file's md5. */
function md5Base64(bytes: Buffer): string {
  return createHash("md5").update(bytes).digest("base64");
}

/** Every regular file under `dir`, as paths relative to it with `/` separators. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)).split(sep).join("/"));
  }
  return out.sort();
}

async function mtimeOrNull(path: string): Promise<number | null> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return null;
  }
}

function lastJson(stdout: string): { projects: { filesDownloaded: number; warnings: string[] }[] } {
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

interface FileRow {
  run_id: string;
  name: string;
  size: number;
  md5: string | null;
  updated_at: unknown;
  local_path: string | null;
}

async function archiveFiles(outputDir: string): Promise<Map<string, FileRow>> {
  const archive = await openArchive({ outputDir, readOnly: true });
  try {
    const r = await archive.query("SELECT run_id, name, size, md5, updated_at, local_path FROM files");
    const out = new Map<string, FileRow>();
    for (const [run_id, name, size, md5, updated_at, local_path] of r.rows) {
      out.set(`${run_id}/${name}`, {
        run_id: run_id as string,
        name: name as string,
        size: Number(size),
        md5: md5 as string | null,
        updated_at,
        local_path: local_path as string | null,
      });
    }
    return out;
  } finally {
    await archive.close();
  }
}

describe("sync --files", () => {
  let fake: FakeWandb;
  let env: NodeJS.ProcessEnv;
  let truth: Map<string, TruthFile[]>;
  let base: string;
  before(async () => {
    fake = await startFakeWandb({ profile: "edge", runs: 12, steps: 30, metrics: 3, seed: 3 });
    env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    truth = await truthFiles(fake);
    base = `files/${fake.entity}/${fake.project}`;
  });
  after(async () => {
    await fake?.close();
  });
  const sync = (dir: string, ...extra: string[]) =>
    runCli(["sync", `${fake.entity}/${fake.project}`, "--runs-only", "--files", "--output-dir", dir, ...extra], {
      env,
    });

  it("downloads every file with the server's size and md5, skips names that leave the run's folder, and records each", async () => {
    await using dir = await tempDir();
    // "/abs/path.txt" may exist on this machine (another tool wrote it): the sync must not write it.
    const absBefore = await mtimeOrNull("/abs/path.txt");
    const r = await sync(dir.path, "--json");
    assert.equal(r.code, 0, r.stderr);
    const hostileSeen: string[] = [];
    const expected: string[] = [];
    for (const [run, files] of truth) {
      for (const f of files) {
        if (HOSTILE.includes(f.name)) {
          hostileSeen.push(f.name);
          continue;
        }
        expected.push(`${base}/${run}/${f.name}`);
        const bytes = await readFile(join(dir.path, base, run, f.name));
        assert.equal(bytes.length, f.size, `size of ${run}/${f.name}`);
        assert.equal(md5Base64(bytes), f.md5, `md5 of ${run}/${f.name}`);
      }
    }
    assert.deepEqual(hostileSeen.sort(), [...HOSTILE].sort(), "the edge profile serves the hostile names");
    // Nothing else under files/ (no escaped copy, no leftover .part), and nothing written where the names point.
    const all = await walk(dir.path);
    const onDisk = all.filter((p) => p.startsWith("files/"));
    assert.deepEqual(onDisk, expected.sort());
    const others = all.filter((p) => !p.startsWith("files/"));
    assert.ok(
      others.every(
        (p) =>
          /^[\w.]+\.(parquet|duckdb|duckdb\.wal)$/.test(p) ||
          /^runs_history\.parquet\/part-\d{8}\.parquet$/.test(p) ||
          p === ".runs_history.manifest.json",
      ),
      `unexpected files: ${others.join(", ")}`,
    );
    assert.equal(await mtimeOrNull("/abs/path.txt"), absBefore, "/abs/path.txt written");
    for (const name of HOSTILE) {
      assert.match(
        r.stderr,
        new RegExp(
          `WARNING - run \\w+: file name ${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is unsafe`,
        ),
      );
    }
    const summary = lastJson(r.stdout).projects[0]!;
    assert.equal(summary.filesDownloaded, expected.length);
    assert.equal(summary.warnings.length, HOSTILE.length);

    // The archive's files table: one row per listed file (hostile ones too, never with a local path).
    const rows = await archiveFiles(dir.path);
    let listed = 0;
    for (const [run, files] of truth) {
      for (const f of files) {
        listed++;
        const row = rows.get(`${run}/${f.name}`);
        assert.ok(row, `files row for ${run}/${f.name}`);
        assert.equal(row.size, f.size);
        assert.equal(row.md5, f.md5);
        assert.notEqual(row.updated_at, null, `updated_at of ${run}/${f.name}`);
        assert.equal(row.local_path, HOSTILE.includes(f.name) ? null : `${base}/${run}/${f.name}`);
      }
    }
    assert.equal(rows.size, listed);

    // A second sync downloads nothing: no file request, no storage request, no file rewritten.
    const mtimes = new Map<string, number>();
    for (const p of onDisk) mtimes.set(p, (await stat(join(dir.path, p))).mtimeMs);
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    const again = await sync(dir.path, "--json");
    assert.equal(again.code, 0, again.stderr);
    const stats = await fakeStats(fake.url);
    assert.equal(stats.files, 0, JSON.stringify(stats));
    assert.equal(stats.storage, 0, JSON.stringify(stats));
    assert.equal(lastJson(again.stdout).projects[0]!.filesDownloaded, 0);
    for (const [p, m] of mtimes) assert.equal((await stat(join(dir.path, p))).mtimeMs, m, `${p} rewritten`);
    assert.equal((await archiveFiles(dir.path)).size, listed, "the files table is kept whole");
  });

  it("resumes a partial download (a short file, a .part file) and starts over from a corrupt one", async () => {
    await using dir = await tempDir();
    assert.equal((await sync(dir.path, "-q")).code, 0);
    const [run, files] = [...truth].find(([, fs]) => fs.some((f) => f.name === "checkpoints/large.bin"))!;
    const large = files.find((f) => f.name === "checkpoints/large.bin")!;
    const dest = join(dir.path, base, run, large.name);
    const full = await readFile(dest);
    assert.equal(md5Base64(full), large.md5);

    const check = async (label: string, maxBytes: number) => {
      await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
      const r = await sync(dir.path, "-q", "--force-refresh");
      assert.equal(r.code, 0, `${label}: ${r.stderr}`);
      const bytes = await readFile(dest);
      assert.equal(bytes.length, large.size, `${label}: size`);
      assert.equal(md5Base64(bytes), large.md5, `${label}: md5`);
      assert.equal(existsSync(`${dest}.part`), false, `${label}: .part left behind`);
      const { bytesOut } = (await fakeStats(fake.url)) as unknown as { bytesOut: number };
      assert.ok(bytesOut < maxBytes, `${label}: ${bytesOut} bytes sent, expected below ${maxBytes}`);
    };
    // Everything but the large file is unchanged and skipped; graphql answers are well below 1 MB.
    const half = 1_600_000;
    // 1. The file is short (a crash after rename cannot do that, but a user's copy can): only the rest is fetched.
    await truncate(dest, half);
    await check("short file", large.size - half + 1_000_000);
    // 2. A .part from an interrupted download: resumed with a Range request.
    await rm(dest);
    await writeFile(`${dest}.part`, full.subarray(0, half));
    await check(".part file", large.size - half + 1_000_000);
    // 3. A .part with wrong bytes: the md5 check fails, and the file is fetched again whole (the sync succeeds).
    await rm(dest);
    await writeFile(`${dest}.part`, Buffer.alloc(half, 0x5a));
    await check("corrupt .part", 2 * large.size + 1_000_000);
  });

  it("adding --files to a later sync fetches the files of runs that did not change", async () => {
    await using dir = await tempDir();
    const first = await runCli(
      ["sync", `${fake.entity}/${fake.project}`, "--runs-only", "--output-dir", dir.path, "-q"],
      {
        env,
      },
    );
    assert.equal(first.code, 0, first.stderr);
    const r = await sync(dir.path, "--json");
    assert.equal(r.code, 0, r.stderr);
    const rows = await archiveFiles(dir.path);
    let want = 0;
    for (const files of truth.values()) want += files.length;
    assert.equal(rows.size, want, "every run's files are recorded, not only the changed runs'");
    const downloaded = [...rows.values()].filter((f) => f.local_path !== null).length;
    assert.equal(downloaded, want - HOSTILE.length);
    const again = await sync(dir.path, "--json");
    assert.equal(lastJson(again.stdout).projects[0]!.filesDownloaded, 0, "a third sync downloads nothing");
  });

  it("--files-pattern downloads only matching files", async () => {
    await using dir = await tempDir();
    const r = await sync(dir.path, "--files-pattern", "%.json");
    assert.equal(r.code, 0, r.stderr);
    const expected: string[] = [];
    for (const [run, files] of truth) {
      for (const f of files) if (f.name.endsWith(".json")) expected.push(`${base}/${run}/${f.name}`);
    }
    assert.ok(expected.length >= truth.size, "every run has a .json file");
    assert.ok(
      [...truth.values()].flat().some((f) => !f.name.endsWith(".json")),
      "the project has files the pattern excludes",
    );
    const onDisk = (await walk(dir.path)).filter((p) => p.startsWith("files/"));
    assert.deepEqual(onDisk, expected.sort());
    const rows = await archiveFiles(dir.path);
    assert.deepEqual(
      [...rows.values()].map((r) => `${base}/${r.run_id}/${r.name}`).sort(),
      expected,
      "the files table lists the matching files only",
    );
  });

  it("--max-file-size skips larger files and records them without a local path", async () => {
    await using dir = await tempDir();
    const r = await sync(dir.path, "--max-file-size", "1k");
    assert.equal(r.code, 0, r.stderr);
    const rows = await archiveFiles(dir.path);
    let small = 0;
    let big = 0;
    for (const [run, files] of truth) {
      for (const f of files) {
        if (HOSTILE.includes(f.name)) continue;
        const row = rows.get(`${run}/${f.name}`);
        assert.ok(row, `files row for ${run}/${f.name}`);
        assert.equal(row.size, f.size);
        const path = join(dir.path, base, run, f.name);
        if (f.size > 1024) {
          big++;
          assert.equal(row.local_path, null, `${run}/${f.name} (${f.size} bytes) has no local path`);
          assert.equal(existsSync(path), false, `${run}/${f.name} (${f.size} bytes) must not be downloaded`);
        } else {
          small++;
          assert.equal(row.local_path, `${base}/${run}/${f.name}`);
          assert.equal(md5Base64(await readFile(path)), f.md5);
        }
      }
    }
    assert.ok(small > 0 && big > 0, `the project needs files on both sides of 1 KiB (${small} small, ${big} big)`);
  });
});

describe("--system-metrics", () => {
  let fake: FakeWandb;
  let env: NodeJS.ProcessEnv;
  // 700 events per run: above W&B's default of 500 samples, below the 10,000 we ask for.
  const EVENTS = 700;
  before(async () => {
    fake = await startFakeWandb({ runs: 5, steps: 20, metrics: 3, events: EVENTS, seed: 21 });
    env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
  });
  after(async () => {
    await fake?.close();
  });

  /** The truth's events of each run, as (timestamp, runtime, metrics without the two). */
  async function truthEvents(): Promise<Map<string, { timestamp: number; runtime: number; metrics: object }[]>> {
    const out = new Map<string, { timestamp: number; runtime: number; metrics: object }[]>();
    for (const run of await truthRuns(fake.url)) {
      const evs = await ndjson(`${fake.url}/_fake/truth/events?run=${encodeURIComponent(run.name as string)}`);
      assert.equal(evs.length, EVENTS);
      out.set(
        run.name as string,
        evs.map(({ _timestamp, _runtime, ...metrics }) => ({
          timestamp: _timestamp as number,
          runtime: _runtime as number,
          metrics,
        })),
      );
    }
    return out;
  }

  /** Compares rows (run_id, timestamp as Date/number, runtime, metrics JSON) with the truth, run by run. */
  function assertEqualsTruth(
    label: string,
    rows: Record<string, unknown>[],
    truth: Map<string, { timestamp: number; runtime: number; metrics: object }[]>,
  ): void {
    const byRun = new Map<string, Record<string, unknown>[]>();
    for (const r of rows) {
      const list = byRun.get(r.run_id as string) ?? [];
      list.push(r);
      byRun.set(r.run_id as string, list);
    }
    assert.deepEqual([...byRun.keys()].sort(), [...truth.keys()].sort(), `${label}: runs`);
    for (const [run, want] of truth) {
      const got = byRun.get(run)!.sort((a, b) => Number(a.runtime) - Number(b.runtime));
      assert.equal(got.length, want.length, `${label}: events of ${run}`);
      for (let i = 0; i < want.length; i++) {
        const g = got[i]!;
        const w = want[i]!;
        assert.equal(Number(g.runtime), w.runtime, `${label}: ${run} event ${i} runtime`);
        const ts = g.timestamp instanceof Date ? g.timestamp.getTime() / 1000 : Number(g.timestamp);
        assert.ok(Math.abs(ts - w.timestamp) < 1e-6, `${label}: ${run} event ${i} timestamp ${ts} != ${w.timestamp}`);
        const metrics = typeof g.metrics === "string" ? parseStrictJson(g.metrics) : g.metrics;
        const d = firstDiff(metrics, w.metrics);
        assert.equal(d, null, `${label}: ${run} event ${i}: ${d}`);
      }
    }
  }

  it("sync stores every event of every run, in the archive and runs_system_metrics.parquet", async () => {
    await using dir = await tempDir();
    const r = await runCli(
      ["sync", `${fake.entity}/${fake.project}`, "--runs-only", "--system-metrics", "--output-dir", dir.path, "-q"],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const truth = await truthEvents();
    const archive = await openArchive({ outputDir: dir.path, readOnly: true });
    let rows: Record<string, unknown>[];
    try {
      const q = await archive.query(
        `SELECT run_id, epoch("timestamp") AS timestamp, runtime, metrics FROM system_metrics`,
      );
      rows = q.rows.map((row) => Object.fromEntries(q.columns.map((c, i) => [c, row[i]])));
    } finally {
      await archive.close();
    }
    assertEqualsTruth("archive", rows, truth);
    const exported = await duckObjects(
      `SELECT run_id, epoch("timestamp") AS timestamp, runtime, metrics FROM read_parquet('${join(dir.path, "runs_system_metrics.parquet")}')`,
    );
    assertEqualsTruth("runs_system_metrics.parquet", exported, truth);
  });

  it("wandb-download --system-metrics writes {entity}_{project}_system_metrics.parquet with every event", async () => {
    await using dir = await tempDir();
    const out = join(dir.path, "out");
    const r = await runCli([fake.entity, fake.project, out, "--runs-only", "--system-metrics", "-q"], {
      env,
      bin: "wandb-download",
    });
    assert.equal(r.code, 0, r.stderr);
    const file = join(out, `${fake.entity}_${fake.project}_system_metrics.parquet`);
    // One column per metric key (the fake's keys collide with no fixed column, so each is named as its key).
    const raw = await duckObjects(`SELECT * REPLACE (epoch("timestamp") AS "timestamp") FROM read_parquet('${file}')`);
    const rows = raw.map(({ run_id, timestamp, runtime, ...cols }) => ({
      run_id,
      timestamp,
      runtime,
      metrics: Object.fromEntries(Object.entries(cols).filter(([, v]) => v !== null)),
    }));
    assertEqualsTruth("download", rows, await truthEvents());
  });
});

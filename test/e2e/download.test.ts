/**
 * `wandb-download` end to end, as a new user runs it: a real fake W&B server over HTTP, the CLI as a child process,
 * the outputs read back by DuckDB, Python's pickle module and a JSON parser, and compared with /_fake/truth.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { metricColumnNames } from "../../src/model/flatten.js";
import { type JsonObject, parseStrictJson } from "../../src/model/json.js";
import { HISTORY_FIXED_COLUMNS, toHistoryRecord } from "../../src/model/records.js";
import { duckObjects, firstDiff, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;

before(async () => {
  // Every edge scenario (its values, keys and run shapes) on 60 steps per ordinary run: each output is compared
  // with the truth value by value, which needs every kind of value, not many rows of each.
  fake = await startFakeWandb({ profile: "edge", seed: 11, runs: 12, steps: 60 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
});
after(async () => {
  await fake?.close();
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}

/** The truth's history of a run, as HistoryRecords keyed by step. */
async function truthRecords(run: string) {
  const rows = await truthHistory(fake.url, run);
  return rows.map((r) => toHistoryRecord(run, r)!).filter((r) => r !== null);
}

function parseJsonCell(v: unknown): unknown {
  if (typeof v !== "string") return v;
  try {
    return parseStrictJson(v);
  } catch {
    return v; // a VARCHAR column holds plain strings
  }
}

describe("wandb-download", () => {
  it("writes Parquet whose every value equals the truth", async () => {
    await using dir = await tempDir();
    const out = join(dir.path, "out");
    const r = await runCli([fake.entity, fake.project, out, "--json"], { env, bin: "wandb-download" });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    const truth = await truthRuns(fake.url);
    assert.equal(summary.runs, truth.length);
    assert.match(r.stderr, /Beginning Dr\. Wandb Project Downloading Tool/);
    assert.match(r.stderr, />> Dumped runs data to: .*_runs\.parquet/);

    const runsFile = join(out, `${fake.entity}_${fake.project}_runs.parquet`);
    const histFile = join(out, `${fake.entity}_${fake.project}_histories.parquet`);
    const runs = await duckObjects(`SELECT * FROM read_parquet('${runsFile}')`);
    assert.equal(runs.length, truth.length);
    const byId = new Map(runs.map((x) => [x.run_id as string, x]));
    for (const t of truth) {
      const got = byId.get(t.name as string);
      assert.ok(got, `run ${t.name} missing`);
      assert.equal(got.state, t.state);
      assert.equal(got.run_name, t.displayName);
      const diff = firstDiff(parseJsonCell(got.config), t.config) ?? firstDiff(parseJsonCell(got.summary), t.summary);
      assert.equal(diff, null, `run ${t.name}: ${diff}`);
      assert.equal(firstDiff(parseJsonCell(got.system_metrics), t.systemMetrics), null);
    }

    const hist = await duckObjects(`SELECT * FROM read_parquet('${histFile}') ORDER BY run_id, step`);
    const cols = Object.keys(hist[0] ?? {});
    assert.ok(cols.includes("step") && cols.includes("timestamp") && cols.includes("runtime"));
    let compared = 0;
    for (const t of truth) {
      const want = await truthRecords(t.name as string);
      const got = hist.filter((h) => h.run_id === t.name);
      assert.equal(got.length, want.length, `run ${t.name}: history row count`);
      const keys = [...new Set(want.flatMap((w) => Object.keys(w.metrics)))];
      const names = metricColumnNames(
        [...new Set([...keys, ...cols.filter((c) => !HISTORY_FIXED_COLUMNS.includes(c as never))])],
        HISTORY_FIXED_COLUMNS,
      );
      for (let i = 0; i < want.length; i++) {
        const w = want[i]!;
        const g = got[i]!;
        assert.equal(Number(g.step), w.step);
        for (const k of Object.keys(w.metrics)) {
          const col = names.get(k)!;
          assert.ok(col in g, `column for metric ${JSON.stringify(k)} missing`);
          const d = firstDiff(parseJsonCell(g[col]), w.metrics[k]);
          // a VARCHAR column holds strings as they are; JSON columns hold JSON text
          const d2 = typeof g[col] === "string" ? firstDiff(g[col], w.metrics[k]) : d;
          assert.ok(d === null || d2 === null, `run ${t.name} step ${w.step} metric ${k}: ${d}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 100, `compared only ${compared} values`);
  });

  it("writes pickles that Python's pickle module loads in the original shapes", async () => {
    await using dir = await tempDir();
    const r = await runCli([fake.entity, fake.project, dir.path, "--format", "pkl"], { env, bin: "wandb-download" });
    assert.equal(r.code, 0, r.stderr);
    const runsFile = join(dir.path, `${fake.entity}_${fake.project}_runs.pkl`);
    const histFile = join(dir.path, `${fake.entity}_${fake.project}_histories.pkl`);
    const py = `
import pickle, json, math, datetime, sys
runs = pickle.load(open(sys.argv[1], "rb"))
hists = pickle.load(open(sys.argv[2], "rb"))
assert isinstance(runs, list) and all(isinstance(r, dict) for r in runs)
assert isinstance(hists, list) and len(hists) == len(runs)
keys = ["run_id","run_name","state","project","entity","created_at","config","summary","wandb_metadata","system_metrics","system_attrs","sweep_info"]
for r, h in zip(runs, hists):
    assert all(k in r for k in keys), set(keys) - set(r)
    assert isinstance(h, list)
    for row in h:
        assert row["run_id"] == r["run_id"]
        assert isinstance(row["step"], int)
        assert row["timestamp"] is None or (isinstance(row["timestamp"], datetime.datetime) and row["timestamp"].utcoffset() == datetime.timedelta(0))
        assert isinstance(row["metrics"], dict)
def enc(o):
    if isinstance(o, float) and not math.isfinite(o): return {"$float": repr(o)}
    if isinstance(o, datetime.datetime): return {"$dt": o.timestamp()}
    if isinstance(o, int) and not isinstance(o, bool) and abs(o) > 2**53: return {"$int": str(o)}
    if isinstance(o, dict): return {k: enc(v) for k, v in o.items()}
    if isinstance(o, list): return [enc(v) for v in o]
    return o
print(json.dumps({"runs": enc(runs), "hists": enc(hists)}))
`;
    const p = spawnSync("python3", ["-c", py, runsFile, histFile], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
    assert.equal(p.status, 0, p.stderr);
    const decoded = JSON.parse(p.stdout, (_k, v) => {
      if (v && typeof v === "object" && "$float" in v)
        return v.$float === "nan" ? Number.NaN : v.$float === "inf" ? Infinity : -Infinity;
      if (v && typeof v === "object" && "$int" in v) return BigInt(v.$int);
      return v;
    }) as { runs: JsonObject[]; hists: JsonObject[][] };
    const truth = await truthRuns(fake.url);
    assert.equal(decoded.runs.length, truth.length);
    for (const [i, t] of truth.entries()) {
      const run = decoded.runs.find((x) => x.run_id === t.name)!;
      assert.ok(run, `run ${t.name} missing`);
      assert.equal(firstDiff(run.config, t.config), null);
      assert.equal(firstDiff(run.summary, t.summary), null);
      const idx = decoded.runs.indexOf(run);
      const want = await truthRecords(t.name as string);
      const got = decoded.hists[idx]!;
      assert.equal(got.length, want.length, `run ${t.name} (${i}): history rows`);
      for (let j = 0; j < want.length; j++) {
        assert.equal(firstDiff((got[j] as JsonObject).metrics, want[j]!.metrics), null, `run ${t.name} row ${j}`);
      }
    }
  });

  it("writes JSONL with NaN and Infinity as documented strings", async () => {
    await using dir = await tempDir();
    const r = await runCli([fake.entity, fake.project, dir.path, "--format", "jsonl"], { env, bin: "wandb-download" });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(join(dir.path, `${fake.entity}_${fake.project}_histories.jsonl`), "utf8");
    const lines = text.trim().split("\n");
    for (const l of lines) JSON.parse(l); // strict JSON: every line parses with the standard parser
    const rows = lines.map((l) => parseStrictJson(l) as JsonObject);
    const truth = await truthRuns(fake.url);
    let total = 0;
    for (const t of truth) total += (await truthRecords(t.name as string)).length;
    assert.equal(rows.length, total);
  });

  it("with --runs-only writes only the runs file, and says so", async () => {
    await using dir = await tempDir();
    const r = await runCli([fake.entity, fake.project, dir.path, "--runs-only"], { env, bin: "wandb-download" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Runs only, not dumping histories to/);
    assert.deepEqual(await readdir(dir.path), [`${fake.entity}_${fake.project}_runs.parquet`]);
  });

  it("gives one clear line and a distinct exit code for bad arguments, a bad key and an unknown project", async () => {
    await using dir = await tempDir();
    const missing = await runCli([fake.entity, fake.project], { env, bin: "wandb-download" });
    assert.equal(missing.code, 2);
    assert.match(oneLine(missing.stderr), /missing required argument/);

    const badFormat = await runCli([fake.entity, fake.project, dir.path, "--format", "xlsx"], {
      env,
      bin: "wandb-download",
    });
    assert.equal(badFormat.code, 2);
    oneLine(badFormat.stderr);

    const wrongKey = "wrongkey_0123456789012345678901234567890123456789";
    const badKey = await runCli([fake.entity, fake.project, dir.path, "-q"], {
      env: { ...env, WANDB_API_KEY: wrongKey },
      bin: "wandb-download",
    });
    assert.equal(badKey.code, 3, badKey.stderr);
    assert.ok(!oneLine(badKey.stderr).includes(wrongKey), "the key must not be printed");

    const noKey = await runCli([fake.entity, fake.project, dir.path, "-q"], {
      env: { WANDB_BASE_URL: fake.url, HOME: dir.path, NETRC: join(dir.path, "none") },
      bin: "wandb-download",
    });
    assert.equal(noKey.code, 3, noKey.stderr);
    assert.match(oneLine(noKey.stderr), /WANDB_API_KEY/);

    const unknown = await runCli([fake.entity, "no-such-project", dir.path, "-q"], { env, bin: "wandb-download" });
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(oneLine(unknown.stderr), /no-such-project/);
    assert.deepEqual(await readdir(dir.path), [], "nothing is written for a failed download");
  });
});

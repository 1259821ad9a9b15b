import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { encodeHistoryLine, encodeWandbJson } from "./encode.js";
import { BEYOND_INT64, EDGE_SCENARIO_COUNT, formatTime, hash3, mulberry32, parseTime } from "./generator.js";
import type { FakeRun, FObject, FValue, GeneratorOptions } from "./model.js";
import { createFakeStore, type DataStore } from "./store.js";

const DEFAULT: GeneratorOptions = {
  seed: 42,
  entity: "ent",
  project: "proj",
  runs: 50,
  steps: 120,
  metrics: 12,
  profile: "default",
};
const EDGE: GeneratorOptions = { ...DEFAULT, seed: 7, runs: 12, steps: 60, metrics: 5, profile: "edge" };

/** Everything a client can observe about a store, as one string. */
function fingerprint(s: DataStore): string {
  const h = createHash("sha256");
  for (const r of s.runs()) {
    h.update(s.truthLine(s.truthRun(r)));
    h.update(s.wireConfig(r));
    h.update(s.wireSummary(r));
    h.update(s.wireSystemMetrics(r));
    h.update(encodeWandbJson(s.historyKeys(r)));
    for (const row of s.historyRows(r, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)) {
      h.update(s.encodeHistoryLine(row));
    }
    for (const ev of s.events(r)) h.update(s.encodeHistoryLine(ev));
    for (const f of s.files(r)) h.update(`${f.name}|${f.sizeBytes}|${f.md5}|${f.mimetype}|${f.updatedAt}`);
  }
  return h.digest("hex");
}

function allRows(s: DataStore, r: FakeRun): FObject[] {
  return s.historyRows(r, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
}

describe("PRNG and hashing", () => {
  it("mulberry32 is deterministic and in [0,1)", () => {
    const a = mulberry32(5);
    const b = mulberry32(5);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      assert.equal(x, b());
      assert.ok(x >= 0 && x < 1);
    }
  });
  it("hash3 is a pure uint32 function", () => {
    assert.equal(hash3(1, 2, 3), hash3(1, 2, 3));
    assert.notEqual(hash3(1, 2, 3), hash3(1, 2, 4));
    assert.ok(hash3(9, 9, 9) >= 0 && hash3(9, 9, 9) < 2 ** 32);
  });
  it("formats times as W&B does (no zone) and parses them back as UTC", () => {
    const t = Date.UTC(2025, 0, 2, 3, 4, 5) / 1000;
    assert.equal(formatTime(t), "2025-01-02T03:04:05");
    assert.equal(parseTime("2025-01-02T03:04:05"), t);
    assert.equal(parseTime("2025-01-02T03:04:05Z"), t);
    assert.equal(parseTime("2025-01-02T04:04:05+01:00"), t);
  });
});

describe("determinism", () => {
  it("same seed => byte-identical data (default and edge)", () => {
    for (const o of [DEFAULT, EDGE]) {
      assert.equal(fingerprint(createFakeStore(o)), fingerprint(createFakeStore(o)));
    }
  });
  it("a different seed gives different data", () => {
    assert.notEqual(fingerprint(createFakeStore(DEFAULT)), fingerprint(createFakeStore({ ...DEFAULT, seed: 43 })));
  });
  it("rows are independent of how the range is asked for", () => {
    const s = createFakeStore(DEFAULT);
    const r = s.runs()[3]!;
    const whole = allRows(s, r).map(encodeHistoryLine);
    const pieces = [...s.historyRows(r, 0, 50), ...s.historyRows(r, 50, 51), ...s.historyRows(r, 51, 1e9)].map(
      encodeHistoryLine,
    );
    assert.deepEqual(pieces, whole);
  });
});

describe("default profile", () => {
  const s = createFakeStore(DEFAULT);
  const runs = s.runs();

  it("has the requested number of runs with W&B-shaped ids", () => {
    assert.equal(runs.length, DEFAULT.runs);
    const names = new Set<string>();
    for (const r of runs) {
      assert.match(r.name, /^[a-z0-9]{8}$/);
      names.add(r.name);
      assert.equal(
        Buffer.from(r.storageId, "base64").toString("utf8"),
        `Run:v1:${r.name}:${DEFAULT.project}:${DEFAULT.entity}`,
      );
      assert.match(r.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      assert.match(r.heartbeatAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      assert.ok(parseTime(r.heartbeatAt) >= parseTime(r.createdAt));
      assert.ok(r.user.name && r.user.username);
      assert.equal(r.readOnly, false);
      assert.equal(r.deleted, false);
    }
    assert.equal(names.size, runs.length);
    assert.equal(runs[0]!.createdAt, "2025-01-02T03:04:05");
  });

  it("creation times strictly increase", () => {
    for (let i = 1; i < runs.length; i++) assert.ok(runs[i]!.createdAt > runs[i - 1]!.createdAt);
  });

  it("states: about runningFraction running, the rest mostly finished", () => {
    const big = createFakeStore({ ...DEFAULT, runs: 2000, steps: 5 });
    const n = big.runs().length;
    const count = (st: string) => big.runs().filter((r) => r.state === st).length;
    assert.ok(Math.abs(count("running") / n - 0.1) < 0.03, `running ${count("running")}`);
    assert.ok(count("finished") / n > 0.7);
    for (const st of ["crashed", "failed", "killed"]) assert.ok(count(st) > 0, st);
    const none = createFakeStore({ ...DEFAULT, runningFraction: 0 });
    assert.equal(none.runs().filter((r) => r.state === "running").length, 0, "runningFraction 0 gives no running runs");
  });

  it("history is dense 0..steps-1 with _step/_runtime/_timestamp and `metrics` keys", () => {
    for (const r of runs.slice(0, 5)) {
      const rows = allRows(s, r);
      assert.equal(rows.length, DEFAULT.steps);
      assert.equal(r.historyLineCount, DEFAULT.steps);
      assert.equal(r.firstStep, 0);
      assert.equal(r.lastStep, DEFAULT.steps - 1);
      let prevRt = -1;
      rows.forEach((row, i) => {
        assert.equal(row._step, i);
        assert.equal(Object.keys(row).length, DEFAULT.metrics + 3);
        const rt = row._runtime as number;
        assert.ok(rt > prevRt, "runtime increases");
        prevRt = rt;
        assert.ok(Math.abs((row._timestamp as number) - (parseTime(r.createdAt) + rt)) < 1e-3);
        for (const [k, v] of Object.entries(row)) assert.equal(typeof v, "number", k);
      });
      assert.ok(Number.isInteger(rows[5]!.epoch as number), "epoch is an int");
      assert.ok(!Number.isInteger(rows[5]!.loss as number), "loss is a float");
    }
  });

  it("config is rich and the summary holds the last values", () => {
    const r = runs[0]!;
    for (const k of ["lr", "batch_size", "optimizer", "model", "betas"]) assert.ok(k in r.config, k);
    assert.equal(typeof r.config.model, "object");
    assert.ok(Array.isArray(r.config.betas));
    assert.equal(r.wandbConfig.cli_version, "0.19.1");
    const last = s.historyRows(r, r.lastStep, r.lastStep + 1)[0]!;
    for (const k of Object.keys(last)) assert.equal(r.summary[k], last[k], k);
    assert.deepEqual(r.summary._wandb, { runtime: Math.round(last._runtime as number) });
    assert.ok(typeof r.systemMetrics["system.cpu"] === "number");
  });

  it("events are system-metric rows", () => {
    const ev = s.events(runs[0]!);
    assert.equal(ev.length, 20);
    for (const e of ev) {
      assert.equal(e._wandb, true);
      for (const k of ["_timestamp", "_runtime", "system.cpu", "system.memory_percent", "system.gpu.0.gpu"]) {
        assert.equal(typeof e[k], "number", k);
      }
      assert.ok("system.proc.memory.rssMB" in e);
    }
    assert.equal(createFakeStore({ ...DEFAULT, events: 3 }).events(runs[0]!).length, 3);
  });

  it("files: metadata, log, config, requirements with exact size and base64 md5", () => {
    const r = runs[1]!;
    const files = s.files(r);
    assert.deepEqual(
      files.map((f) => f.name),
      ["wandb-metadata.json", "output.log", "config.yaml", "requirements.txt"],
    );
    for (const f of files) {
      const c = s.fileContent(r, f.name)!;
      assert.equal(c.length, f.sizeBytes);
      assert.equal(f.md5, createHash("md5").update(c).digest("base64"));
    }
    const meta = JSON.parse(s.fileContent(r, "wandb-metadata.json")!.toString("utf8"));
    for (const k of ["os", "python", "host", "program", "args", "gpu", "startedAt"]) assert.ok(k in meta, k);
    assert.equal(s.fileContent(r, "nope.txt"), undefined);
  });

  it("scales: 10,000 runs and 200 x 20,000 x 30 without materialising history", () => {
    const t0 = performance.now();
    const big = createFakeStore({ ...DEFAULT, runs: 10_000, steps: 20_000, metrics: 30 });
    assert.equal(big.runs().length, 10_000);
    const genMs = performance.now() - t0;
    assert.ok(genMs < 15_000, `generation took ${genMs} ms`);
    const r = big.runs()[7]!;
    assert.equal(r.historyLineCount, 20_000);
    const t1 = performance.now();
    let n = 0;
    for (let off = 0; off < 20_000; off += 1000) {
      for (const row of big.historyRows(r, off, off + 1000)) {
        n += encodeHistoryLine(row).length > 0 ? 1 : 0;
      }
    }
    const ms = performance.now() - t1;
    assert.equal(n, 20_000);
    // Loose bound (CI machines vary); the bench measures the real rate.
    assert.ok(ms < 5000, `20k rows took ${ms} ms`);
  });
});

describe("edge profile covers every hard case", () => {
  const s = createFakeStore(EDGE);
  const runs = s.runs();
  const rowsOf = new Map(runs.map((r) => [r.name, allRows(s, r)]));
  const everyRow = [...rowsOf.values()].flat();
  const allKeys = new Set(everyRow.flatMap((r) => Object.keys(r)));
  const values = everyRow.flatMap((r) => Object.values(r));

  it("always holds every scenario, even when fewer runs are asked for", () => {
    assert.equal(createFakeStore({ ...EDGE, runs: 3 }).runs().length, EDGE_SCENARIO_COUNT);
    assert.equal(createFakeStore({ ...EDGE, runs: 15 }).runs().length, 15);
  });

  it("all states", () => {
    const states = new Set(runs.map((r) => r.state));
    for (const st of ["finished", "running", "crashed", "failed", "killed", "preempted"])
      assert.ok(states.has(st as never), st);
  });

  it("hostile keys: unicode, dotted, quotes, spaces, fixed-column names, _custom", () => {
    for (const k of [
      "精度",
      "émoji 🚀",
      "train.loss",
      "a.b.c",
      'val "acc"',
      "it's",
      "key with spaces",
      "step",
      "timestamp",
      "run_id",
      "runtime",
      "_custom",
    ]) {
      assert.ok(allKeys.has(k), k);
    }
  });

  it("special values: NaN, ±Infinity, bigints beyond 2^53 and beyond int64, strings, booleans", () => {
    assert.ok(
      values.some((v) => typeof v === "number" && Number.isNaN(v)),
      "NaN",
    );
    assert.ok(values.includes(Number.POSITIVE_INFINITY), "Infinity");
    assert.ok(values.includes(Number.NEGATIVE_INFINITY), "-Infinity");
    assert.ok(values.includes(9007199254740993n), "2^53+1");
    assert.ok(
      values.some((v) => typeof v === "bigint" && v > 2n ** 64n),
      "beyond int64",
    );
    assert.ok(values.some((v) => typeof v === "string"));
    assert.ok(values.some((v) => typeof v === "boolean"));
    const line = everyRow.map(encodeHistoryLine).join("\n");
    for (const tok of [":NaN", ":Infinity", ":-Infinity", ":9007199254740993", `:${BEYOND_INT64 + 5n}`]) {
      assert.ok(line.includes(tok), tok);
    }
  });

  it("media and histogram values; media files exist with matching sha256 and size", () => {
    const media = values.filter(
      (v): v is FObject => typeof v === "object" && v !== null && (v as FObject)._type === "image-file",
    );
    const hist = values.filter(
      (v): v is FObject => typeof v === "object" && v !== null && (v as FObject)._type === "histogram",
    );
    assert.ok(media.length > 0 && hist.length > 0);
    assert.ok(Array.isArray(hist[0]!.values) && Array.isArray(hist[0]!.bins));
    const run = runs.find((r) => rowsOf.get(r.name)!.some((row) => typeof row.examples === "object"))!;
    const m = rowsOf.get(run.name)!.find((row) => typeof row.examples === "object")!.examples as FObject;
    assert.match(m.path as string, /^media\/images\/examples_\d+_[0-9a-f]{20}\.png$/);
    const content = s.fileContent(run, m.path as string)!;
    assert.ok(content, "media file listed");
    assert.equal(content.length, m.size);
    assert.equal(createHash("sha256").update(content).digest("hex"), m.sha256);
    assert.deepEqual([...content.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });

  it("sparse keys, a late first step, step gaps, no history, a 1000+-key run", () => {
    const byScenario = (pred: (r: FakeRun, rows: FObject[]) => boolean) =>
      runs.find((r) => pred(r, rowsOf.get(r.name)!));
    // sparse key: some rows lack it
    const ks = rowsOf.get(runs[0]!.name)!;
    assert.ok(ks.some((r) => "a.b.c" in r) && ks.some((r) => !("a.b.c" in r)));
    assert.ok(
      byScenario((r) => r.firstStep === 1000),
      "run starting at step 1000",
    );
    assert.ok(
      byScenario((_r, rows) =>
        rows.some((row, i) => i > 0 && (row._step as number) - (rows[i - 1]!._step as number) > 1),
      ),
      "step gaps",
    );
    const empty = byScenario((r) => r.lastStep === -1)!;
    assert.ok(empty, "run without history");
    assert.equal(empty.firstStep, -1);
    assert.equal(empty.historyLineCount, 0);
    assert.deepEqual(rowsOf.get(empty.name), []);
    const wide = byScenario((_r, rows) => new Set(rows.flatMap((x) => Object.keys(x))).size >= 1000);
    assert.ok(wide, "run with 1000+ keys");
  });

  it("a run whose _step sometimes goes on the wire as a float", () => {
    const lines = everyRow.map(encodeHistoryLine);
    assert.ok(lines.some((l) => /"_step":\d+\.0[,}]/.test(l)));
    assert.ok(lines.some((l) => /"_step":\d+[,}]/.test(l)));
    // the truth line keeps it an integer
    assert.ok(everyRow.every((r) => !/"_step":\d+\.0/.test(s.truthLine(r))));
  });

  it("metadata: sweeps, unicode tags, groups, several users, notes with newlines, hostile config", () => {
    assert.ok(runs.some((r) => r.sweepName));
    assert.ok(runs.some((r) => r.tags.some((t) => /[^\x00-\x7f]/.test(t))));
    assert.ok(runs.some((r) => r.group));
    assert.ok(new Set(runs.map((r) => r.user.username)).size >= 3);
    assert.ok(runs.some((r) => r.notes?.includes("\n")));
    const cfg = runs[0]!.config;
    assert.equal((cfg.model as FObject).act, null);
    assert.ok(Array.isArray((cfg.model as FObject).layers));
    assert.equal(cfg.名前, "テスト");
    assert.ok(Number.isNaN(cfg.nan_param as number));
    assert.equal(cfg.big_param, 9007199254740993n);
    const wire = s.wireConfig(runs[0]!);
    assert.ok(wire.includes('"nan_param":{"value":NaN,"desc":null}'));
    assert.ok(wire.includes('"big_param":{"value":9007199254740993,'));
  });

  it("files: hostile names, a 3 MB file for resume tests, exact md5", () => {
    const r = runs[0]!;
    const files = s.files(r);
    const names = files.map((f) => f.name);
    for (const n of ["../../escape.txt", "/abs/path.txt", "a/../../b.txt"]) assert.ok(names.includes(n), n);
    const large = files.find((f) => f.sizeBytes >= 3 * 1024 * 1024)!;
    assert.ok(large, "large file");
    const c = s.fileContent(r, large.name)!;
    assert.equal(c.length, large.sizeBytes);
    assert.equal(createHash("md5").update(c).digest("base64"), large.md5);
    // hostile names only in edge
    const d = createFakeStore(DEFAULT);
    assert.ok(d.runs().every((x) => d.files(x).every((f) => !f.name.includes(".."))));
  });

  it("summary holds nested values, NaN and bigints from the last rows", () => {
    const r = runs[0]!;
    const vals: FValue[] = Object.values(r.summary);
    assert.ok(vals.some((v) => typeof v === "bigint"));
    assert.ok(typeof r.summary.examples === "object");
    assert.ok(s.wireSummary(r).includes('"big_counter":'));
  });
});

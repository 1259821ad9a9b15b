import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeHistoryLine, encodeWandbJson } from "./encode.js";
import { parseTime } from "./generator.js";
import type { FakeRun, FObject, GeneratorOptions } from "./model.js";
import { createFakeStore, FilterError, MutateError, parseFilters } from "./store.js";

const DEFAULT: GeneratorOptions = {
  seed: 3,
  entity: "ent",
  project: "proj",
  runs: 40,
  steps: 100,
  metrics: 6,
  profile: "default",
};
const EDGE: GeneratorOptions = { ...DEFAULT, seed: 9, runs: 12, steps: 40, metrics: 4, profile: "edge" };
const ALL = [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY] as const;

const names = (rs: FakeRun[]) => rs.map((r) => r.name);

/** A small tolerant parser for the tests: bare NaN/Infinity and long integers (exact, as bigint). */
function parseWandb(text: string): unknown {
  const marked = text.replace(
    /("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)|(?<![\d.eE+-])(-?\d{16,})(?![.\deE])/g,
    (m, str, tok, big) => (str ? str : tok ? `{"$tok":"${tok}"}` : big ? `{"$big":"${big}"}` : m),
  );
  return JSON.parse(marked, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if (typeof v.$tok === "string" && Object.keys(v).length === 1) return Number(v.$tok);
      if (typeof v.$big === "string" && Object.keys(v).length === 1) return BigInt(v.$big);
    }
    return v;
  });
}

describe("project identity", () => {
  it("viewer, projectId, internalId", () => {
    const s = createFakeStore(DEFAULT);
    assert.equal(s.entity, "ent");
    assert.equal(s.project, "proj");
    assert.ok(Number.isInteger(s.projectId) && s.projectId > 0);
    assert.equal(Buffer.from(s.internalId, "base64").toString(), "Project:v1:proj:ent");
    assert.equal(s.viewer.entity, "ent");
    assert.ok(s.viewer.id && s.viewer.username && s.viewer.email);
  });
});

describe("query: filters", () => {
  const s = createFakeStore(DEFAULT);
  const runs = s.runs();
  const q = (f: FObject | null, o: string | null = null) => names(s.query(f, o));
  const expect = (pred: (r: FakeRun) => boolean) => names(runs.filter(pred));

  it("no filter = all runs in creation order", () => {
    assert.deepEqual(q(null), names(runs));
    assert.deepEqual(q({}), names(runs));
  });
  it("implicit equality and $eq/$ne", () => {
    assert.deepEqual(
      q({ state: "finished" }),
      expect((r) => r.state === "finished"),
    );
    assert.deepEqual(
      q({ state: { $eq: "running" } }),
      expect((r) => r.state === "running"),
    );
    assert.deepEqual(
      q({ state: { $ne: "finished" } }),
      expect((r) => r.state !== "finished"),
    );
    assert.deepEqual(q({ name: runs[4]!.name }), [runs[4]!.name]);
    assert.deepEqual(q({ display_name: runs[5]!.displayName }), [runs[5]!.name]);
    assert.deepEqual(q({ displayName: runs[5]!.displayName }), [runs[5]!.name]);
  });
  it("$and / $or / $nor", () => {
    const lr = runs[0]!.config.lr as number;
    assert.deepEqual(
      q({ $and: [{ state: "finished" }, { "config.lr": { $gt: lr } }] }),
      expect((r) => r.state === "finished" && (r.config.lr as number) > lr),
    );
    assert.deepEqual(
      q({ $or: [{ state: "running" }, { state: "crashed" }] }),
      expect((r) => r.state === "running" || r.state === "crashed"),
    );
    assert.deepEqual(
      q({ $nor: [{ state: "finished" }] }),
      expect((r) => r.state !== "finished"),
    );
  });
  it("$gt/$gte/$lt/$lte on creation time, with or without zone and fraction", () => {
    const t = runs[10]!.createdAt;
    assert.deepEqual(q({ createdAt: { $gte: t } }), names(runs.slice(10)));
    assert.deepEqual(q({ created_at: { $gt: t } }), names(runs.slice(11)));
    assert.deepEqual(q({ createdAt: { $lt: `${t}Z` } }), names(runs.slice(0, 10)));
    assert.deepEqual(q({ createdAt: { $lte: `${t}.000Z` } }), names(runs.slice(0, 11)));
    assert.deepEqual(
      q({ heartbeatAt: { $gte: runs[3]!.heartbeatAt } }),
      expect((r) => parseTime(r.heartbeatAt) >= parseTime(runs[3]!.heartbeatAt)),
    );
  });
  it("$in/$nin and tags with array-contains semantics", () => {
    const pick = [runs[1]!.name, runs[7]!.name, "nosuchrun"];
    assert.deepEqual(q({ name: { $in: pick } }), [runs[1]!.name, runs[7]!.name]);
    assert.deepEqual(
      q({ name: { $nin: pick } }),
      expect((r) => !pick.includes(r.name)),
    );
    const tag = runs.flatMap((r) => r.tags)[0]!;
    assert.ok(tag);
    assert.deepEqual(
      q({ tags: tag }),
      expect((r) => r.tags.includes(tag)),
    );
    assert.deepEqual(
      q({ tags: { $in: [tag, "zzz"] } }),
      expect((r) => r.tags.includes(tag)),
    );
    assert.deepEqual(
      q({ tags: { $nin: [tag] } }),
      expect((r) => !r.tags.includes(tag)),
    );
    assert.deepEqual(
      q({ tags: { $ne: tag } }),
      expect((r) => !r.tags.includes(tag)),
    );
  });
  it("$exists, $regex, group, jobType, sweep", () => {
    assert.deepEqual(
      q({ group: { $exists: true } }),
      expect((r) => r.group !== null),
    );
    assert.deepEqual(
      q({ group: { $exists: false } }),
      expect((r) => r.group === null),
    );
    assert.deepEqual(
      q({ display_name: { $regex: "^glamorous" } }),
      expect((r) => /^glamorous/.test(r.displayName)),
    );
    assert.deepEqual(
      q({ jobType: "train" }),
      expect((r) => r.jobType === "train"),
    );
    const sw = runs.find((r) => r.sweepName)!.sweepName!;
    assert.deepEqual(
      q({ sweep: sw }),
      expect((r) => r.sweepName === sw),
    );
    assert.deepEqual(q({ "config.nosuchkey": { $exists: true } }), []);
  });
  it("config.<k>.value, config.<k>, nested config paths", () => {
    assert.deepEqual(
      q({ "config.optimizer.value": "adam" }),
      expect((r) => r.config.optimizer === "adam"),
    );
    assert.deepEqual(
      q({ "config.optimizer": "adam" }),
      expect((r) => r.config.optimizer === "adam"),
    );
    assert.deepEqual(
      q({ "config.model.value.name": "resnet50" }),
      expect((r) => (r.config.model as FObject).name === "resnet50"),
    );
    assert.deepEqual(
      q({ "config.batch_size.value": { $in: [16, 32] } }),
      expect((r) => [16, 32].includes(r.config.batch_size as number)),
    );
  });
  it("summary_metrics.<k>", () => {
    const v = runs[2]!.summary.loss as number;
    assert.deepEqual(
      q({ "summary_metrics.loss": { $lte: v } }),
      expect((r) => (r.summary.loss as number) <= v),
    );
    assert.deepEqual(q({ "summary_metrics._step": DEFAULT.steps - 1 }), names(runs));
  });
  it("an invalid column or operator is a FilterError", () => {
    assert.throws(() => s.query({ "summary.epoch": 9 }, null), FilterError);
    assert.throws(() => s.query({ nosuchcolumn: 1 }, null), FilterError);
    assert.throws(() => s.query({ state: { $all: ["x"] } }, null), FilterError);
    assert.throws(() => s.query({ $and: { state: "x" } } as unknown as FObject, null), FilterError);
    assert.throws(() => parseFilters("{not json"), FilterError);
    assert.equal(parseFilters(""), null);
    assert.deepEqual(parseFilters('{"state":"finished"}'), { state: "finished" });
  });
  it("edge: unicode tags, dotted config keys, NaN-valued config", () => {
    const e = createFakeStore(EDGE);
    const er = e.runs();
    assert.deepEqual(names(e.query({ tags: "🚀" }, null)), names(er.filter((r) => r.tags.includes("🚀"))));
    assert.ok(e.query({ tags: "🚀" }, null).length > 0);
    assert.ok(e.query({ "config.a.b.value": "dotted config key" }, null).length > 0);
    assert.ok(e.query({ "config.model.value.nested.deep.deeper.x": 1 }, null).length > 0);
    assert.ok(e.query({ "summary_metrics.train.loss": { $gt: -1e9 } }, null).length > 0);
  });
});

describe("query: order", () => {
  const s = createFakeStore(DEFAULT);
  const runs = s.runs();
  it("created_at both ways", () => {
    assert.deepEqual(names(s.query(null, "+created_at")), names(runs));
    assert.deepEqual(names(s.query(null, "created_at")), names(runs));
    assert.deepEqual(names(s.query(null, "-created_at")), names(runs).reverse());
  });
  it("heartbeat_at", () => {
    const got = s.query(null, "+heartbeat_at").map((r) => parseTime(r.heartbeatAt));
    assert.deepEqual(
      got,
      [...got].sort((a, b) => a - b),
    );
    const down = s.query(null, "-heartbeat_at").map((r) => parseTime(r.heartbeatAt));
    assert.deepEqual(
      down,
      [...down].sort((a, b) => b - a),
    );
  });
  it("config.<k>.value with ties in creation order", () => {
    const got = s.query(null, "config.batch_size.value");
    for (let i = 1; i < got.length; i++) {
      const a = got[i - 1]!;
      const b = got[i]!;
      const c = (a.config.batch_size as number) - (b.config.batch_size as number);
      assert.ok(c < 0 || (c === 0 && runs.indexOf(a) < runs.indexOf(b)), "sorted, ties stable");
    }
    const down = s.query(null, "-config.batch_size.value");
    for (let i = 1; i < down.length; i++) {
      const c = (down[i - 1]!.config.batch_size as number) - (down[i]!.config.batch_size as number);
      assert.ok(c > 0 || (c === 0 && runs.indexOf(down[i - 1]!) < runs.indexOf(down[i]!)));
    }
  });
  it("summary_metrics.<k> with missing values last both ways", () => {
    const e = createFakeStore(EDGE);
    for (const o of ["summary_metrics.loss", "-summary_metrics.loss"]) {
      const got = e.query(null, o);
      const vals = got.map((r) => r.summary.loss as number | undefined);
      const firstMissing = vals.indexOf(undefined);
      assert.ok(firstMissing > 0, "some runs lack loss");
      assert.ok(
        vals.slice(firstMissing).every((v) => v === undefined),
        `${o}: missing last`,
      );
      const present = vals.slice(0, firstMissing) as number[];
      const sorted = [...present].sort((a, b) => (o.startsWith("-") ? b - a : a - b));
      assert.deepEqual(present, sorted);
    }
  });
  it("an unknown order key keeps creation order", () => {
    assert.deepEqual(names(s.query(null, "-summary.step")), names(runs));
    assert.deepEqual(
      names(s.query({ state: "finished" }, "+nonsense")),
      names(runs.filter((r) => r.state === "finished")),
    );
  });
});

describe("wire encodings", () => {
  const s = createFakeStore(EDGE);
  const r = s.runs()[0]!;
  it("wireConfig wraps values as {value, desc} and holds _wandb", () => {
    const c = parseWandb(s.wireConfig(r)) as Record<string, FObject>;
    for (const k of Object.keys(r.config)) {
      assert.ok("value" in c[k]! && "desc" in c[k]!, k);
    }
    assert.ok(Number.isNaN(c.nan_param!.value as number));
    assert.equal(c.big_param!.value, 9007199254740993n);
    assert.equal(c.inf_param!.value, Number.POSITIVE_INFINITY);
    assert.deepEqual(Object.keys(c._wandb!), ["value"]);
    assert.equal((c._wandb!.value as FObject).cli_version, "0.19.1");
  });
  it("wireSummary / wireSystemMetrics are W&B JSON of the run's objects", () => {
    assert.equal(s.wireSummary(r), encodeWandbJson(r.summary));
    assert.equal(s.wireSystemMetrics(r), encodeWandbJson(r.systemMetrics));
    const sum = parseWandb(s.wireSummary(r)) as FObject;
    assert.equal(sum._step, r.lastStep);
    assert.equal(typeof (sum._wandb as FObject).runtime, "number");
  });
  it("encodeWandbJson: bare tokens, exact bigints, escaped keys", () => {
    assert.equal(
      encodeWandbJson({
        a: Number.NaN,
        b: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
        'c"d': 2n ** 70n,
        e: null,
      }),
      '{"a":NaN,"b":[Infinity,-Infinity],"c\\"d":1180591620717411303424,"e":null}',
    );
  });
  it("history lines parse back to the rows (fast and slow encoder paths agree)", () => {
    for (const run of s.runs()) {
      for (const row of s.historyRows(run, ...ALL)) {
        const line = s.encodeHistoryLine(row);
        const back = parseWandb(line) as FObject;
        assert.equal(encodeWandbJson(back), s.truthLine(row));
        assert.equal(s.truthLine(row), encodeWandbJson(row));
      }
    }
  });
  it("truthRun is the canonical object", () => {
    const t = s.truthRun(r);
    for (const k of [
      "name",
      "storageId",
      "displayName",
      "state",
      "tags",
      "group",
      "jobType",
      "sweepName",
      "commit",
      "createdAt",
      "heartbeatAt",
      "description",
      "notes",
      "user",
      "config",
      "summary",
      "systemMetrics",
      "lastStep",
      "historyLineCount",
      "files",
    ]) {
      assert.ok(k in t, k);
    }
    assert.deepEqual(Object.keys(t.user as FObject), ["name", "username"]);
    assert.ok(!("_wandb" in (t.config as FObject)), "config is unwrapped, without _wandb");
    const files = t.files as FObject[];
    assert.deepEqual(Object.keys(files[0]!), ["name", "size", "md5"]);
    const line = s.truthLine(t);
    assert.ok(line.includes("NaN") && !line.includes("\n"));
  });
});

describe("historyKeys", () => {
  it("lastStep and per-key type counts equal the rows", () => {
    const s = createFakeStore(EDGE);
    for (const r of s.runs()) {
      const hk = s.historyKeys(r);
      assert.equal(hk.lastStep, r.lastStep);
      const rows = s.historyRows(r, ...ALL);
      const counts = new Map<string, number>();
      for (const row of rows) for (const k of Object.keys(row)) counts.set(k, (counts.get(k) ?? 0) + 1);
      const keys = hk.keys as Record<string, { typeCounts: Array<{ type: string; count: number }> }>;
      assert.deepEqual(new Set(Object.keys(keys)), new Set(counts.keys()), r.name);
      for (const [k, n] of counts) assert.equal(keys[k]!.typeCounts[0]!.count, n, k);
      if (rows.length > 0 && "examples" in keys) assert.equal(keys.examples!.typeCounts[0]!.type, "image-file");
    }
  });
});

describe("history access", () => {
  const s = createFakeStore(EDGE);
  const runs = s.runs();
  const sparse = runs.find((r) => {
    const rows = s.historyRows(r, ...ALL);
    return rows.some((x, i) => i > 0 && (x._step as number) - (rows[i - 1]!._step as number) > 1);
  })!;

  it("historyRows: minStep inclusive, maxStep exclusive, step order, sparse numbering", () => {
    const all = s.historyRows(sparse, ...ALL);
    const steps = all.map((r) => r._step as number);
    assert.deepEqual(
      steps,
      [...steps].sort((a, b) => a - b),
    );
    const a = steps[3]!;
    const b = steps[10]!;
    assert.deepEqual(
      s.historyRows(sparse, a, b).map((r) => r._step),
      steps.filter((x) => x >= a && x < b),
    );
    assert.deepEqual(s.historyRows(sparse, b, b), []);
    // a window falling in a gap is empty while later windows have data
    const gapStart = steps.findIndex((x, i) => i > 0 && x - steps[i - 1]! > 5);
    assert.ok(gapStart > 0);
    assert.deepEqual(s.historyRows(sparse, steps[gapStart - 1]! + 1, steps[gapStart]!), []);
    const late = runs.find((r) => r.firstStep === 1000)!;
    assert.deepEqual(s.historyRows(late, 0, 1000), []);
    assert.equal(s.historyRows(late, 0, 1001)[0]!._step, 1000);
  });

  it("sampleHistory: all rows when samples >= count, about `samples` random rows otherwise", () => {
    const big = createFakeStore({ ...DEFAULT, steps: 5000 });
    const r = big.runs()[0]!;
    assert.equal(big.sampleHistory(r, 5000).length, 5000);
    assert.equal(big.sampleHistory(r, 100, 200, 300).length, 100);
    const a = big.sampleHistory(r, 500);
    const b = big.sampleHistory(r, 500);
    for (const x of [a, b]) {
      assert.ok(x.length >= 400 && x.length <= 600, `${x.length}`);
      const steps = x.map((row) => row._step as number);
      assert.deepEqual(
        steps,
        [...new Set(steps)].sort((p, q) => p - q),
        "distinct, ordered",
      );
    }
    assert.notDeepEqual(
      a.map((x) => x._step),
      b.map((x) => x._step),
      "random between calls",
    );
    const w = big.sampleHistory(r, 50, 1000, 2000);
    assert.ok(w.every((row) => (row._step as number) >= 1000 && (row._step as number) < 2000));
    assert.deepEqual(big.sampleHistory(r, 0), []);
  });

  it("sampledHistory: rows having every key, projected, maxStep inclusive, at most `samples` evenly", () => {
    const r = runs[0]!; // kitchen sink: a.b.c every 2nd step, examples every 10th
    const got = s.sampledHistory(r, { keys: ["a.b.c", "examples"], minStep: 0, maxStep: 100 });
    assert.deepEqual(
      got.map((x) => x._step),
      [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    );
    for (const row of got) assert.deepEqual(Object.keys(row).sort(), ["_step", "a.b.c", "examples"].sort());
    const full = s.historyRows(r, 20, 21)[0]!;
    assert.equal(got[2]!["a.b.c"], full["a.b.c"]);
    const few = s.sampledHistory(r, { keys: ["loss"], samples: 5, minStep: 0, maxStep: 99 });
    assert.deepEqual(
      few.map((x) => x._step),
      [0, 25, 50, 74, 99],
    );
    assert.deepEqual(s.sampledHistory(r, { keys: ["nosuchkey"] }), []);
    assert.equal(s.sampledHistory(r, { keys: ["_step"], samples: 10_000 }).length, r.historyLineCount);
    // the live-data fallback shape: samples = window, maxStep = window end - 1
    const win = s.sampledHistory(r, { keys: ["loss", "_step"], minStep: 1000, maxStep: 1999, samples: 1000 });
    assert.equal(win.length, r.lastStep + 1 - 1000);
  });

  it("events are the full list", () => {
    assert.equal(s.events(runs[0]!).length, 20);
  });
});

describe("liveData and exports boundary", () => {
  it("exported runs have no live data; running runs are all live; partial exports split", () => {
    const s = createFakeStore(EDGE);
    for (const r of s.runs()) {
      const live = s.liveData(r, ["_step"]);
      const steps = s.historyRows(r, ...ALL).map((x) => x._step as number);
      assert.deepEqual(
        live.map((x) => x._step),
        steps.filter((x) => x >= r.exportedThrough),
        r.name,
      );
      if (r.state === "running" || r.state === "preempted") assert.equal(r.exportedThrough, 0);
      if (r.state === "finished" && r.exportedThrough > 0) {
        assert.ok(r.exportedThrough === r.lastStep + 1 || live.length > 0);
      }
    }
    assert.ok(
      s.runs().some((r) => r.exportedThrough > 0 && s.liveData(r, ["_step"]).length > 0),
      "partial export",
    );
    const r = s.runs().find((x) => x.state === "running")!;
    const proj = s.liveData(r, ["_step", "loss", "nosuch"]);
    assert.ok(proj.every((x) => Object.keys(x).every((k) => k === "_step" || k === "loss")));
  });
  it("with exports off, everything is live", () => {
    const s = createFakeStore({ ...EDGE, exportsEnabled: false } as GeneratorOptions);
    for (const r of s.runs()) {
      assert.equal(r.exportedThrough, 0);
      assert.equal(s.liveData(r, ["_step"]).length, r.historyLineCount);
    }
    s.exportsEnabled = true;
    assert.ok(s.runs().some((r) => r.exportedThrough > 0));
  });
});

describe("files", () => {
  it("fileContent of every listed file matches its size", () => {
    const s = createFakeStore(EDGE);
    for (const r of s.runs().slice(1)) {
      for (const f of s.files(r)) assert.equal(s.fileContent(r, f.name)!.length, f.sizeBytes, f.name);
    }
  });
});

describe("mutations", () => {
  const fresh = () => createFakeStore(DEFAULT);
  const maxHeartbeat = (s: ReturnType<typeof fresh>) => Math.max(...s.runs().map((r) => parseTime(r.heartbeatAt)));

  it("appendSteps extends history, summary and heartbeat; a finished run stays exported only through the old boundary", () => {
    const s = fresh();
    const r = s.runs().find((x) => x.state === "finished")!;
    const before = { last: r.lastStep, exp: r.exportedThrough, hb: maxHeartbeat(s) };
    assert.equal(before.exp, before.last + 1);
    s.mutate({ op: "appendSteps", run: r.name, steps: 25 });
    assert.equal(r.lastStep, before.last + 25);
    assert.equal(r.historyLineCount, DEFAULT.steps + 25);
    assert.equal(r.exportedThrough, before.exp);
    assert.equal(r.state, "finished");
    assert.ok(parseTime(r.heartbeatAt) > before.hb, "heartbeat moved past every other");
    const rows = s.historyRows(r, before.last - 1, Number.POSITIVE_INFINITY);
    assert.deepEqual(
      rows.map((x) => x._step),
      Array.from({ length: 27 }, (_, i) => before.last - 1 + i),
    );
    for (let i = 1; i < rows.length; i++) assert.ok((rows[i]!._runtime as number) > (rows[i - 1]!._runtime as number));
    assert.equal(r.summary._step, r.lastStep);
    assert.equal(r.summary.loss, rows[rows.length - 1]!.loss);
    assert.deepEqual(
      s.liveData(r, ["_step"]).map((x) => x._step),
      rows.slice(2).map((x) => x._step),
    );
    assert.equal((s.historyKeys(r) as FObject).lastStep, r.lastStep);
    assert.throws(() => s.mutate({ op: "appendSteps", run: r.name, steps: 0 }), MutateError);
  });

  it("finishRun exports through lastStep+1 and clears live data", () => {
    const s = fresh();
    const r = s.runs().find((x) => x.state === "running")!;
    assert.equal(r.exportedThrough, 0);
    s.mutate({ op: "appendSteps", run: r.name, steps: 3 });
    s.mutate({ op: "finishRun", run: r.name });
    assert.equal(r.state, "finished");
    assert.equal(r.exportedThrough, r.lastStep + 1);
    assert.deepEqual(s.liveData(r, ["_step"]), []);
    assert.equal(r.summary._step, r.lastStep);
  });

  it("setState, setTags, setSummary (merge) bump heartbeat monotonically and refresh queries", () => {
    const s = fresh();
    const r = s.runs()[2]!;
    assert.equal(s.query({ tags: "brand-new" }, null).length, 0);
    let hb = maxHeartbeat(s);
    s.mutate({ op: "setTags", run: r.name, tags: ["brand-new", "ü"] });
    assert.deepEqual(r.tags, ["brand-new", "ü"]);
    assert.deepEqual(names(s.query({ tags: "brand-new" }, null)), [r.name]);
    assert.ok(parseTime(r.heartbeatAt) > hb);
    hb = parseTime(r.heartbeatAt);
    s.mutate({ op: "setState", run: r.name, state: "crashed" });
    assert.equal(r.state, "crashed");
    assert.ok(parseTime(r.heartbeatAt) > hb);
    hb = parseTime(r.heartbeatAt);
    const oldLoss = r.summary.loss;
    s.mutate({ op: "setSummary", run: r.name, summary: { best: 0.5, nested: { x: Number.NaN } } });
    assert.equal(r.summary.best, 0.5);
    assert.equal(r.summary.loss, oldLoss);
    assert.ok(s.wireSummary(r).includes('"nested":{"x":NaN}'));
    assert.ok(parseTime(r.heartbeatAt) > hb);
    assert.deepEqual(names(s.query({ "summary_metrics.best": 0.5 }, null)), [r.name]);
  });

  it("addRuns creates running runs after all existing ones; deleteRun hides a run", () => {
    const s = fresh();
    const before = s.runs();
    const lastCreated = before[before.length - 1]!.createdAt;
    s.mutate({ op: "addRuns", count: 3 });
    const after = s.runs();
    assert.equal(after.length, before.length + 3);
    const added = after.slice(-3);
    for (const r of added) {
      assert.ok(r.createdAt > lastCreated);
      assert.equal(r.state, "running");
      assert.equal(r.exportedThrough, 0);
      assert.equal(s.run(r.name), r);
    }
    assert.ok(added[0]!.createdAt < added[1]!.createdAt);
    assert.deepEqual(names(s.query(null, "-created_at")).slice(0, 3), names(added).reverse());
    const gone = after[5]!;
    s.mutate({ op: "deleteRun", run: gone.name });
    assert.equal(gone.deleted, true);
    assert.equal(s.run(gone.name), undefined);
    assert.ok(!names(s.runs()).includes(gone.name));
    assert.ok(!names(s.query(null, null)).includes(gone.name));
    assert.throws(() => s.mutate({ op: "setState", run: gone.name, state: "finished" }), MutateError);
    assert.throws(() => s.mutate({ op: "finishRun", run: "nosuchrun" }), MutateError);
  });

  it("mutations are deterministic", () => {
    const run = (s: ReturnType<typeof fresh>) => {
      s.mutate({ op: "addRuns", count: 2 });
      const r = s.runs()[1]!;
      s.mutate({ op: "appendSteps", run: r.name, steps: 7 });
      s.mutate({ op: "finishRun", run: s.runs().at(-1)!.name });
      return s
        .runs()
        .map(
          (x) =>
            s.truthLine(s.truthRun(x)) +
            s
              .historyRows(x, ...ALL)
              .map(encodeHistoryLine)
              .join(""),
        )
        .join("\n");
    };
    assert.equal(run(fresh()), run(fresh()));
  });
});

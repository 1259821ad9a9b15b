import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadPickle, run, sampleRow, sampleRun, tempDir } from "../../test/support/writer-fixtures.js";
import type { JsonObject, JsonValue } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { RUN_FIELDS } from "../model/records.js";
import { encodeLong, PickleEncoder, type PickleValue, PyDateTime } from "./pickle-encoder.js";
import { toUtcInstant } from "./rows.js";
import { openProjectWriter } from "./writer.js";

/** What python3 should load for a JS value, in loadPickle's canonical form. */
function py(v: PickleValue): unknown {
  if (typeof v === "number") return Number.isSafeInteger(v) && !Object.is(v, -0) ? BigInt(v) : v;
  if (v instanceof PyDateTime) {
    const d = new Date(v.instant.seconds * 1000);
    return {
      $datetime: [
        d.getUTCFullYear(),
        d.getUTCMonth() + 1,
        d.getUTCDate(),
        d.getUTCHours(),
        d.getUTCMinutes(),
        d.getUTCSeconds(),
        v.instant.micros,
      ],
      utc: true,
    };
  }
  if (Array.isArray(v)) return v.map(py);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const x = py((v as Record<string, PickleValue>)[k]!);
      if (k === "__proto__") Object.defineProperty(out, k, { value: x, enumerable: true, writable: true });
      else out[k] = x;
    }
    return out;
  }
  return v;
}

async function roundTrip(v: PickleValue): Promise<unknown> {
  const dir = await tempDir();
  const path = join(dir, "v.pkl");
  await writeFile(path, new PickleEncoder().proto().value(v).stop().take());
  return loadPickle(path);
}

function dt(ts: number): PyDateTime {
  return new PyDateTime(toUtcInstant(ts)!);
}

describe("pickle encoder, loaded by real python3", () => {
  test("scalars: ints of every width, floats, NaN/±Inf, -0, None, bools", async () => {
    const ints: JsonValue[] = [
      0,
      1,
      255,
      256,
      65535,
      65536,
      -1,
      -128,
      -129,
      2 ** 31 - 1,
      2 ** 31,
      -(2 ** 31),
      -(2 ** 31) - 1,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      2n ** 53n + 1n,
      2n ** 63n - 1n,
      2n ** 63n,
      2n ** 64n,
      -(2n ** 64n),
      -(2n ** 63n),
      2n ** 200n + 12345n,
      -(2n ** 2100n) + 1n, // more than 255 bytes: LONG4
      127n,
      128n,
      -(2n ** 31n),
    ];
    const floats: JsonValue[] = [0.5, -2.25, 1e300, -1e-300, 5e-324, Number.NaN, Infinity, -Infinity, -0, 2 ** 60];
    const others: JsonValue[] = [null, true, false];
    const v = [...ints, ...floats, ...others];
    assert.deepStrictEqual(await roundTrip(v), py(v));
  });

  test("2.0 becomes int 2 (JS cannot tell them apart); integral doubles beyond 2^53 stay floats", async () => {
    assert.deepStrictEqual(await roundTrip([2.0, 1e20, 2 ** 53]), [2n, 1e20, 2 ** 53]);
  });

  test("encodeLong matches Python's int.to_bytes(signed) minimal form", async () => {
    const values = [1n, -1n, 127n, 128n, 255n, 256n, -128n, -129n, -256n, 2n ** 64n, -(2n ** 64n), 2n ** 70n - 1n];
    const ours = values.map((n) => encodeLong(n).toString("hex"));
    const script = `
import json, sys
vals = [int(s) for s in json.loads(sys.argv[1])]
out = []
for x in vals:
    n = (x.bit_length() >> 3) + 1
    b = x.to_bytes(n, "little", signed=True)
    if x < 0 and n > 1 and b[-1] == 0xff and (b[-2] & 0x80) != 0:
        b = b[:-1]
    out.append(b.hex())
print(json.dumps(out))`;
    const theirs = JSON.parse(await run("python3", ["-c", script, JSON.stringify(values.map(String))]));
    assert.deepStrictEqual(ours, theirs);
  });

  test("strings: empty, unicode, emoji, long (short/4-byte length forms), lone surrogates", async () => {
    const v = [
      "",
      "a",
      "héllo wörld",
      "日本語のテキスト",
      "emoji 🎉👩‍🔬",
      "x".repeat(85),
      "x".repeat(86),
      "é".repeat(200),
      "y".repeat(70_000),
      'quote" back\\slash \n newline \t tab \u0000 nul',
      "lone \ud800 high and \udc00 low",
    ];
    assert.deepStrictEqual(await roundTrip(v), py(v));
  });

  test("nested dicts and lists, batches beyond 1000 items, keys repeated through the memo", async () => {
    const big: JsonObject = {};
    for (let i = 0; i < 2500; i++) big[`k${i}`] = i % 7 === 0 ? Number.NaN : i * 0.5;
    const rows: JsonValue[] = [];
    for (let i = 0; i < 1200; i++) rows.push({ loss: i / 3, step: i, "a.b": { c: [i, "x", null] }, 日本: true });
    const weird: JsonObject = { "": 1, " ": 2, "a.b.c": 3, 'q"uote': 4, "emoji 🎉": 5 };
    Object.defineProperty(weird, "__proto__", { value: 6, enumerable: true, writable: true });
    const v: JsonValue = { big, rows, weird, empty: {}, emptyList: [], deep: [[[[{ x: [[]] }]]]] };
    assert.deepStrictEqual(await roundTrip(v), py(v));
  });

  test("datetimes are timezone-aware UTC and equal datetime.fromtimestamp(ts, timezone.utc)", async () => {
    const stamps = [
      0,
      1700000000,
      1700000000.123456,
      1700000000.5,
      1.5,
      -1.5,
      -0.0000005,
      0.0000005,
      0.0000015,
      1e9 + 0.9999996,
      -62135596800,
      253402300799.5,
      1234567890.000001,
      951782400,
      1709210096.75,
    ];
    for (let i = 0; i < 200; i++) stamps.push(Math.random() * 4e9 - 1e9);
    const dir = await tempDir();
    const path = join(dir, "dt.pkl");
    const enc = new PickleEncoder().proto().list(stamps.map(dt)).stop();
    await writeFile(path, enc.take());
    const script = `
import datetime, json, pickle, sys
got = pickle.load(open(sys.argv[1], "rb"))
stamps = json.loads(sys.argv[2])
bad = []
for ts, d in zip(stamps, got):
    want = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    if d != want or d.tzinfo is not datetime.timezone.utc or d.isoformat() != want.isoformat():
        bad.append([ts, d.isoformat(), want.isoformat()])
print(json.dumps({"n": len(got), "bad": bad}))`;
    const res = JSON.parse(await run("python3", ["-c", script, path, JSON.stringify(stamps)]));
    assert.deepStrictEqual(res, { n: stamps.length, bad: [] });
  });
});

async function* slowBatches(rows: HistoryRecord[], size: number): AsyncGenerator<HistoryRecord[]> {
  for (let i = 0; i < rows.length; i += size) {
    await new Promise((r) => setImmediate(r));
    yield rows.slice(i, i + size);
  }
}

describe("pickle project writer", () => {
  test("runs and histories files in the original's shapes, aligned, key order kept", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "pkl",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: true,
    });
    const runs = [sampleRun("r1"), sampleRun("r2", { config: { big: 2n ** 70n, nan: Number.NaN } }), sampleRun("r3")];
    const h1 = Array.from({ length: 2345 }, (_, i) => sampleRow("r1", i, { loss: 1 / (i + 1), step: i, acc: i % 2 }));
    const h3 = [
      sampleRow("r3", 0, { "unicode ✓": "ok", nested: { a: [1, 2] } }, { extra: { _custom: 1 } }),
      sampleRow("r3", 1, { x: 1 }, { timestamp: null, runtime: null, wandb_metadata: { runtime: 3 } }),
      sampleRow("r3", 2, { x: 2 }, { timestamp: 1e15 }), // beyond year 9999: null, raw value kept in extra
    ];
    assert.deepStrictEqual(await w.writeRun(runs[0]!, slowBatches(h1, 1000)), { historyRows: 2345 });
    assert.deepStrictEqual(await w.writeRun(runs[1]!, []), { historyRows: 0 });
    assert.deepStrictEqual(await w.writeRun(runs[2]!, [h3.slice(0, 1), [], h3.slice(1)]), { historyRows: 3 });
    const { files } = await w.close();
    assert.deepStrictEqual(files, [join(dir, "ent_proj_histories.pkl"), join(dir, "ent_proj_runs.pkl")]);

    const gotRuns = (await loadPickle(join(dir, "ent_proj_runs.pkl"))) as Record<string, unknown>[];
    assert.equal(gotRuns.length, 3);
    for (const [i, r] of gotRuns.entries()) {
      assert.deepStrictEqual(Object.keys(r), [...RUN_FIELDS]);
      const want: Record<string, PickleValue> = {};
      for (const k of RUN_FIELDS) want[k] = runs[i]![k] as PickleValue;
      assert.deepStrictEqual(r, py(want));
    }
    assert.equal(gotRuns[0]!.created_at, "2024-01-02T03:04:05.000Z", "created_at stays an ISO string");

    const gotHist = (await loadPickle(join(dir, "ent_proj_histories.pkl"))) as Record<string, unknown>[][];
    assert.equal(gotHist.length, 3, "aligned with runs");
    assert.deepStrictEqual(
      gotHist.map((h) => h.length),
      [2345, 0, 3],
    );
    const expectRow = (r: HistoryRecord, extra = r.extra) =>
      py({
        run_id: r.run_id,
        step: r.step,
        timestamp: r.timestamp === null || toUtcInstant(r.timestamp) === null ? null : dt(r.timestamp),
        runtime: r.runtime,
        wandb_metadata: r.wandb_metadata,
        metrics: r.metrics,
        extra,
      });
    assert.deepStrictEqual(Object.keys(gotHist[0]![0]!), [
      "run_id",
      "step",
      "timestamp",
      "runtime",
      "wandb_metadata",
      "metrics",
      "extra",
    ]);
    assert.deepStrictEqual(
      gotHist[0],
      h1.map((r) => expectRow(r)),
    );
    assert.deepStrictEqual(gotHist[2]![0], expectRow(h3[0]!));
    assert.deepStrictEqual(gotHist[2]![1], expectRow(h3[1]!));
    assert.deepStrictEqual(gotHist[2]![2], expectRow(h3[2]!, { _timestamp: 1e15 }));
    assert.deepStrictEqual(
      (gotHist[0]![1]!.timestamp as { $datetime: number[] }).$datetime,
      [2023, 11, 14, 22, 13, 21, 500000],
    );
  });

  test("runs-only: no histories file; system metrics file aligned with runs", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "pkl",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: false,
      withSystemMetrics: true,
    });
    const sys = [{ run_id: "r1", timestamp: 1700000000, runtime: 2, metrics: { "system.gpu.0.gpu": 55.5 } }];
    assert.deepStrictEqual(await w.writeRun(sampleRun("r1"), [[sampleRow("r1", 0, { a: 1 })]], sys), {
      historyRows: 0,
    });
    await w.writeRun(sampleRun("r2"), []);
    const { files } = await w.close();
    assert.deepStrictEqual(files, [join(dir, "ent_proj_system_metrics.pkl"), join(dir, "ent_proj_runs.pkl")]);
    assert.equal(existsSync(join(dir, "ent_proj_histories.pkl")), false);
    const got = await loadPickle(join(dir, "ent_proj_system_metrics.pkl"));
    assert.deepStrictEqual(got, [
      [py({ run_id: "r1", timestamp: dt(1700000000), runtime: 2, metrics: { "system.gpu.0.gpu": 55.5 } })],
      [],
    ]);
  });

  test("an empty project gives empty lists", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({ format: "pkl", outputDir: dir, entity: "e", project: "p", withHistory: true });
    await w.close();
    assert.deepStrictEqual(await loadPickle(join(dir, "e_p_runs.pkl")), []);
    assert.deepStrictEqual(await loadPickle(join(dir, "e_p_histories.pkl")), []);
  });
});

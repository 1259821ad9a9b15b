import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { JsonObject } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { cellsOf, HistorySpool } from "./spool.js";

function rec(step: number, metrics: JsonObject, extra: JsonObject = {}): HistoryRecord {
  return { run_id: "r", step, timestamp: step + 0.5, runtime: null, wandb_metadata: {}, metrics, extra };
}

async function all(spool: HistorySpool): Promise<HistoryRecord[][]> {
  const out: HistoryRecord[][] = [];
  for await (const b of spool) out.push(b);
  return out;
}

describe("HistorySpool", () => {
  test("small histories stay in memory; batches come back in order", async () => {
    const s = new HistorySpool(1000);
    const a = [rec(0, { x: 1 }), rec(1, { x: 2 })];
    const b = [rec(2, { x: 3 })];
    s.add(a);
    s.add([]);
    s.add(b);
    assert.equal(s.spooledBatches, 0);
    const got = await all(s);
    assert.equal(got.length, 2);
    assert.deepEqual(got, [a, b], "the same records (packed while held, rebuilt when read)");
    s.close();
  });

  test("past the memory budget, batches go to disk and come back exactly, in order", async () => {
    const dir = await mkdtemp(join(tmpdir(), "drw-spool-"));
    try {
      const proto = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as JsonObject;
      const odd: JsonObject = {
        nan: Number.NaN,
        inf: Number.POSITIVE_INFINITY,
        ninf: Number.NEGATIVE_INFINITY,
        negzero: -0,
        big: 2n ** 70n,
        "dotted.key": "ünïcødé ✓ \u0000",
        nested: { a: [1, { b: null }], deep: { c: "x" } },
        proto,
      };
      const batches = Array.from({ length: 5 }, (_, i) => [
        rec(i * 2, { ...odd, i }),
        rec(i * 2 + 1, { i }, { _x: i }),
      ]);
      const s = new HistorySpool(cellsOf(batches[0]!), dir);
      for (const b of batches) s.add(b);
      assert.equal(s.spooledBatches, 4, "the first batch fits in memory, the rest are spooled");
      assert.equal(readdirSync(dir).length, 1);
      const got = await all(s);
      assert.equal(got.length, 5);
      for (let i = 0; i < 5; i++) {
        const m = got[i]![0]!.metrics;
        assert.ok(Number.isNaN(m.nan));
        assert.equal(m.inf, Number.POSITIVE_INFINITY);
        assert.equal(m.ninf, Number.NEGATIVE_INFINITY);
        assert.ok(Object.is(m.negzero, -0), "-0 keeps its sign");
        assert.equal(m.big, 2n ** 70n);
        assert.equal(m["dotted.key"], "ünïcødé ✓ \u0000");
        assert.deepEqual(m.nested, { a: [1, { b: null }], deep: { c: "x" } });
        const p = m.proto as JsonObject;
        assert.ok(Object.hasOwn(p, "__proto__"), "__proto__ stays an own key");
        assert.equal(({} as { polluted?: boolean }).polluted, undefined);
        assert.equal(m.i, i);
        assert.deepEqual(got[i]![1], batches[i]![1]);
      }
      // iterable again (a retried write reads the same rows)
      assert.equal((await all(s)).length, 5);
      s.close();
      assert.equal(readdirSync(dir).length, 0, "the temp file is removed");
      s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a spool never read is still removed on close", async () => {
    const dir = await mkdtemp(join(tmpdir(), "drw-spool-"));
    try {
      const s = new HistorySpool(0, dir);
      s.add([rec(0, { a: 1 })]);
      const [f] = readdirSync(dir);
      assert.ok(f && existsSync(join(dir, f)));
      s.close();
      assert.equal(readdirSync(dir).length, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

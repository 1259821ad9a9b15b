import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deserialize, serialize } from "node:v8";
import { mulberry32 as prng } from "../../fake-wandb/random.js";
import type { JsonObject, JsonValue } from "./json-value.js";
import { packHistory, unpackHistory } from "./packed-history.js";
import type { HistoryRecord } from "./records.js";

function rec(
  step: number,
  metrics: JsonObject,
  extra: JsonObject = {},
  more: Partial<HistoryRecord> = {},
): HistoryRecord {
  return { run_id: "r", step, timestamp: step + 0.5, runtime: step * 2, wandb_metadata: {}, metrics, extra, ...more };
}

/** Equal as dr-wandb needs: same own keys in the same order, numbers by Object.is, the rest deeply. */
function assertSame(got: HistoryRecord[], want: HistoryRecord[]): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    assert.deepEqual(Object.keys(g), Object.keys(w), `record ${i}'s fields`);
    for (const f of ["run_id", "step", "timestamp", "runtime"] as const) assert.ok(Object.is(g[f], w[f]), `${i}.${f}`);
    assert.deepEqual(g.wandb_metadata, w.wandb_metadata);
    for (const part of ["metrics", "extra"] as const) {
      assert.deepEqual(Reflect.ownKeys(g[part]), Reflect.ownKeys(w[part]), `record ${i}'s ${part} keys, in order`);
      for (const k of Object.keys(w[part])) {
        const a = g[part][k];
        const b = w[part][k];
        if (typeof b === "number") assert.ok(Object.is(a, b), `${i}.${part}.${k}: ${String(a)} is not ${b}`);
        else assert.deepEqual(a, b, `${i}.${part}.${k}`);
      }
    }
  }
}

describe("packHistory / unpackHistory", () => {
  test("numbers bit for bit, other values as they were, keys in their order", () => {
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as JsonObject;
    const protoRow = JSON.parse('{"__proto__": 5, "a": 1}') as JsonObject;
    const batch: HistoryRecord[] = [
      rec(0, { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY, nz: -0 }),
      rec(1, { big: 2n ** 70n, s: "ünïcødé ✓ \u0000", t: true, n: null, "dotted.key": 1.5, "7": 7 }),
      rec(2, { nested: { a: [1, { b: null }] }, list: [Number.NaN, "x"], proto }, { _x: 3, _y: "y" }),
      rec(3, protoRow, {}, { timestamp: null, runtime: null, wandb_metadata: { runtime: 3 } }),
      rec(2 ** 53 + 2, { z: Number.MAX_VALUE, m: Number.MIN_VALUE }, {}, { timestamp: Number.NaN }),
    ];
    const p = packHistory(batch);
    assert.ok(p !== null);
    assert.equal(p.rows, 5);
    assert.equal(p.cells, 4 + 6 + 5 + 2 + 2);
    const got = unpackHistory(p);
    assertSame(got, batch);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined, "no prototype was polluted");
    assert.ok(Object.hasOwn(got[3]!.metrics, "__proto__"), "__proto__ stays an own key of the metrics");
    assert.equal(Object.getOwnPropertyDescriptor(got[3]!.metrics, "__proto__")?.value, 5);
    // and through V8's serialization (the spool's disk form)
    assertSame(unpackHistory(deserialize(serialize(p))), batch);
  });

  test("rows of one shape share it; compiled and looped rows build the same records", () => {
    const wide = (i: number): JsonObject =>
      Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`m/${k}`, k === 7 && i % 5 === 0 ? `s${i}` : i * k]));
    const batch = Array.from({ length: 50 }, (_, i) => rec(i, wide(i), i % 10 === 0 ? { _e: i } : {}));
    const p = packHistory(batch)!;
    assert.equal(p.shapes.length, 2, "two key lists among 50 rows");
    assert.equal(p.others?.size, 10, "the ten string cells are kept beside the numbers");
    assertSame(unpackHistory(p), batch);
    const few = batch.slice(0, 3);
    assertSame(unpackHistory(packHistory(few)!), few);
  });

  test("a batch packing cannot keep exactly is left as it is", () => {
    assert.equal(packHistory([]), null);
    assert.equal(packHistory([rec(0, { a: 1 }), { ...rec(1, { a: 2 }), run_id: "other" }]), null);
    assert.equal(packHistory([{ ...rec(0, { a: 1 }), extra: null as unknown as JsonObject }]), null);
  });

  test("seeded random batches come back equal (seed in the message)", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = prng(seed);
      const keys = Array.from({ length: 1 + Math.floor(rnd() * 12) }, (_, i) => (i % 4 === 3 ? `_k${i}` : `k.${i}`));
      const value = (): JsonValue => {
        const x = rnd();
        if (x < 0.6) return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20);
        if (x < 0.65) return [Number.NaN, Number.POSITIVE_INFINITY, -0, 0][Math.floor(rnd() * 4)]!;
        if (x < 0.7) return BigInt(Number.MAX_SAFE_INTEGER) + BigInt(Math.floor(rnd() * 1000));
        if (x < 0.8) return `v${Math.floor(rnd() * 100)}`;
        if (x < 0.85) return null;
        if (x < 0.9) return rnd() < 0.5;
        return { h: [rnd(), "x"] };
      };
      const batch = Array.from({ length: 1 + Math.floor(rnd() * 60) }, (_, step) => {
        const metrics: JsonObject = {};
        const extra: JsonObject = {};
        const order = rnd() < 0.2 ? [...keys].reverse() : keys;
        for (const k of order) if (rnd() < 0.8) (k.startsWith("_") ? extra : metrics)[k] = value();
        return rec(step, metrics, extra, {
          timestamp: rnd() < 0.1 ? null : rnd() * 2e9,
          runtime: rnd() < 0.1 ? null : rnd(),
          wandb_metadata: rnd() < 0.1 ? { core: rnd() } : {},
        });
      });
      const p = packHistory(batch);
      assert.ok(p !== null, `seed ${seed}`);
      assertSame(unpackHistory(p), batch);
    }
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsonObject } from "../model/json.js";
import { parseWandbJson } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { splitRows, typedKey } from "./history-split.js";

function row(step: number, metrics: JsonObject): HistoryRecord {
  return { run_id: "r", step, timestamp: 1700000000.5, runtime: 1.25, wandb_metadata: {}, metrics, extra: {} };
}

describe("splitRows", () => {
  it("puts every JS number in vals (NaN, ±Infinity, -0 kept) and everything else in rest, exactly", () => {
    const proto: JsonObject = {};
    Object.defineProperty(proto, "__proto__", { value: 5, enumerable: true, writable: true });
    const chunk = splitRows(
      [
        row(0, { loss: 0.5, nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY, z: -0 }),
        row(1, {
          loss: "high",
          big: 2n ** 60n,
          flag: true,
          none: null,
          img: { _type: "image-file", path: "a.png" },
          "a.b": 3,
          ünï: 1e300,
        }),
        row(2, proto),
      ],
      { allowNul: true },
    );
    assert.deepEqual(chunk.keys, ["loss", "nan", "inf", "ninf", "z", "a.b", "ünï", "__proto__"]);
    const [r0, r1, r2] = chunk.rows;
    assert.equal(r0!.rest, null);
    assert.equal(r0!.vals.length, 5);
    assert.equal(r0!.vals[0], 0.5);
    assert.ok(Number.isNaN(r0!.vals[1]));
    assert.equal(r0!.vals[2], Number.POSITIVE_INFINITY);
    assert.equal(r0!.vals[3], Number.NEGATIVE_INFINITY);
    assert.ok(Object.is(r0!.vals[4], -0), "-0 keeps its sign");
    // row 1: "loss" is a string here (rest), its slot in vals is empty; the bigint stays exact in rest
    assert.deepEqual(r1!.vals, [null, null, null, null, null, 3, 1e300]);
    assert.equal(
      r1!.rest,
      '{"loss":"high","big":1152921504606846976,"flag":true,"none":null,"img":{"_type":"image-file","path":"a.png"}}',
    );
    assert.deepEqual(parseWandbJson(r1!.rest!), {
      loss: "high",
      big: 2n ** 60n,
      flag: true,
      none: null,
      img: { _type: "image-file", path: "a.png" },
    });
    assert.equal(r2!.vals[7], 5);
    assert.equal(r2!.rest, null);
    assert.equal(r0!.micros, 1700000000500000);
    assert.equal(r0!.wandbMetadata, "{}");
  });

  it("keeps keys a text column would change in rest: lone surrogates, and U+0000 where text cannot hold it", () => {
    const lone = "a\ud800b";
    const nul = "n\u0000l";
    const duck = splitRows([row(0, { [lone]: 1, [nul]: 2, ok: 3 })], { allowNul: true });
    assert.deepEqual(duck.keys, [nul, "ok"]);
    // in rest as U+FFFD: DuckDB's JSON and PostgreSQL's JSONB refuse a lone surrogate's escape
    assert.equal(duck.rows[0]!.rest, `{${JSON.stringify("a\ufffdb")}:1}`);
    const pg = splitRows([row(0, { [lone]: 1, [nul]: 2, ok: 3 })], {
      allowNul: false,
      json: (t) => t.replaceAll("\\u0000", "\\ufffd"),
    });
    assert.deepEqual(pg.keys, ["ok"]);
    assert.equal(pg.rows[0]!.rest, `{${JSON.stringify("a\ufffdb")}:1,"n\\ufffdl":2}`);
    assert.equal(typedKey("🚀 ok", false), true);
    assert.equal(typedKey("\udc00", true), false);
  });

  it("names one keyset for the chunk, in the order keys first appear; rows without a key leave its slot empty", () => {
    const chunk = splitRows([row(0, { b: 1 }), row(1, { a: 2, b: 3 }), row(2, { c: 4 })], { allowNul: true });
    assert.deepEqual(chunk.keys, ["b", "a", "c"]);
    assert.deepEqual(
      chunk.rows.map((r) => r.vals),
      [[1], [3, 2], [null, null, 4]],
    );
  });
});

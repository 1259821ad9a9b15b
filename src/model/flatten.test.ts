import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { columnTypeFor, extractExpr, KindTracker, kindOf, metricColumnNames, quoteLiteral } from "./flatten.js";

describe("metric column types", () => {
  it("classifies values by what a column must hold exactly", () => {
    assert.equal(kindOf(3), "int");
    assert.equal(kindOf(1e300), "float");
    assert.equal(kindOf(Number.NaN), "float");
    assert.equal(kindOf(2n ** 60n), "int64");
    assert.equal(kindOf(2n ** 100n), "bigint");
    assert.equal(kindOf(10n ** 38n), "object");
    assert.equal(kindOf({ a: 1 }), "object");
  });

  it("never lets an integer beyond 2^53 share a DOUBLE column", () => {
    const t = new KindTracker();
    t.observe({ a: 1, b: 1, c: 1.5, d: 2n ** 60n, e: 2n ** 100n, f: "x", g: true });
    t.observe({ a: 2.5, b: 2n ** 60n, c: 2n ** 60n, d: 3, e: 1, f: 1 });
    assert.equal(t.columnType("a"), "DOUBLE");
    assert.equal(t.columnType("b"), "BIGINT");
    assert.equal(t.columnType("c"), "JSON");
    assert.equal(t.columnType("d"), "BIGINT");
    assert.equal(t.columnType("e"), "HUGEINT");
    assert.equal(t.columnType("f"), "JSON");
    assert.equal(t.columnType("g"), "BOOLEAN");
    assert.equal(columnTypeFor(["null"]), "DOUBLE");
    assert.match(extractExpr("metrics", "e", "HUGEINT"), /DECIMAL\(38,0\)/);
  });

  it("keeps metric columns apart from fixed columns and from each other", () => {
    const names = metricColumnNames(["step", "loss", "Loss", "metrics.step"], ["run_id", "step"]);
    assert.equal(names.get("step"), "metrics.step");
    assert.equal(names.get("loss"), "loss");
    assert.equal(names.get("Loss"), "metrics.Loss");
    assert.equal(names.get("metrics.step"), "metrics.metrics.step");
    // U+0000 cannot be in an SQL identifier: U+FFFD in the name, then the usual collision rules
    const nul = metricColumnNames(["k\u0000ey", "k\ufffdey"], ["step"]);
    assert.deepEqual([...nul.values()], ["k\ufffdey", "metrics.k\ufffdey"]);
    assert.equal(quoteLiteral("a\u0000b'c\u0000"), "('a' || chr(0) || 'b''c' || chr(0) || '')");
  });
});

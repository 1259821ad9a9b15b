import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeFile, decodeRow, decodeRun, keyTypes, parseJsonText, restoreNonFinite, unwrapConfig } from "./decode.js";

describe("parseJsonText", () => {
  test("exact on every path", () => {
    assert.deepEqual(parseJsonText('{"a":1,"b":"x"}'), { a: 1, b: "x" });
    assert.equal(parseJsonText("0.24799787602283171"), 0.24799787602283171);
    assert.equal(parseJsonText("12345678901234567890"), 12345678901234567890n);
    assert.equal(parseJsonText("-9007199254740993"), -9007199254740993n);
    assert.equal(parseJsonText("1234567890123456.5"), 1234567890123456.5);
    assert.deepEqual(parseJsonText('{"s":"NaN and 12345678901234567890"}'), { s: "NaN and 12345678901234567890" });
    const v = parseJsonText('{"x":NaN,"y":Infinity,"z":-Infinity,"w":[9007199254740993]}') as Record<string, unknown>;
    assert.ok(Number.isNaN(v.x));
    assert.equal(v.y, Number.POSITIVE_INFINITY);
    assert.equal(v.z, Number.NEGATIVE_INFINITY);
    assert.deepEqual(v.w, [9007199254740993n]);
    assert.throws(() => parseJsonText('{"a":'));
  });
});

describe("decodeRow", () => {
  test("float steps become integers; values exact", () => {
    const r = decodeRow('{"_step":10.0,"loss":NaN,"n":9007199254740993,"k.dotted":1}', "HistoryPage");
    assert.equal(r._step, 10);
    assert.ok(Number.isNaN(r.loss));
    assert.equal(r.n, 9007199254740993n);
    assert.equal(r["k.dotted"], 1);
  });

  test("rows that are not objects are protocol errors", () => {
    assert.throws(() => decodeRow("[1,2]", "HistoryPage"), /not a JSON object/);
    assert.throws(() => decodeRow("{", "HistoryPage"), /not valid JSON/);
  });

  test("NaN strings of real-JSON rows become numbers where historyKeys says the key is numeric", () => {
    const types = keyTypes({
      lastStep: 3,
      keys: {
        loss: { typeCounts: [{ type: "number", count: 3 }] },
        tag: { typeCounts: [{ type: "string", count: 3 }] },
      },
    });
    const r = restoreNonFinite({ _step: 1, loss: "NaN", tag: "NaN", other: "Infinity" }, types);
    assert.ok(Number.isNaN(r.loss));
    assert.equal(r.tag, "NaN");
    assert.equal(r.other, "Infinity");
  });
});

describe("decodeRun", () => {
  test("JSON-string fields decoded, config unwrapped, raw kept", () => {
    const run = decodeRun(
      {
        id: "UnVuOnYxOmFiYzpwOmU=",
        name: "abc",
        displayName: "happy-run-1",
        state: "finished",
        tags: ["a"],
        sweep_name: "sw",
        createdAt: "2023-11-05T17:46:35",
        config:
          '{"lr": {"value": 0.1, "desc": null}, "plain": 3, "_wandb": {"value": {"t": 1}}, "wandb_version": 1, "nan": {"value": NaN}}',
        summaryMetrics: '{"loss": 0.5, "big": 12345678901234567890}',
        systemMetrics: null,
        historyKeys: '{"lastStep": 41}',
        historyLineCount: 42,
        user: { name: "Ada", username: "ada" },
      },
      "e",
      "p",
    );
    assert.equal(run.config.lr, 0.1);
    assert.equal(run.config.plain, 3);
    assert.ok(Number.isNaN(run.config.nan));
    assert.ok(!("_wandb" in run.config) && !("wandb_version" in run.config));
    assert.deepEqual(run.rawConfig._wandb, { value: { t: 1 } });
    assert.equal(run.summary.big, 12345678901234567890n);
    assert.deepEqual(run.systemMetrics, {});
    assert.equal(run.lastHistoryStep, 41);
    assert.equal(run.sweepName, "sw");
    assert.deepEqual(run.user, { name: "Ada", username: "ada" });
    assert.equal(run.entity, "e");
    assert.deepEqual(run.raw.summaryMetrics, run.summary);
    assert.equal(decodeRun({ name: "x", historyKeys: null }, "e", "p").lastHistoryStep, -1);
  });

  test("unwrapConfig keeps values that are not wrapped", () => {
    assert.deepEqual(unwrapConfig({ a: { value: 1 }, b: { other: 2 }, c: [1] }), { a: 1, b: { other: 2 }, c: [1] });
  });

  test("decodeFile", () => {
    const f = decodeFile({ id: "i", name: "n", url: "u", directUrl: "d", sizeBytes: 12, mimetype: null, md5: "m" });
    assert.deepEqual(f, {
      id: "i",
      name: "n",
      url: "u",
      directUrl: "d",
      sizeBytes: 12,
      mimetype: null,
      updatedAt: null,
      md5: "m",
    });
  });
});

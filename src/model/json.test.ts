import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  hasLongIntegerToken,
  type JsonValue,
  jsonEquals,
  parseJsonStringField,
  parseWandbJson,
  stringifyStrict,
  stringifyWandb,
  stringifyWellFormed,
} from "./json.js";
import { normaliseStep, toHistoryRecord, toUtcIso } from "./records.js";

describe("parseWandbJson", () => {
  it("reads bare NaN and Infinity tokens as W&B writes them", () => {
    const v = parseWandbJson('{"a": NaN, "b": Infinity, "c": -Infinity, "d": [NaN, 1.5]}') as Record<string, unknown>;
    assert.ok(Number.isNaN(v.a));
    assert.equal(v.b, Number.POSITIVE_INFINITY);
    assert.equal(v.c, Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN((v.d as number[])[0]));
  });

  it("keeps integers beyond 2^53 exact as bigint, and small ones as numbers", () => {
    const v = parseWandbJson('{"big": 9007199254740993, "neg": -123456789012345678901, "small": 42, "f": 1e300}');
    assert.deepEqual(v, { big: 9007199254740993n, neg: -123456789012345678901n, small: 42, f: 1e300 });
  });

  it("keeps unicode, dotted and quoted keys, escapes and nested values", () => {
    const text = '{"精度": 1, "a.b": {"c d": "it\'s \\"q\\""}, "e": "\\u00e9\\n", "l": [true, false, null]}';
    assert.deepEqual(parseWandbJson(text), {
      精度: 1,
      "a.b": { "c d": 'it\'s "q"' },
      e: "é\n",
      l: [true, false, null],
    });
  });

  it("accepts raw control characters inside strings, as Python's strict=False does", () => {
    assert.deepEqual(parseWandbJson('{"a": "x\ty", "NaN": 1}'), { a: "x\ty", NaN: 1 });
  });

  it("keeps __proto__ as data", () => {
    const v = parseWandbJson('{"__proto__": {"x": NaN}}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(v, "__proto__"));
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it("finds long integer tokens outside strings only (the native parser's lossless test)", () => {
    const outside = [
      "12345678901234567890",
      '{"a": -1234567890123456789}',
      '["x\\\\", 1234567890123456789]', // the string ends at its second quote: the escape is of the backslash
      '{"s": "1234567890123456789", "n": 12345678901234567}',
      '{"a\\\\": 1, "b": [-1234567890123456]}', // the key ends after an escaped backslash
    ];
    for (const t of outside) assert.equal(hasLongIntegerToken(t), true, t);
    const inside = [
      '{"a": 0.30000000000000004, "b": 1.2345678901234567e+30}',
      '{"summary": "{\\"_timestamp\\": 1732000000123456789, \\"x\\": NaN}"}',
      '{"k12345678901234567890": 1}',
      '["a\\"12345678901234567890"]', // an escaped quote does not end the string
      '{"id": "run-12345678901234567"}',
      "[1e+12345678901234567, 2E-12345678901234567, 3e12345678901234567]",
      '{"a": 123456789012345}',
    ];
    for (const t of inside) assert.equal(hasLongIntegerToken(t), false, t);
  });

  it("reads long digits inside strings and long fractions natively, and long integers exactly, in one text", () => {
    const text =
      '{"summary": "{\\"t\\": 1732000000123456789}", "f": 0.30000000000000004, "big": 12345678901234567890, ' +
      '"s": "say \\"12345678901234567890\\"", "nan": NaN, "in": "NaN"}';
    const v = parseWandbJson(text) as Record<string, unknown>;
    assert.equal(v.summary, '{"t": 1732000000123456789}');
    assert.equal(v.f, 0.30000000000000004);
    assert.equal(v.big, 12345678901234567890n);
    assert.equal(v.s, 'say "12345678901234567890"');
    assert.ok(Number.isNaN(v.nan));
    assert.equal(v.in, "NaN");
    const page = '{"data": {"summaryMetrics": "{\\"loss\\": 0.12345678901234568, \\"step\\": 12345678901234567890}"}}';
    assert.deepEqual(parseWandbJson(page), {
      data: { summaryMetrics: '{"loss": 0.12345678901234568, "step": 12345678901234567890}' },
    });
  });

  it("rejects malformed text with a positioned error", () => {
    assert.throws(() => parseWandbJson('{"a": NaX}'), /position/);
    assert.throws(() => parseWandbJson('{"a": 1'), /position/);
    assert.throws(() => parseWandbJson("[1,] x"), /position/);
  });

  it("returns unparsable JSON-string fields as the string itself", () => {
    assert.equal(parseJsonStringField("not json"), "not json");
    assert.equal(parseJsonStringField(null), null);
    assert.deepEqual(parseJsonStringField('{"a": 1}'), { a: 1 });
  });
});

describe("stringify", () => {
  const v = { a: Number.NaN, b: Number.POSITIVE_INFINITY, c: Number.NEGATIVE_INFINITY, d: 2n ** 70n, e: [1.5, "x"] };

  it("writes strict JSON with non-finite floats as strings and exact big integers", () => {
    const s = stringifyStrict(v);
    assert.equal(s, '{"a":"NaN","b":"Infinity","c":"-Infinity","d":1180591620717411303424,"e":[1.5,"x"]}');
    JSON.parse(s);
  });

  it("round-trips through the W&B encoding", () => {
    assert.ok(jsonEquals(parseWandbJson(stringifyWandb(v)), v));
  });

  it("finds a non-finite number or a big integer however deep it is (the native fast path must not take it)", () => {
    assert.equal(stringifyStrict({ a: [{ b: [1, Number.NaN] }] }), '{"a":[{"b":[1,"NaN"]}]}');
    assert.equal(stringifyStrict([{ c: { d: 2n ** 64n } }]), '[{"c":{"d":18446744073709551616}}]');
    assert.equal(stringifyWandb({ x: { y: [Number.NEGATIVE_INFINITY] } }), '{"x":{"y":[-Infinity]}}');
    assert.equal(stringifyStrict({ x: { y: Number.POSITIVE_INFINITY } }), '{"x":{"y":"Infinity"}}');
  });

  it("writes every value as the reference encoding (seeded random values, some with NaN, ±Infinity, bigints)", () => {
    let seed = 20261207;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const keys = ["a", "b.c", "é", "ключ", 'q"uote', "", "__proto__", "1", "line\nbreak", "😀"];
    const leaf = (): JsonValue | undefined => {
      const r = rand();
      if (r < 0.15) return (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
      if (r < 0.25) return Math.floor(rand() * 2 ** 53) * (rand() < 0.5 ? -1 : 1);
      if (r < 0.3) return -0;
      if (r < 0.45) return keys[Math.floor(rand() * keys.length)]! + String.fromCharCode(Math.floor(rand() * 0xffff));
      if (r < 0.55) return rand() < 0.5;
      if (r < 0.6) return null;
      if (r < 0.63) return undefined;
      if (r < 0.64) return [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][Math.floor(rand() * 3)]!;
      if (r < 0.65) return BigInt(Math.floor(rand() * 1000)) * 2n ** 60n;
      return rand() * 1e300;
    };
    const value = (depth: number): JsonValue => {
      const r = rand();
      if (depth > 4 || r < 0.4) return leaf() ?? null;
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 5) }, () => value(depth + 1));
      const o: Record<string, JsonValue> = {};
      for (let i = Math.floor(rand() * 6); i > 0; i--) {
        const x = rand() < 0.1 ? leaf() : value(depth + 1);
        const k = keys[Math.floor(rand() * keys.length)]! + (rand() < 0.5 ? String(i) : "");
        // an own property even for "__proto__", as JSON.parse makes it
        Object.defineProperty(o, k, { value: x, enumerable: true, writable: true, configurable: true });
      }
      return o;
    };
    // The encoding written out the plainest way, value by value, as the reference.
    const reference = (v: JsonValue | undefined, strict: boolean): string => {
      if (typeof v === "number") {
        if (Number.isFinite(v)) return String(v);
        const t = Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
        return strict ? `"${t}"` : t;
      }
      if (typeof v === "bigint") return v.toString();
      if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
      if (v === null || v === undefined) return "null";
      if (Array.isArray(v)) return `[${v.map((x) => reference(x, strict)).join(",")}]`;
      const members = Object.keys(v).filter((k) => v[k] !== undefined);
      return `{${members.map((k) => `${JSON.stringify(k)}:${reference(v[k], strict)}`).join(",")}}`;
    };
    for (let i = 0; i < 3000; i++) {
      const x = value(0);
      assert.equal(stringifyStrict(x), reference(x, true), `value ${i}`);
      assert.equal(stringifyWandb(x), reference(x, false), `value ${i}`);
      assert.equal(stringifyStrict({ v: x, z: Number.NaN }), `{"v":${reference(x, true)},"z":"NaN"}`, `value ${i}`);
    }
  });
});

describe("records", () => {
  it("splits a history row into fixed fields, metrics and the other underscore keys", () => {
    const rec = toHistoryRecord("r1", {
      _step: 10.0,
      _runtime: 1.5,
      _timestamp: 1700000000.25,
      _wandb: { runtime: 1 },
      _custom: "kept",
      loss: Number.NaN,
      step: 3,
    });
    assert.equal(rec?.step, 10);
    assert.equal(rec?.timestamp, 1700000000.25);
    assert.deepEqual(rec?.extra, { _custom: "kept" });
    assert.deepEqual(Object.keys(rec?.metrics ?? {}), ["loss", "step"]);
    assert.ok(Number.isNaN(rec?.metrics.loss));
    assert.equal(toHistoryRecord("r1", { loss: 1 }), null);
  });

  it("normalises steps and times", () => {
    assert.equal(normaliseStep(12.0), 12);
    assert.equal(normaliseStep(12n), 12);
    assert.equal(normaliseStep("x"), null);
    assert.equal(toUtcIso("2023-11-05T17:46:35"), "2023-11-05T17:46:35.000Z");
    assert.equal(toUtcIso("2023-11-05T17:46:35+01:00"), "2023-11-05T16:46:35.000Z");
  });
});

describe("stringifyWellFormed", () => {
  it("writes lone surrogates as U+FFFD, in values and keys; keeps pairs, NaN, bigints and a __proto__ key", () => {
    const v = JSON.parse('{"__proto__": "a\\ud800", "k\\udc00": [1, "\\udc00"], "pair": "\\ud83d\\ude00"}');
    (v as Record<string, unknown>).n = Number.NaN;
    (v as Record<string, unknown>).big = 2n ** 64n;
    assert.equal(
      stringifyWellFormed(v),
      '{"__proto__":"a\ufffd","k\ufffd":[1,"\ufffd"],"pair":"\ud83d\ude00","n":"NaN","big":18446744073709551616}',
    );
    // a literal backslash-u text is not a surrogate
    assert.equal(stringifyWellFormed({ s: "\\ud800" }), '{"s":"\\\\ud800"}');
    assert.equal(stringifyWellFormed("x\udbff"), '"x\ufffd"');
  });
});

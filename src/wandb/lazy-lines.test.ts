import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mulberry32 as prng } from "../../fake-wandb/random.js";
import type { JsonValue } from "../model/json.js";
import { readGraphqlAnswer } from "./graphql-answer.js";
import { LazyLines, liftStringArrays } from "./lazy-lines.js";
import { DEFAULT_RETRY } from "./retry.js";

/** Characters a row text may hold that matter to a scanner of JSON strings. */
const PIECES = [
  '"',
  "\\",
  '","',
  '\\"',
  "]",
  "[",
  ":",
  "{",
  "}",
  "é",
  "😀",
  "\ud800",
  "\u0000",
  "\n",
  "\t",
  "NaN",
  "a",
];

function rowText(rnd: () => number): string {
  let s = `{"_step": ${Math.floor(rnd() * 1e6)}, "k": "`;
  for (let i = 0, n = Math.floor(rnd() * 12); i < n; i++) s += PIECES[Math.floor(rnd() * PIECES.length)];
  return `${s}", "x": NaN}`;
}

/** Every LazyLines in `v` read back as an array, in random blocks. */
function materialise(v: JsonValue | LazyLines, rnd: () => number): JsonValue {
  if (v instanceof LazyLines) {
    const out: string[] = [];
    for (let i = 0; i < v.length; ) {
      const n = 1 + Math.floor(rnd() * 5);
      out.push(...v.take(i, i + n));
      i += n;
    }
    return out;
  }
  if (Array.isArray(v)) return v.map((x) => materialise(x, rnd));
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, materialise(x as JsonValue, rnd)]));
  }
  return v;
}

describe("lazy lines", () => {
  test("seeded answers: the lifted arrays and the rest read back as JSON.parse reads the whole", () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rnd = prng(seed);
      const project: Record<string, JsonValue> = {};
      for (let r = 0, runs = 1 + Math.floor(rnd() * 3); r < runs; r++) {
        const lines = Array.from({ length: Math.floor(rnd() * 30) }, () => rowText(rnd));
        project[`r${r}`] = { name: `run "${r}" history`, history: lines, historyKeys: { history: ["a"] } };
      }
      project.note = '"history":["not an array of rows"]';
      const answer = { data: { project } };
      const text = rnd() < 0.5 ? JSON.stringify(answer) : JSON.stringify(answer, null, 1 + Math.floor(rnd() * 3));
      const buf = Buffer.from(text);
      const lifted = liftStringArrays(buf, "history", 0);
      const label = `seed ${seed}`;
      assert.ok(lifted !== null, label);
      // each run's history, and its historyKeys' member of that name (an array of strings too)
      const liftedCount = 2 * Object.values(project).filter((p) => typeof p === "object").length;
      assert.equal(lifted.arrays.length, liftedCount, `${label}: every array of strings of that name`);
      assert.ok(lifted.skeleton.length < 400 + 200 * liftedCount, `${label}: the rest is small`);
      const restored = lifted.restore(JSON.parse(lifted.skeleton) as JsonValue);
      assert.deepEqual(materialise(restored, rnd), JSON.parse(text), label);
    }
  });

  test("only arrays of strings under the name, of at least the size asked, are lifted", () => {
    const lift = (text: string, min = 0) => liftStringArrays(Buffer.from(text), "history", min);
    assert.equal(lift('{"history":[1,"a"]}'), null, "not every element a string");
    assert.equal(lift('{"history":["a",null]}'), null);
    assert.equal(lift('{"history":[["a"]]}'), null);
    assert.equal(lift('{"other":["a","b"]}'), null, "another name");
    assert.equal(lift('["history",["a","b"]]'), null, "a string value before an array is not a member name");
    assert.equal(lift('{"a":"\\"history\\":[\\"x\\"]"}'), null, "inside a string");
    assert.equal(lift('{"history":["aaaa","bbbb"]}', 100), null, "too small");
    const empty = lift('{"history":[]}');
    assert.ok(empty !== null);
    assert.equal((empty.restore(JSON.parse(empty.skeleton)) as unknown as { history: LazyLines }).history.length, 0);
  });

  test("bytes JSON.parse would refuse are not lifted (the answer is parsed whole and fails as before)", () => {
    const lift = (text: string) => liftStringArrays(Buffer.from(text), "history", 0);
    assert.equal(lift('{"history":["a\\x"]}'), null, "unknown escape");
    assert.equal(lift('{"history":["a\\u12G4"]}'), null, "bad \\u escape");
    assert.equal(lift('{"history":["a\nb"]}'), null, "raw control character");
    assert.equal(lift('{"history":["abc'), null, "cut short in a string");
    assert.equal(lift('{"history":["abc",'), null, "cut short after a comma");
    assert.ok(lift('{"history":["a\\u12aF\\/\\b\\f\\n\\r\\t\\"\\\\"]}') !== null, "every valid escape");
  });

  test("released lines cannot be read", () => {
    const lifted = liftStringArrays(Buffer.from('{"history":["a","b"]}'), "history", 0)!;
    const lines = lifted.arrays[0]!;
    assert.deepEqual(lines.take(0, 5), ["a", "b"]);
    lines.release();
    assert.throws(() => lines.take(0, 1), /released/);
    assert.deepEqual(lines.take(2, 3), [], "an empty range reads nothing");
  });

  test("readGraphqlAnswer: data holds LazyLines where asked; errors and non-2xx answers are read as before", async () => {
    const ctx = {
      operation: "HistoryPage",
      attempt: 1,
      retry: DEFAULT_RETRY,
      random: () => 0,
      baseUrl: "http://w",
      graphqlUrl: "http://w/graphql",
      lazyLines: "history",
      lazyMinBytes: 0,
    };
    const body = (v: unknown) => Buffer.from(JSON.stringify(v));
    const ok = await readGraphqlAnswer(
      { status: 200, headers: {}, raw: body({ data: { project: { run: { history: ['{"_step":1}'] } } } }) },
      ctx,
    );
    assert.ok(ok.ok);
    const lines = ((ok.data.project as Record<string, JsonValue>).run as Record<string, unknown>).history;
    assert.ok(lines instanceof LazyLines);
    assert.deepEqual(lines.take(0, 1), ['{"_step":1}']);
    const plain = await readGraphqlAnswer(
      { status: 200, headers: {}, raw: body({ data: { project: { run: { history: ["x"] } } } }) },
      { ...ctx, lazyLines: undefined },
    );
    assert.ok(plain.ok);
    assert.deepEqual(plain.data, { project: { run: { history: ["x"] } } }, "not asked: arrays as before");
    const errors = await readGraphqlAnswer(
      { status: 200, headers: {}, raw: body({ errors: [{ message: "boom" }], data: { history: ["x"] } }) },
      ctx,
    );
    assert.ok(!errors.ok);
    assert.match(errors.error.message, /GraphQL error: boom/);
    const failed = await readGraphqlAnswer(
      { status: 500, headers: {}, raw: body({ errors: [{ message: "down" }], history: ["x"] }) },
      ctx,
    );
    assert.ok(!failed.ok);
    assert.match(failed.error.message, /HTTP 500: down/);
    const cut = await readGraphqlAnswer(
      { status: 200, headers: {}, raw: Buffer.from('{"data":{"history":["a\\x"]') },
      ctx,
    );
    assert.ok(!cut.ok);
    assert.match(cut.error.message, /cut short or malformed/);
  });
});

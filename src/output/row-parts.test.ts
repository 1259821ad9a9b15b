/**
 * The Parquet writer's typed parts of decoded rows (row-parts.ts) against its CSV text: the same runs of JavaScript
 * rows (what GraphQL history pages decode to), written once as typed parts and once as CSV text
 * (DR_WANDB_DOWNLOAD_COLUMNAR=0), must give the same histories file: the same columns in the same order and types,
 * the same rows in the same order, the same JSON text. Parts are kept small here so that runs span several, and a
 * key changes kind between them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  assertSameParquet,
  duckReader,
  sampleRow,
  sampleRun,
  tempDir,
  tempFilesIn,
  writeParquetBothWays,
} from "../../test/support/writer-fixtures.js";
import type { JsonObject, JsonValue } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { ColumnarHistory } from "./columnar-history.js";
import { CsvSpool } from "./csv-spool.js";
import { ADDED, CSV, RowParts, rowPartLimits, WRITE_FIRST } from "./row-parts.js";
import { openProjectWriter } from "./writer.js";

const reader = duckReader();
const db = reader.db;
after(() => reader.close());

async function scalar(sql: string): Promise<unknown> {
  return (await (await db()).runAndReadAll(sql)).getRows()[0]?.[0];
}

/** A value of every kind and edge, chosen by the row number. */
function edge(i: number): JsonValue {
  const values: JsonValue[] = [
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    0.1,
    1e21,
    1e-7,
    3,
    2 ** 53,
    2 ** 60,
    2n ** 60n,
    -(2n ** 70n),
    10n ** 40n,
    true,
    false,
    null,
    "",
    'tab\tnl\n"q",é✓ \ud83d',
    "NaN",
    { a: 1.5, b: [1, Number.NaN, null], "c.d": { e: "x" } },
    [],
  ];
  return values[i % values.length]!;
}

function rowsOf(runId: string, from: number, to: number, metrics: (i: number) => JsonObject): HistoryRecord[] {
  const out: HistoryRecord[] = [];
  for (let i = from; i < to; i++) {
    const over: Partial<HistoryRecord> = {};
    if (i % 7 === 0) over.timestamp = null;
    if (i % 11 === 0) over.timestamp = 1e300; // not a datetime: kept in extra
    if (i % 13 === 0) over.runtime = i % 2 === 0 ? null : Number.NaN;
    if (i % 13 === 4) over.runtime = -0;
    if (i % 5 === 0) over.wandb_metadata = { runtime: i, nested: { "a.b": [i, "é"] } };
    if (i % 6 === 0) over.extra = { _extra: i * 0.5, _s: "x" };
    out.push(sampleRow(runId, i, metrics(i), over));
  }
  return out;
}

describe("wandb-download's typed parts of decoded rows", () => {
  test("give the CSV path's histories file: kinds, edge values, key order, kinds that change between parts", async () => {
    const saved = { ...rowPartLimits };
    rowPartLimits.rows = 7;
    rowPartLimits.cells = 40;
    try {
      const wide: JsonObject = {};
      for (let k = 0; k < 600; k++) wide[`w${k}`] = k * 0.5; // more keys than a part takes: CSV in its place
      const big = "z".repeat(1 << 20); // a value too long for a part: CSV in its place
      const runs = [
        {
          id: "a",
          rows: [
            // numbers first, then other kinds: the key changes kind within a part and between parts
            rowsOf("a", 0, 10, (i) => ({
              neg: i === 3 ? -0 : i + 0.5,
              loss: i === 3 ? -0 : i * 0.25,
              flag: i % 2 === 0,
              mix: i < 5 ? i : edge(i),
            })),
            rowsOf("a", 10, 60, (i) => ({ mix: edge(i), [`late${i % 3}`]: edge(i + 1), loss: edge(i + 2) })),
            rowsOf("a", 60, 62, (i) => (i === 60 ? wide : { loss: i, big })),
            rowsOf("a", 62, 70, (i) => ({ flag: i, "a.b": i / 3, "10": String(i), loss: i })),
          ],
        },
        // a run whose rows carry another run's id, and one with keys in a new order on every row
        { id: "b", rows: [rowsOf("other", 0, 3, (i) => ({ loss: i }))] },
        {
          id: "c",
          rows: [
            rowsOf("c", 0, 20, (i) =>
              Object.fromEntries(
                [`k${i % 4}`, `k${(i + 1) % 4}`, "loss"].map((k, j) => [k, j === 2 ? edge(i) : i + j]),
              ),
            ),
          ],
        },
      ];
      const out = await writeParquetBothWays(runs);
      await assertSameParquet(await db(), out.typed, out.text);
      assert.equal(await scalar(`SELECT count(*) FROM '${out.typed}'`), 93n);
      // the ids, in the order written
      assert.equal(
        await scalar(`SELECT string_agg(DISTINCT run_id, ',' ORDER BY run_id) FROM '${out.typed}'`),
        "a,c,other",
      );
    } finally {
      Object.assign(rowPartLimits, saved);
    }
  });

  test("lone surrogates become U+FFFD in both paths and the runs file (DuckDB refused their escapes)", async () => {
    const row = sampleRow(
      "a",
      0,
      { s: "x\ud83d", lit: "\\ud83d", o: { "k\udc00": "y\udc00" } },
      {
        wandb_metadata: { q: "\ud800" },
      },
    );
    const out = await writeParquetBothWays([{ id: "a", rows: [[row]] }]);
    await assertSameParquet(await db(), out.typed, out.text);
    const got = (
      await (await db()).runAndReadAll(`SELECT s, lit, o::VARCHAR, wandb_metadata::VARCHAR FROM '${out.typed}'`)
    ).getRows()[0];
    assert.deepStrictEqual(got, ["x\ufffd", "\\ud83d", '{"k\ufffd":"y\ufffd"}', '{"q":"\ufffd"}']);
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "parquet",
      outputDir: dir,
      entity: "e",
      project: "p",
      withHistory: false,
    });
    await w.writeRun(sampleRun("a", { config: { "k\udc01": "v\ud800 \ud83d\ude00" } }), []);
    await w.close();
    assert.equal(
      await scalar(`SELECT config::VARCHAR FROM '${join(dir, "e_p_runs.parquet")}'`),
      '{"k\ufffd":"v\ufffd 😀"}',
    );
  });

  test("a metric key holding U+0000: its column is named with U+FFFD, its values kept, in both paths", async () => {
    const key = "k\u0000ey";
    const out = await writeParquetBothWays([
      { id: "a", rows: [[sampleRow("a", 0, { [key]: 1.5, s: "v\u0000w" }), sampleRow("a", 1, { [key]: 2.5 })]] },
    ]);
    await assertSameParquet(await db(), out.typed, out.text);
    const got = (await (await db()).runAndReadAll(`SELECT "k\ufffdey", s FROM '${out.typed}' ORDER BY step`)).getRows();
    assert.deepStrictEqual(got, [
      [1.5, "v\u0000w"],
      [2.5, null],
    ]);
  });

  test("a part takes ordinary rows and refuses the ones the CSV spool must write", async () => {
    const dir = await tempDir();
    const spool = await CsvSpool.create(join(dir, "h.parquet"), [["r", "VARCHAR"]]);
    const columnar = new ColumnarHistory();
    try {
      const parts = new RowParts(spool, () => columnar.connection());
      assert.equal(parts.add(sampleRow("r", 0, { loss: 1.5, s: "x" })), ADDED);
      assert.equal(parts.add(sampleRow("r", 1.5, { loss: 1 })), CSV, "a step that is not an integer");
      assert.equal(parts.add(sampleRow("r", 2, { s: "y".repeat(1 << 20) })), CSV, "a value of 1 MB");
      assert.equal(parts.add(sampleRow("r", 2, { o: ["y".repeat(1 << 20)] })), CSV, "a nested value of 1 MB");
      assert.equal(
        parts.add(sampleRow("r", 3, { loss: 1 }, { wandb_metadata: { s: "y".repeat(1 << 20) } })),
        CSV,
        "a _wandb of 1 MB",
      );
      const wide = Object.fromEntries(Array.from({ length: 600 }, (_, k) => [`w${k}`, k]));
      assert.equal(parts.add(sampleRow("r", 4, wide)), CSV, "more keys than a part takes");
      const half = (from: number) => Object.fromEntries(Array.from({ length: 300 }, (_, k) => [`h${from + k}`, k]));
      assert.equal(parts.add(sampleRow("r", 5, half(0))), ADDED);
      assert.equal(parts.add(sampleRow("r", 6, half(300))), WRITE_FIRST, "too many keys with the part's");
      assert.equal(spool.rows, 0, "nothing written before a flush");
      await parts.flush();
      assert.equal(spool.rows, 2, "the part's two rows");
      assert.equal(parts.add(sampleRow("r", 6, half(300))), ADDED, "taken by the next part");
      assert.deepStrictEqual(spool.keys().slice(0, 3), ["loss", "s", "h0"]);
      assert.deepStrictEqual(spool.kinds(0), ["float"]);
      assert.deepStrictEqual(spool.kinds(1), ["string"]);
    } finally {
      await columnar.close();
      await spool.remove();
    }
    assert.deepStrictEqual(await tempFilesIn(dir), [], "the spool's files are removed");
  });

  test("a spool of typed parts alone plans no CSV reader for its conversion; one with CSV text does", async () => {
    const dir = await tempDir();
    const typed = await CsvSpool.create(join(dir, "typed.parquet"), [["r", "VARCHAR"]]);
    const text = await CsvSpool.create(join(dir, "text.parquet"), [["r", "VARCHAR"]]);
    const columnar = new ColumnarHistory();
    try {
      const parts = new RowParts(typed, () => columnar.connection());
      assert.equal(parts.add(sampleRow("r", 0, { loss: 1.5 })), ADDED);
      await parts.flush();
      await typed.finish();
      assert.equal(typed.rows, 1);
      assert.equal(typed.readerBufferBytes(), 0, "no CSV segment: no reader buffers to plan for");
      text.add(text.textField("r"), { loss: 1.5 });
      await text.finish();
      assert.ok(text.readerBufferBytes() >= 32 << 20, "a CSV segment: DuckDB's reader buffers");
    } finally {
      await columnar.close();
      await typed.remove();
      await text.remove();
    }
  });
});

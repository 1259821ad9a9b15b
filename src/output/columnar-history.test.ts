/**
 * The Parquet writer's columnar path (columnar-history.ts) against its row path: the same runs, with W&B parquet
 * exports of every column kind and edge value, written once with DuckDB writing the spool and once with every row
 * decoded in JavaScript (DR_WANDB_DOWNLOAD_COLUMNAR=0), must give the same histories file: the same columns in the
 * same order and types, the same rows in the same order, the same JSON text.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
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
import type { ParquetSource } from "../model/parquet-decode.js";
import { ColumnarHistory } from "./columnar-history.js";
import { CsvSpool } from "./csv-spool.js";
import { openProjectWriter } from "./writer.js";

const reader = duckReader();
const db = reader.db;
after(() => reader.close());

async function scalar(sql: string): Promise<unknown> {
  return (await (await db()).runAndReadAll(sql)).getRows()[0]?.[0];
}

/** Writes a parquet file of `select` (a SELECT over `range(n)` as `i`) and returns its path. */
async function exportFile(dir: string, name: string, select: string): Promise<string> {
  const path = join(dir, name);
  await (await db()).run(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
  return path;
}

// Python's rounding: micros half to even (2.5 -> 2, 4.5 -> 4), carries across the range's ends.
const TS = `CASE i WHEN 1 THEN 'nan'::DOUBLE WHEN 2 THEN 1e300 WHEN 3 THEN -1.5 WHEN 4 THEN 253402300800.0
  WHEN 5 THEN -62135596800.0 WHEN 6 THEN NULL WHEN 7 THEN 'inf'::DOUBLE WHEN 8 THEN 0.0000015
  WHEN 9 THEN 0.0000025 WHEN 10 THEN 0.0000045 WHEN 11 THEN -62135596800.5 WHEN 12 THEN 253402300799.9999996
  ELSE 1700000000.0 + i / 7.0 END::DOUBLE`;

/** A run's export: every kind of column W&B writes, and edge values. */
function richSelect(from: number, to: number, stepOf: string): string {
  return `SELECT ${stepOf} AS "_step",
    CASE WHEN i = 2 THEN 'nan'::DOUBLE WHEN i = 3 THEN NULL WHEN i = 4 THEN -0.0 ELSE i * 0.25 END::DOUBLE AS "_runtime",
    ${TS} AS "_timestamp",
    CASE i % 9 WHEN 0 THEN 'nan'::DOUBLE WHEN 1 THEN 'inf'::DOUBLE WHEN 2 THEN '-inf'::DOUBLE WHEN 3 THEN 3.0
      WHEN 4 THEN 1e21 WHEN 5 THEN 1e-7 WHEN 6 THEN -0.0 WHEN 7 THEN 0.1 ELSE i / 3.0 END::DOUBLE AS "loss",
    CASE WHEN i % 2 = 0 THEN 1152921504606846976 + i ELSE i END::BIGINT AS "big",
    (i % 3 = 0) AS "flag",
    CASE WHEN i % 4 = 0 THEN NULL ELSE 'tab' || chr(9) || 'nl' || chr(10) || '"q",é✓ ' || i END AS "name",
    CASE WHEN i % 2 = 0 THEN '123456789012345678901234567890' ELSE '00042' END AS "huge",
    '99999999999999999999' AS "digits",
    CASE WHEN i % 5 = 0 THEN NULL ELSE {'a': (i * 1.5)::DOUBLE, 'b': CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' END} END AS "nested",
    [i, NULL, i + 0.5]::DOUBLE[] AS "lst",
    CASE WHEN i % 3 = 0 THEN {'runtime': i} END AS "_wandb",
    CASE WHEN i % 2 = 1 THEN i * 2.0 END::DOUBLE AS "_extra",
    i AS "10", (i * 1.0)::DOUBLE AS "0", (i + 0.5)::DOUBLE AS "a.b",
    CASE WHEN i >= ${from + 3} THEN i END AS "late",
    NULL::DOUBLE AS "allnull",
    (i * 2)::INTEGER AS "intonly"
  FROM range(${from}, ${to}) t(i)`;
}

/** What ColumnarHistory.write returns for `src` into a fresh spool (null: it leaves the rows to be decoded). */
async function columnarRows(src: ParquetSource, runId = "r"): Promise<number | null> {
  const dir = await tempDir();
  const spool = await CsvSpool.create(join(dir, "h.parquet"), [["r", "VARCHAR"]]);
  const columnar = new ColumnarHistory();
  try {
    const n = await columnar.write(spool, runId, src);
    assert.equal(spool.rows, n ?? 0, "rows are written only when taken");
    return n;
  } finally {
    await columnar.close();
    await spool.remove();
    assert.deepStrictEqual(await tempFilesIn(dir), [], "the spool's files are removed");
  }
}

const source = (paths: string[], over: Partial<ParquetSource> = {}): ParquetSource => ({
  paths,
  minStep: 0,
  maxStep: Number.POSITIVE_INFINITY,
  stringKeys: [],
  ...over,
});

describe("wandb-download's columnar Parquet path", () => {
  test("gives the row path's histories file: kinds, edge values, key order, files merged by step", async () => {
    const dir = await tempDir();
    // run a: two files whose steps interleave (even / odd); run b: one file, a string-typed key, a step range;
    // between them a run whose rows are decoded JS rows only, and a live tail after run b's export.
    const a0 = await exportFile(dir, "a0.parquet", richSelect(0, 40, "i * 2"));
    const a1 = await exportFile(dir, "a1.parquet", `${richSelect(0, 40, "i * 2 + 1")} ORDER BY i DESC`);
    const b = await exportFile(
      dir,
      "b.parquet",
      `SELECT i AS "_step", (1700000000.5 + i)::DOUBLE AS "_timestamp", 'text' || i AS "loss",
        (i * 0.5)::DOUBLE AS "intonly",
        i AS "new_key", '123456789012345678901234567890' AS "huge" FROM range(0, 30) t(i)`,
    );
    // the columnar path takes both runs' exports (so the comparison below is of two paths)
    assert.equal(await columnarRows(source([a0, a1])), 80);
    assert.equal(await columnarRows(source([b], { minStep: 5, maxStep: 25, stringKeys: ["huge"] })), 20);
    const out = await writeParquetBothWays([
      { id: "a", parquet: [source([a0, a1])], rows: [] },
      { id: "js", parquet: [], rows: [[sampleRow("js", 0, { loss: 1, only_js: "x" })]] },
      {
        id: 'b,"1',
        parquet: [source([b], { minStep: 5, maxStep: 25, stringKeys: ["huge"] })],
        rows: [[sampleRow('b,"1', 25, { loss: 2.5, tail: true })]],
      },
    ]);
    await assertSameParquet(await db(), out.typed, out.text);
    // the file holds what was asked: 80 + 1 + 20 + 1 rows, the run's steps in order
    assert.equal(await scalar(`SELECT count(*) FROM '${out.typed}'`), 102n);
    assert.equal(
      await scalar(`SELECT string_agg("step"::VARCHAR, ',') FROM (SELECT "step" FROM '${out.typed}' LIMIT 5)`),
      "0,1,2,3,4",
    );
  });

  test("takes plain exports itself and refuses what it cannot map, which the row path then writes", async () => {
    const dir = await tempDir();
    const plain = await exportFile(dir, "plain.parquet", richSelect(0, 10, "i"));
    const map = await exportFile(dir, "map.parquet", `SELECT i AS "_step", MAP {'k': i} AS "m" FROM range(0, 5) t(i)`);
    const dup1 = await exportFile(dir, "dup1.parquet", `SELECT i AS "_step", i::DOUBLE AS "x" FROM range(0, 5) t(i)`);
    const dup2 = await exportFile(
      dir,
      "dup2.parquet",
      `SELECT i AS "_step", -1.0::DOUBLE AS "x" FROM range(3, 8) t(i)`,
    );
    assert.equal(await columnarRows(source([plain])), 10);
    assert.equal(await columnarRows(source([map])), null, "a MAP column is decoded");
    assert.equal(await columnarRows(source([dup1, dup2])), null, "a step in two files is decoded");
    assert.equal(await columnarRows(source([plain]), "line\nbreak"), 10);
    const twoWays = await exportFile(
      dir,
      "x2.parquet",
      `SELECT i AS "_step", i::BIGINT AS "x" FROM range(10, 12) t(i)`,
    );
    assert.equal(await columnarRows(source([dup1, twoWays])), null, "a key typed two ways in one run is decoded");
    const out = await writeParquetBothWays([
      { id: "m", parquet: [source([map])], rows: [] },
      { id: "line\nbreak", parquet: [source([plain])], rows: [] },
      { id: "t", parquet: [source([dup1, twoWays])], rows: [] },
      { id: "d", parquet: [source([dup1, dup2])], rows: [] },
      { id: "p", parquet: [source([plain])], rows: [] },
      // consecutive parts: the same columns (read together), then a key as DOUBLE, then as BIGINT
      { id: "p2", parquet: [source([plain])], rows: [] },
      { id: "q", parquet: [source([dup1])], rows: [] },
      { id: "q2", parquet: [source([twoWays])], rows: [] },
    ]);
    await assertSameParquet(await db(), out.typed, out.text);
    assert.equal(await scalar(`SELECT count(*) FROM '${out.typed}' WHERE run_id = 'd'`), 8n);
    // a writer that does not take parquet files (JSON Lines) gets the exports' rows decoded, before the batches'
    const jdir = await tempDir();
    const jw = await openProjectWriter({
      format: "jsonl",
      outputDir: jdir,
      entity: "e",
      project: "p",
      withHistory: true,
    });
    assert.equal(jw.takesParquet, false);
    const written = await jw.writeRun(sampleRun("p"), [[sampleRow("p", 10, { loss: 1 })]], undefined, [
      source([plain]),
    ]);
    await jw.close();
    assert.equal(written.historyRows, 11);
    const lines = (await readFile(join(jdir, "e_p_histories.jsonl"), "utf8")).trim().split("\n");
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).step),
      Array.from({ length: 11 }, (_, i) => i),
    );
    assert.equal(await scalar(`SELECT count(*) FROM '${out.typed}' WHERE run_id = 'line' || chr(10) || 'break'`), 10n);
  });

  test("keeps the runs in the order written, parts and decoded rows alike", async () => {
    const dir = await tempDir();
    const file = await exportFile(
      dir,
      "f.parquet",
      `SELECT i AS "_step", (i * 0.5)::DOUBLE AS "loss", (1700000000 + i)::DOUBLE AS "_timestamp" FROM range(0, 3000) t(i)`,
    );
    const ids = ["p1", "p2", "js1", "p3", "p4", "js2", "p5"];
    const runs = ids.map((id) =>
      id.startsWith("js")
        ? { id, parquet: [], rows: [[sampleRow(id, 0, { loss: 1 }), sampleRow(id, 1, { other: "x" })]] }
        : { id, parquet: [source([file])], rows: [] },
    );
    const out = await writeParquetBothWays(runs);
    await assertSameParquet(await db(), out.typed, out.text);
    const order = await scalar(
      `SELECT string_agg(run_id, ',' ORDER BY first) FROM (SELECT run_id, min(rn) AS first FROM ` +
        `(SELECT run_id, row_number() OVER () AS rn FROM '${out.typed}') GROUP BY run_id)`,
    );
    assert.equal(order, ids.join(","));
  });

  test("a run of 2,000 keys gets the budget its width needs", async () => {
    const dir = await tempDir();
    const cols = Array.from({ length: 2000 }, (_, j) => `(i * ${j + 1} * 0.001)::DOUBLE AS "k${j}"`).join(", ");
    const wide = await exportFile(dir, "wide.parquet", `SELECT i AS "_step", ${cols} FROM range(0, 300) t(i)`);
    assert.equal(await columnarRows(source([wide])), 300);
    const out = await tempDir();
    const w = await openProjectWriter({
      format: "parquet",
      outputDir: out,
      entity: "e",
      project: "p",
      withHistory: true,
    });
    await w.writeRun(sampleRun("w"), [], undefined, [source([wide])]);
    await w.close();
    const file = join(out, "e_p_histories.parquet");
    assert.equal(await scalar(`SELECT count(*) FROM '${file}'`), 300n);
    assert.equal(await scalar(`SELECT "k0" FROM '${file}' WHERE step = 7`), 0.007);
    assert.equal(await scalar(`SELECT "k1999" FROM '${file}' WHERE step = 7`), 14n); // integral: BIGINT
  });
});

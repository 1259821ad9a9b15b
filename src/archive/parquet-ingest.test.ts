/**
 * The columnar ingest (SQL) against the row path (ParquetReader -> toHistoryRecord -> splitRows, KindTracker) on
 * files full of hard values: random doubles from random bits, int64 beyond 2^53, huge VARCHAR literals, control
 * characters, nested structs and lists with NULLs, integer-like keys. Every stored value must be the same: each
 * number in vals under the same key (NaN, -0 and ±Infinity included), every byte of rest, _wandb and extra.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance, DuckDBListValue, DuckDBTimestampTZValue } from "@duckdb/node-api";
import { KindTracker } from "../model/flatten.js";
import { describeParquet, ParquetReader } from "../model/parquet-reader.js";
import { planParquetFile } from "../model/parquet-sql.js";
import { toHistoryRecord } from "../model/records.js";
import { splitRows } from "./history-split.js";
import { INGEST_COLUMNS, ingestParquet } from "./parquet-ingest.js";
import { jsonText, kindsToMask, unixToMicros } from "./values.js";

const HISTORY_ROWS = `CREATE TABLE history_rows (entity TEXT, project TEXT, run_id TEXT, step BIGINT, "timestamp" TIMESTAMPTZ,
  runtime DOUBLE, wandb_metadata JSON, extra JSON, keyset INTEGER, vals DOUBLE[], rest JSON,
  PRIMARY KEY (entity, project, run_id, step))`;

const dir = mkdtempSync(join(tmpdir(), "dr-wandb-ingest-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function randomDouble(): number {
  const b = randomBytes(8);
  const r = b[0]! % 8;
  if (r === 0) return b.readDoubleLE(0); // any bit pattern: subnormals, huge, NaN, ±Infinity
  if (r === 1) return Math.round((b.readInt32LE(0) / 7) * 1000) / 1000;
  if (r === 2) return b.readInt32LE(0) * 2 ** (b[5]! % 80);
  if (r === 3) return [0, -0, Number.NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 1e21, 1e-7, 1.5e-7][b[6]! % 10]!;
  return Math.random() * 10 ** ((b[4]! % 40) - 20);
}

const STRINGS = [
  "plain",
  'q"uote',
  "back\\slash",
  "ctl\u0001\u001f\b\f\n\r\t\u000b",
  "\u0000nul",
  "é 精度 🚀 \u2028 \u007f /",
  "",
  "9223372036854775808",
  "-00000000000000000000000000012",
  "123456789012345678901234567890123456789012",
  "0000000000000000000001",
  "12345678901234567890x",
];

const sqlStr = (s: string) => `'${s.replaceAll("'", "''")}'`;

async function makeFile(conn: DuckDBConnection, path: string, n: number, from: number): Promise<void> {
  await conn.run(`CREATE OR REPLACE TABLE stage (
    "_step" BIGINT, "_timestamp" DOUBLE, "_runtime" DOUBLE, w BIGINT, "_custom" DOUBLE,
    loss DOUBLE, i BIGINT, s VARCHAR, huge VARCHAR, name_str VARCHAR, b BOOLEAN, f FLOAT, x DOUBLE, y DOUBLE)`);
  const app = await conn.createAppender("stage");
  const maybe = (p: number, fn: () => void) => (Math.random() < p ? app.appendNull() : fn());
  for (let r = 0; r < n; r++) {
    app.appendBigInt(BigInt(from + r * 2));
    maybe(0.1, () => app.appendDouble(r % 5 === 0 ? randomDouble() : 1.7e9 + Math.random() * 1e6));
    maybe(0.1, () => app.appendDouble(randomDouble()));
    maybe(0.5, () => app.appendBigInt(BigInt(r)));
    maybe(0.5, () => app.appendDouble(randomDouble()));
    maybe(0.2, () => app.appendDouble(randomDouble()));
    maybe(0.2, () => app.appendBigInt(randomBytes(8).readBigInt64LE(0) >> BigInt(randomBytes(1)[0]! % 64)));
    maybe(0.2, () => app.appendVarchar(STRINGS[r % STRINGS.length]!));
    maybe(0.2, () => app.appendVarchar(STRINGS[(r * 7) % STRINGS.length]!));
    maybe(0.2, () => app.appendVarchar(STRINGS[(r * 3) % STRINGS.length]!));
    maybe(0.2, () => app.appendBoolean(Math.random() < 0.5));
    maybe(0.2, () => app.appendFloat(randomDouble()));
    maybe(0.2, () => app.appendDouble(randomDouble()));
    maybe(0.2, () => app.appendDouble(randomDouble()));
    app.endRow();
  }
  app.flushSync();
  app.closeSync();
  await conn.run(`COPY (SELECT "_step", "_timestamp", "_runtime",
      CASE WHEN w IS NULL THEN NULL ELSE {'runtime': w, 'note': s} END AS "_wandb", "_custom",
      loss, i AS "10", s AS "a.b ""c""", huge, name_str, b AS "2", f AS "精度",
      CASE WHEN x IS NULL THEN NULL ELSE {'_type': 'histogram', '1': i, 'bins': [x, NULL, y], 'inner': {'v': y, 's': s}, 'tags': [s, huge]} END AS "gradients/w",
      CASE WHEN y IS NULL THEN NULL ELSE [i, NULL, 3] END AS "ints"
    FROM stage) TO ${sqlStr(path)} (FORMAT parquet)`);
}

interface Stored {
  step: number;
  micros: bigint | null;
  runtime: number | null;
  wm: string;
  /** key -> the number stored in vals */
  typed: Map<string, number>;
  rest: string | null;
  extra: string;
}

function typedMap(keys: readonly string[], vals: readonly (number | null)[]): Map<string, number> {
  const m = new Map<string, number>();
  vals.forEach((v, i) => {
    if (v !== null && v !== undefined) m.set(keys[i]!, v);
  });
  return m;
}

describe("columnar parquet ingest", () => {
  it("stores exactly what the row path stores (values, keys, kinds)", async () => {
    const inst = await DuckDBInstance.create(":memory:");
    const conn = await inst.connect();
    await conn.run("SET TimeZone = 'UTC'");
    const paths = [join(dir, "a.parquet"), join(dir, "b.parquet")];
    await makeFile(conn, paths[0]!, 3000, 0);
    await makeFile(conn, paths[1]!, 3000, 1); // interleaved steps, in another file
    const src = { paths, minStep: 10, maxStep: 11_001, stringKeys: ["name_str"] };

    // Row path.
    const reader = new ParquetReader();
    const expected: Stored[] = [];
    const tracker = new KindTracker();
    for await (const batch of await reader.open(paths, { ...src, stringKeys: new Set(src.stringKeys) })) {
      for (const row of batch) {
        const rec = toHistoryRecord("r", row)!;
        tracker.observe(rec.metrics);
        const micros = unixToMicros(rec.timestamp);
        const split = splitRows([rec], { allowNul: true });
        expected.push({
          step: rec.step,
          micros: micros === null ? null : BigInt(micros),
          runtime: rec.runtime,
          wm: jsonText(rec.wandb_metadata),
          typed: typedMap(split.keys, split.rows[0]!.vals),
          rest: split.rows[0]!.rest,
          extra: jsonText(rec.extra),
        });
      }
    }
    reader.close();

    // Columnar path.
    await conn.run(HISTORY_ROWS);
    const keysets = new Map<number, string[]>();
    const res = await ingestParquet(conn, { entity: "e", project: "p", run_id: "r" }, src, async (keys) => {
      keysets.set(keysets.size + 1, keys);
      return keysets.size;
    });
    assert.ok(res, "planned");
    assert.equal(res.rows, expected.length);
    assert.equal(res.maxStep, expected[expected.length - 1]!.step);
    const got = (
      await conn.runAndReadAll(
        `SELECT ${INGEST_COLUMNS.replace("wandb_metadata", "wandb_metadata::VARCHAR").replace("rest", "rest::VARCHAR").replace(" extra", " extra::VARCHAR")}
         FROM history_rows ORDER BY step`,
      )
    )
      .getRows()
      .map(
        ([, , , step, ts, rt, wm, x, ks, vals, rest]): Stored => ({
          step: Number(step),
          micros: ts instanceof DuckDBTimestampTZValue ? ts.micros : null,
          runtime: rt as number | null,
          wm: String(wm),
          typed:
            vals instanceof DuckDBListValue
              ? typedMap(keysets.get(Number(ks))!, vals.items as (number | null)[])
              : new Map(),
          rest: rest === null ? null : String(rest),
          extra: String(x),
        }),
      );
    assert.equal(got.length, expected.length);
    for (let i = 0; i < got.length; i++) {
      const g = got[i]!;
      const e = expected[i]!;
      assert.equal(g.step, e.step);
      assert.equal(g.micros, e.micros, `timestamp at step ${e.step}`);
      assert.ok(Object.is(g.runtime, e.runtime) || (g.runtime === 0 && e.runtime === 0), `runtime at ${e.step}`);
      assert.equal(g.wm, e.wm, `_wandb at step ${e.step}`);
      assert.equal(g.rest, e.rest, `rest at step ${e.step}`);
      assert.deepEqual([...g.typed.keys()].sort(), [...e.typed.keys()].sort(), `numbers' keys at step ${e.step}`);
      for (const [k, v] of e.typed)
        assert.ok(Object.is(g.typed.get(k), v), `${k} at step ${e.step}: ${g.typed.get(k)} vs ${v}`);
      assert.equal(g.extra, e.extra, `extra at step ${e.step}`);
    }
    const kinds = new Map([...res.kinds].map(([k, m]) => [k, m]));
    assert.deepEqual(new Map(tracker.keys().map((k) => [k, kindsToMask(tracker.kinds(k))])), kinds, "metric kinds");
    conn.closeSync();
    inst.closeSync();
  });

  it("refuses types it cannot map with certainty, and duplicate steps", async () => {
    const inst = await DuckDBInstance.create(":memory:");
    const conn = await inst.connect();
    const p = join(dir, "odd.parquet");
    for (const [expr, ok] of [
      ["1.5::DECIMAL(4,1)", false],
      ["DATE '2024-01-01'", false],
      ["MAP {'a': 1}", false],
      ["'x'::BLOB", false],
      ["123::UBIGINT", false],
      ["TIMESTAMP '2024-01-01 00:00:00'", false],
      ["{'a': [1.5::DOUBLE]}", true],
    ] as const) {
      await conn.run(`COPY (SELECT 1::BIGINT AS "_step", ${expr} AS v) TO ${sqlStr(p)} (FORMAT parquet)`);
      assert.equal(planParquetFile(await describeParquet(conn, p), new Set()) !== null, ok, expr);
    }
    await conn.run(`COPY (SELECT 1.0::DOUBLE AS "_step", 1 AS v) TO ${sqlStr(p)} (FORMAT parquet)`);
    assert.equal(planParquetFile(await describeParquet(conn, p), new Set()), null, "DOUBLE _step");
    await conn.run(`COPY (SELECT 1::BIGINT AS "_step", 1 AS v) TO ${sqlStr(p)} (FORMAT parquet)`);
    await conn.run(HISTORY_ROWS);
    const dup = await ingestParquet(
      conn,
      { entity: "e", project: "p", run_id: "r" },
      { paths: [p, p], minStep: 0, maxStep: 10, stringKeys: [] },
      async () => 1,
    );
    assert.equal(dup, null, "a step in two files: decoded instead");
    conn.closeSync();
    inst.closeSync();
  });
});

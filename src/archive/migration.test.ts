/**
 * Schema v3 and later (typed history) on an archive a v2 dr-wandb wrote: history's JSON rows are kept as they are (every metric
 * in rest), read through the `history` view and exported exactly as before, and new rows of the same run are stored
 * typed beside them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { makeRecord, makeState } from "../../test/support/archive-conformance.js";
import { exportArchive } from "../export/archive-export.js";
import { collectionsRun } from "../model/heap.js";
import { type JsonObject, parseWandbJson } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { plainDuckDBValue } from "./duckdb-values.js";
import { openArchive } from "./open.js";
import { DUCKDB_DIALECT, LATEST_SCHEMA_VERSION, MIGRATIONS } from "./schema.js";

const dir = mkdtempSync(join(tmpdir(), "dr-wandb-migration-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function parquetRows(file: string, sql: string): Promise<unknown[][]> {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await conn.run(`CREATE VIEW t AS SELECT * FROM read_parquet('${file}')`);
    return (await conn.runAndReadAll(sql)).getRows().map((r) => r.map(plainDuckDBValue));
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

/** A DuckDB archive as an older dr-wandb left it: the migrations up to `version` applied, and a run r1. Left open. */
async function olderArchive(path: string, version: number) {
  const db = await DuckDBInstance.create(path);
  const conn = await db.connect();
  await conn.run(
    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
  );
  for (const m of MIGRATIONS.slice(0, version)) {
    for (const sql of m.statements(DUCKDB_DIALECT)) await conn.run(sql);
    await conn.run(`INSERT INTO schema_migrations VALUES (${m.version}, 'v${m.version}', now())`);
  }
  await conn.run("INSERT INTO runs (entity, project, run_id, state) VALUES ('e', 'p', 'r1', 'running')");
  return { db, conn };
}

describe("schema v3 on a v2 archive", () => {
  it("keeps the JSON history rows, reads and exports them exactly, and stores new rows typed beside them", async () => {
    const path = join(dir, "v2.duckdb");
    const { db, conn } = await olderArchive(path, 2);
    // what a v2 sync stored: strict JSON text, NaN as the string "NaN", a bigint's exact digits
    for (const [step, m] of [
      [0, '{"loss":0.5,"nan":"NaN","big":12345678901234567890,"s":"x","acc":1}'],
      [1, '{"loss":1e-7,"nan":1.5,"big":-12345678901234567890,"s":"y","acc":2}'],
    ] as const) {
      await conn.run(
        `INSERT INTO history VALUES ('e', 'p', 'r1', ${step}, NULL, ${step}.5, '{}', '${m}', '{"_custom":${step}}')`,
      );
    }
    for (const [k, kinds] of [
      ["loss", 16],
      ["nan", 16],
      ["big", 8],
      ["s", 32],
      ["acc", 4],
    ] as const) {
      await conn.run(`INSERT INTO metric_keys VALUES ('e', 'p', '${k}', ${kinds})`);
    }
    conn.closeSync();
    db.closeSync();

    const archive = await openArchive({ dbUrl: path, outputDir: dir });
    try {
      assert.equal((await archive.status()).schemaVersion, LATEST_SCHEMA_VERSION);
      const legacy = await archive.query("SELECT count(*) FROM history_rows WHERE keyset IS NULL AND rest IS NOT NULL");
      assert.equal(Number(legacy.rows[0]![0]), 2, "the old rows keep every metric in rest");
      const next: HistoryRecord[] = [2, 3].map((step) => ({
        run_id: "r1",
        step,
        timestamp: null,
        runtime: step + 0.5,
        wandb_metadata: {},
        metrics: { loss: step / 8, nan: Number.NaN, big: 12345678901234567890n + BigInt(step), s: "z", acc: step + 1 },
        extra: {},
      }));
      await archive.writeRun({
        record: makeRecord("r1", { entity: "e", project: "p", last_history_step: 3 }),
        state: makeState("r1", { entity: "e", project: "p", last_step: 3 }),
        history: { replace: false, fromStep: 2, batches: [next] },
      });
      const view = await archive.query("SELECT step, metrics FROM history ORDER BY step");
      const metrics = view.rows.map((r) => parseWandbJson(String(r[1])) as JsonObject);
      assert.equal(metrics[0]!.big, 12345678901234567890n);
      assert.equal(metrics[0]!.nan, "NaN", "an old row's NaN is the strict JSON string, as v2 stored it");
      assert.equal(metrics[3]!.big, 12345678901234567893n);
      assert.equal(metrics[3]!.nan, "NaN");
      assert.equal(metrics[2]!.loss, 0.25);

      const out = join(dir, "export");
      const collections = collectionsRun();
      await exportArchive(archive, { outputDir: out, entity: "e", project: "p" });
      assert.equal(collectionsRun(), collections + 1, "the export collects the JavaScript heap before DuckDB's work");
      const rows = await parquetRows(
        join(out, "runs_history.parquet"),
        "SELECT step, loss, nan, CAST(big AS VARCHAR), s, acc, typeof(big), typeof(acc), extra FROM t ORDER BY step",
      );
      assert.equal(rows.length, 4);
      assert.deepEqual(
        rows.map((r) => [r[0], r[1], r[3], r[4], r[5]]),
        [
          [0, 0.5, "12345678901234567890", "x", 1],
          [1, 1e-7, "-12345678901234567890", "y", 2],
          [2, 0.25, "12345678901234567892", "z", 3],
          [3, 0.375, "12345678901234567893", "z", 4],
        ],
      );
      assert.ok(
        Number.isNaN(rows[0]![2]) && rows[1]![2] === 1.5 && Number.isNaN(rows[2]![2]),
        "NaN from old and new rows",
      );
      assert.equal(rows[0]![6], "DECIMAL(38,0)");
      assert.equal(rows[0]![7], "BIGINT");
      assert.equal(rows[1]![8], '{"_custom":1}');
    } finally {
      await archive.close();
    }
  });
});

describe("schema v5: history_rows' primary key", () => {
  /** A DuckDB archive at schema v4 (as dr-wandb wrote it before v5), with `rows` history rows of run r1. */
  async function v4Archive(name: string, rows: number): Promise<string> {
    const path = join(dir, name);
    const { db, conn } = await olderArchive(path, 4);
    for (let step = 0; step < rows; step++) {
      await conn.run(
        `INSERT INTO history_rows (entity, project, run_id, step, runtime, wandb_metadata, rest, extra)
         VALUES ('e', 'p', 'r1', ${step}, ${step}, '{}', '{"loss":${step}}', '{}')`,
      );
    }
    conn.closeSync();
    db.closeSync();
    return path;
  }

  const keyCount = async (archive: Awaited<ReturnType<typeof openArchive>>) =>
    Number(
      (
        await archive.query(
          "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'history_rows' AND constraint_type = 'PRIMARY KEY'",
        )
      ).rows[0]![0],
    );

  /** Writes overlapping, repeated and out-of-order steps to r1 and checks that each step is stored once. */
  async function writeMessy(
    archive: Awaited<ReturnType<typeof openArchive>>,
    from: number,
    expectedRows: number,
  ): Promise<void> {
    const row = (step: number, v: number): HistoryRecord => ({
      run_id: "r1",
      step,
      timestamp: null,
      runtime: step,
      wandb_metadata: {},
      metrics: { loss: v },
      extra: {},
    });
    const batch = [row(from, 1), row(from + 2, 1), row(from + 1, 1), row(from + 2, 2), row(0, 9), row(from + 3, 1)];
    for (let i = 0; i < 2; i++) {
      await archive.writeRun({
        record: makeRecord("r1", { entity: "e", project: "p", last_history_step: from + 3 }),
        state: makeState("r1", { entity: "e", project: "p", last_step: from + 3 }),
        history: { replace: false, fromStep: from, batches: [batch] },
      });
    }
    const r = await archive.query("SELECT count(*), count(DISTINCT step) FROM history_rows WHERE run_id = 'r1'");
    assert.equal(Number(r.rows[0]![0]), Number(r.rows[0]![1]), "each step stored once");
    assert.equal(Number(r.rows[0]![0]), expectedRows);
    const v = await archive.query(
      `SELECT metrics FROM history WHERE run_id = 'r1' AND step IN (0, ${from + 2}) ORDER BY step`,
    );
    assert.deepEqual(
      v.rows.map((x) => (parseWandbJson(String(x[0])) as JsonObject).loss),
      [9, 2],
    );
  }

  it("a new archive has none, and keeps each step once without it", async () => {
    const archive = await openArchive({ dbUrl: join(dir, "fresh-v5.duckdb"), outputDir: dir });
    try {
      assert.equal(await keyCount(archive), 0);
      await writeMessy(archive, 5, 5); // steps 0, 5, 6, 7, 8
    } finally {
      await archive.close();
    }
  });

  it("an older archive holding rows keeps its key (no copy); one without rows is rebuilt without it", async () => {
    const held = await openArchive({ dbUrl: await v4Archive("v4-rows.duckdb", 3), outputDir: dir });
    try {
      assert.equal((await held.status()).schemaVersion, LATEST_SCHEMA_VERSION);
      assert.equal(await keyCount(held), 1, "kept");
      await writeMessy(held, 5, 7); // 0, 1, 2 stored before, then 5, 6, 7, 8
    } finally {
      await held.close();
    }
    const empty = await openArchive({ dbUrl: await v4Archive("v4-empty.duckdb", 0), outputDir: dir });
    try {
      assert.equal(await keyCount(empty), 0, "rebuilt");
      assert.equal(Number((await empty.query("SELECT count(*) FROM history")).rows[0]![0]), 0, "the view is back");
      await writeMessy(empty, 0, 4); // 0, 1, 2, 3
    } finally {
      await empty.close();
    }
  });
});

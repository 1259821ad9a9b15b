/**
 * The archive conformance suite: every backend must pass the same tests. Called from src/archive/duckdb.test.ts and
 * postgres.test.ts with a factory that makes a fresh, empty archive location per test.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Archive, RunSyncState } from "../../src/archive/archive.js";
import { plainDuckDBValue } from "../../src/archive/duckdb.js";
import { ArchiveError } from "../../src/archive/errors.js";
import { openArchive } from "../../src/archive/open.js";
import { LATEST_SCHEMA_VERSION } from "../../src/archive/schema.js";
import { unixToIso } from "../../src/archive/values.js";
import { exportArchive } from "../../src/export/archive-export.js";
import { quoteIdent } from "../../src/model/flatten.js";
import { type JsonObject, type JsonValue, jsonEquals, parseWandbJson, stringifyStrict } from "../../src/model/json.js";
import { type HistoryRecord, RUN_JSON_COMPONENTS, type RunRecord } from "../../src/model/records.js";

export interface ArchiveFixture {
  /** What to pass as --db-url (undefined: the default DuckDB file in outputDir). */
  dbUrl: string | undefined;
  /** A fresh folder (exports go to `<outputDir>/export`). */
  outputDir: string;
  /** Removes what the fixture made; called after every archive of the test is closed. */
  cleanup(): Promise<void>;
}

export type MakeArchiveFixture = () => Promise<ArchiveFixture>;

export const E = "ent";
export const P = "proj";

export function makeRecord(runId: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    entity: E,
    project: P,
    run_id: runId,
    run_name: `name-${runId}`,
    state: "finished",
    created_at: "2024-01-02T03:04:05.678Z",
    heartbeat_at: "2024-01-02T04:00:00.000Z",
    config: { lr: 0.1 },
    summary: { loss: 0.5 },
    wandb_metadata: { python: "3.11" },
    system_metrics: {},
    system_attrs: { name: runId },
    sweep_info: {},
    tags: ["a", "b"],
    group: null,
    job_type: "train",
    user: "alice",
    notes: null,
    commit: "abc123",
    history_keys: { lastStep: 9 },
    last_history_step: 9,
    storage_id: `sid-${runId}`,
    ...over,
  };
}

export function makeState(runId: string, over: Partial<RunSyncState> = {}): RunSyncState {
  return {
    entity: E,
    project: P,
    run_id: runId,
    state: "finished",
    heartbeat_at: "2024-01-02T04:00:00",
    last_step: 9,
    history_complete: true,
    fingerprint: `fp-${runId}`,
    deleted: false,
    synced_at: "2024-02-01T00:00:00.000Z",
    selection: '{"keys":null}',
    ...over,
  };
}

export function makeRow(runId: string, step: number, metrics: JsonObject = {}): HistoryRecord {
  return {
    run_id: runId,
    step,
    timestamp: 1700000000.123456 + step,
    runtime: step * 1.5,
    wandb_metadata: {},
    metrics: { loss: 1 / (step + 1), acc: step, ...metrics },
    extra: {},
  };
}

export function rows(runId: string, from: number, to: number, metrics?: (s: number) => JsonObject): HistoryRecord[] {
  const out: HistoryRecord[] = [];
  for (let s = from; s <= to; s++) out.push(makeRow(runId, s, metrics?.(s)));
  return out;
}

/** Values no JSON column may lose: non-finite floats, integers beyond 2^53, awkward keys, nesting. */
export const TRICKY: JsonObject = {
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  ninf: Number.NEGATIVE_INFINITY,
  int64max: 2n ** 63n - 1n,
  huge: 12345678901234567890123n,
  negbig: -(2n ** 60n) - 7n,
  "dotted.key": 1,
  'quo"ted': "x",
  "back\\slash": "tab\there\nnew line\rcr",
  "uni ✓ ключ 🚀": "значение 🚀",
  nested: { a: [1, 2.5, { b: null, c: [Number.NaN, Number.NEGATIVE_INFINITY] }], "x.y": { 'z"': true } },
  float: 0.1,
  small: 1.5e-7,
  neg: -3.25,
  zero: 0,
  str: "NaN-ish",
  empty: {},
  arr: [],
};

function strictEqual(stored: unknown, original: JsonValue, what: string): void {
  assert.equal(typeof stored, "string", `${what} comes back as JSON text`);
  const got = parseWandbJson(stored as string);
  const want = parseWandbJson(stringifyStrict(original));
  assert.ok(jsonEquals(got, want), `${what} round trip:\n got ${stringifyStrict(got)}\nwant ${stringifyStrict(want)}`);
}

async function* failingBatches(rowsFirst: HistoryRecord[]): AsyncIterable<HistoryRecord[]> {
  yield rowsFirst;
  throw new Error("network went away mid-history");
}

async function queryObjects(a: Archive, sql: string): Promise<Record<string, unknown>[]> {
  const r = await a.query(sql);
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]])));
}

async function count(a: Archive, sql: string): Promise<number> {
  const r = await a.query(sql);
  return Number(r.rows[0]![0]);
}

/** Everything stored, as comparable text (for "the archive equals its state before"). */
async function snapshot(a: Archive): Promise<string> {
  const parts: string[] = [];
  for (const t of ["runs", "history", "history_keysets", "system_metrics", "files", "sync_state", "metric_keys"]) {
    const r = await a.query(`SELECT * FROM ${t} ORDER BY 1, 2, 3, 4`);
    parts.push(
      `${t}:${stringifyStrict(r.rows.map((row) => row.map((v) => (typeof v === "bigint" ? String(v) : (v as JsonValue)))) as JsonValue)}`,
    );
  }
  return parts.join("\n");
}

async function readParquet(file: string, sql = "SELECT * FROM t"): Promise<{ columns: string[]; rows: unknown[][] }> {
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    await conn.run(`CREATE VIEW t AS SELECT * FROM read_parquet('${file.replaceAll("'", "''")}')`);
    const r = await conn.runAndReadAll(sql);
    return { columns: r.columnNames(), rows: r.getRows().map((row) => row.map(plainDuckDBValue)) };
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

async function rejectsWithCode(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<ArchiveError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ArchiveError, `expected an ArchiveError, got ${String(e)}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    assert.ok(!e.message.includes("\n"), "one line");
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected ${code}`);
}

export function runArchiveTests(name: string, makeArchive: MakeArchiveFixture): void {
  describe(`archive conformance: ${name}`, () => {
    const open = (fx: ArchiveFixture, readOnly = false) =>
      openArchive({ dbUrl: fx.dbUrl, outputDir: fx.outputDir, readOnly });

    async function withArchive(fn: (a: Archive, fx: ArchiveFixture) => Promise<void>): Promise<void> {
      const fx = await makeArchive();
      let a: Archive | undefined;
      try {
        a = await open(fx);
        await fn(a, fx);
      } finally {
        await a?.close();
        await fx.cleanup();
      }
    }

    it("migrations: versioned, idempotent, and a newer schema is refused", async () => {
      const fx = await makeArchive();
      try {
        let a = await open(fx);
        assert.equal((await a.status()).schemaVersion, LATEST_SCHEMA_VERSION);
        await a.close();
        a = await open(fx);
        const v = await a.query("SELECT version FROM schema_migrations ORDER BY version");
        assert.deepEqual(
          v.rows.map((r) => Number(r[0])),
          Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
        );
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 2)] },
        });
        await a.close();
        a = await open(fx);
        assert.equal(await count(a, "SELECT count(*) FROM history"), 3, "reopening keeps data");
        await a.query(
          `INSERT INTO schema_migrations (version, description, applied_at) VALUES (${LATEST_SCHEMA_VERSION + 1}, 'future', now())`,
        );
        await a.close();
        await rejectsWithCode(open(fx), "SCHEMA_NEWER", /upgrade dr-wandb/);
        await rejectsWithCode(open(fx, true), "SCHEMA_NEWER");
      } finally {
        await fx.cleanup();
      }
    });

    it("writeRun round trip is exact (NaN, ±Infinity, bigints, awkward keys, nesting, a 5 MB config)", async () => {
      await withArchive(async (a) => {
        const many: JsonObject = {};
        for (let i = 0; i < 20000; i++) many[`param_${i}`] = i % 3 === 0 ? i * 0.5 : `value-${i}`;
        const config: JsonObject = { ...TRICKY, many, blob: "z".repeat(4_500_000) };
        const record = makeRecord("r1", {
          config,
          summary: TRICKY,
          wandb_metadata: { nested: TRICKY },
          system_metrics: { "gpu.0.temp": 40 },
          system_attrs: { raw: TRICKY },
          sweep_info: { sweep_id: "sw1" },
          history_keys: { lastStep: 3, keys: { loss: { typeCounts: [{ type: "number", count: 4 }] } } },
          tags: ["ü", "with space", "comma,tag", 'quote"tag'],
          notes: "multi\nline\tnotes \\ backslash",
          state: "preempted",
          last_history_step: 3,
        });
        const hist: HistoryRecord[] = [0, 1, 2, 3].map(
          (s): HistoryRecord => ({
            run_id: "r1",
            step: s,
            timestamp: s === 2 ? null : 1700000000.123456 + s,
            runtime: s === 1 ? Number.NaN : s === 2 ? null : s + 0.25,
            wandb_metadata: s === 0 ? { runtime: 1 } : {},
            metrics: { ...TRICKY, step: s * 10, loss: 1 / (s + 1) },
            extra: s === 3 ? { _private: "x", _big: 2n ** 62n } : {},
          }),
        );
        const r = await a.writeRun({
          record,
          state: makeState("r1", { state: "preempted", last_step: 3 }),
          history: { replace: true, fromStep: 0, batches: [hist.slice(0, 2), hist.slice(2)] },
          systemMetrics: [
            { run_id: "r1", timestamp: 1700000000.5, runtime: 1, metrics: { "system.cpu": 12.5, nan: Number.NaN } },
          ],
          files: [
            {
              entity: E,
              project: P,
              run_id: "r1",
              name: "config.yaml",
              size: 123,
              md5: "abc",
              updated_at: "2024-01-02T03:04:05Z",
              local_path: "files/r1/config.yaml",
            },
          ],
        });
        assert.deepEqual(r, { historyRows: 4 });
        const [run] = await queryObjects(a, "SELECT * FROM runs");
        assert.ok(run);
        for (const c of [...RUN_JSON_COMPONENTS, "history_keys"] as const) {
          strictEqual(run[c], record[c] as JsonValue, `runs.${c}`);
        }
        assert.deepEqual(run.tags, record.tags);
        assert.equal(run.notes, record.notes);
        assert.equal(run.state, "preempted");
        assert.equal(run.created_at, "2024-01-02T03:04:05.678Z");
        assert.equal(run.group, null);
        assert.equal(run.user, "alice");
        assert.equal(run.commit, "abc123");
        assert.equal(run.last_history_step, 3);
        assert.equal(run.deleted, false);
        const h = await queryObjects(
          a,
          `SELECT step, "timestamp", runtime, wandb_metadata, metrics, extra FROM history ORDER BY step`,
        );
        assert.equal(h.length, 4);
        h.forEach((row, i) => {
          const want = hist[i]!;
          assert.equal(row.step, want.step);
          assert.equal(row.timestamp, unixToIso(want.timestamp));
          if (want.runtime === null) assert.equal(row.runtime, null);
          else assert.ok(Object.is(row.runtime, want.runtime) || row.runtime === want.runtime, `runtime ${i}`);
          strictEqual(row.metrics, want.metrics, `history.metrics[${i}]`);
          strictEqual(row.extra, want.extra, `history.extra[${i}]`);
          strictEqual(row.wandb_metadata, want.wandb_metadata, `history.wandb_metadata[${i}]`);
        });
        assert.equal(h[0]!.timestamp, "2023-11-14T22:13:20.123456Z");
        const sm = await queryObjects(a, `SELECT "timestamp", runtime, metrics FROM system_metrics`);
        assert.equal(sm.length, 1);
        assert.equal(sm[0]!.timestamp, "2023-11-14T22:13:20.500Z");
        strictEqual(sm[0]!.metrics, { "system.cpu": 12.5, nan: Number.NaN }, "system_metrics.metrics");
        const files = await queryObjects(a, "SELECT name, size, md5, updated_at, local_path FROM files");
        assert.deepEqual(files, [
          {
            name: "config.yaml",
            size: 123,
            md5: "abc",
            updated_at: "2024-01-02T03:04:05.000Z",
            local_path: "files/r1/config.yaml",
          },
        ]);
        const keys = await queryObjects(a, "SELECT key, kinds FROM metric_keys ORDER BY key");
        assert.ok(keys.some((k) => k.key === "uni ✓ ключ 🚀"));
        assert.ok(keys.some((k) => k.key === 'quo"ted'));
      });
    });

    it("U+0000 in text and JSON never fails a write (PostgreSQL stores it as U+FFFD)", async () => {
      await withArchive(async (a) => {
        const nul = "a\u0000b \\u0000 literal";
        await a.writeRun({
          record: makeRecord("r\u0000", { notes: nul, config: { [nul]: nul } }),
          state: makeState("r\u0000"),
          history: { replace: true, fromStep: 0, batches: [[makeRow("r\u0000", 0, { s: nul })]] },
        });
        const [row] = await queryObjects(a, "SELECT run_id, notes, config FROM runs");
        const [h] = await queryObjects(a, "SELECT metrics FROM history");
        const want = a.kind === "postgres" ? nul.replaceAll("\u0000", "\uFFFD") : nul;
        assert.equal(row!.notes, want);
        assert.equal(row!.run_id, a.kind === "postgres" ? "r\uFFFD" : "r\u0000");
        strictEqual(row!.config, { [want]: want }, "config with NUL");
        assert.equal((parseWandbJson(h!.metrics as string) as JsonObject).s, want);
      });
    });

    it("a metric key holding U+0000 exports under a column named with U+FFFD (no SQL text can hold U+0000)", async () => {
      await withArchive(async (a, fx) => {
        const key = "k\u0000ey";
        const rows = [makeRow("r1", 0, { [key]: 1.5, [`t${key}`]: "v\u0000w" }), makeRow("r1", 1, { [key]: 2.5 })];
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows] },
        });
        const out = join(fx.outputDir, "export");
        await exportArchive(a, { outputDir: out, entity: E, project: P });
        const h = await readParquet(
          join(out, "runs_history.parquet"),
          `SELECT "k\ufffdey", "tk\ufffdey" FROM t ORDER BY step`,
        );
        // PostgreSQL's text and JSONB cannot hold U+0000 either: it stores U+FFFD
        const v = a.kind === "postgres" ? "v\ufffdw" : "v\u0000w";
        assert.deepEqual(h.rows, [
          [1.5, v],
          [2.5, null],
        ]);
      });
    });

    it("a lone surrogate never fails a write or the export: U+FFFD in both backends (their JSON refuses it)", async () => {
      await withArchive(async (a, fx) => {
        const lone = "x\ud83d y\udc00 pair \ud83d\ude00 literal \\ud83d";
        const fixed = "x\ufffd y\ufffd pair \ud83d\ude00 literal \\ud83d";
        await a.writeRun({
          record: makeRecord("r1", { config: { [`k${lone}`]: lone }, summary: { s: lone } }),
          state: makeState("r1"),
          history: {
            replace: true,
            fromStep: 0,
            batches: [
              [
                {
                  ...makeRow("r1", 0, { s: lone, o: { [lone]: [lone] }, [`n${lone}`]: 1.5 }),
                  wandb_metadata: { w: lone },
                  extra: { _e: lone },
                },
              ],
            ],
          },
          systemMetrics: [
            { run_id: "r1", timestamp: 1700000000.25, runtime: 2, metrics: { [`g${lone}`]: 1, s: lone } },
          ],
        });
        const [row] = await queryObjects(a, "SELECT config, summary FROM runs");
        strictEqual(row!.config, { [`k${fixed}`]: fixed }, "config");
        strictEqual(row!.summary, { s: fixed }, "summary");
        const [h] = await queryObjects(a, "SELECT metrics, wandb_metadata, extra FROM history");
        const m = parseWandbJson(h!.metrics as string) as JsonObject;
        assert.deepStrictEqual([m.s, m.o, m[`n${fixed}`]], [fixed, { [fixed]: [fixed] }, 1.5]);
        strictEqual(h!.wandb_metadata, { w: fixed }, "wandb_metadata");
        strictEqual(h!.extra, { _e: fixed }, "extra");
        const out = join(fx.outputDir, "export");
        const { files } = await exportArchive(a, { outputDir: out, entity: E, project: P });
        assert.ok(files.length >= 8, "every file written");
        const x = await readParquet(join(out, "runs_history.parquet"), `SELECT ${quoteIdent(`n${fixed}`)}, s FROM t`);
        assert.deepEqual(x.rows, [[1.5, fixed]], "the number under a key with a lone surrogate");
      });
    });

    it("append from a step is idempotent; out-of-order and duplicate steps keep the last row", async () => {
      await withArchive(async (a) => {
        const rec = makeRecord("r1");
        await a.writeRun({
          record: rec,
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 9)] },
        });
        const again = { replace: false, fromStep: 5, batches: [rows("r1", 5, 9), rows("r1", 10, 14)] };
        assert.equal((await a.writeRun({ record: rec, state: makeState("r1"), history: again })).historyRows, 10);
        await a.writeRun({
          record: rec,
          state: makeState("r1"),
          history: { replace: false, fromStep: 5, batches: [rows("r1", 5, 9), rows("r1", 10, 14)] },
        });
        assert.equal(await count(a, "SELECT count(*) FROM history"), 15);
        assert.equal(await count(a, "SELECT count(DISTINCT step) FROM history"), 15);
        // steps out of order, repeated within one write, and below fromStep (already stored)
        const messy = [
          makeRow("r1", 15, { v: 1 }),
          makeRow("r1", 17, { v: 1 }),
          makeRow("r1", 16, { v: 1 }),
          makeRow("r1", 17, { v: 2 }),
          makeRow("r1", 3, { v: 9 }),
          makeRow("r1", 18, { v: 1 }),
        ];
        await a.writeRun({
          record: rec,
          state: makeState("r1"),
          history: { replace: false, fromStep: 15, batches: [messy] },
        });
        assert.equal(await count(a, "SELECT count(*) FROM history"), 19);
        const v = await queryObjects(a, "SELECT step, metrics FROM history WHERE step IN (3, 16, 17) ORDER BY step");
        assert.equal((parseWandbJson(v[0]!.metrics as string) as JsonObject).v, 9);
        assert.equal((parseWandbJson(v[1]!.metrics as string) as JsonObject).v, 1);
        assert.equal((parseWandbJson(v[2]!.metrics as string) as JsonObject).v, 2);
      });
    });

    it("replace deletes the run's stored history (and only that run's)", async () => {
      await withArchive(async (a) => {
        for (const id of ["r1", "r2"]) {
          await a.writeRun({
            record: makeRecord(id),
            state: makeState(id),
            history: { replace: true, fromStep: 0, batches: [rows(id, 0, 9)] },
          });
        }
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 100, 102)] },
        });
        assert.equal(await count(a, "SELECT count(*) FROM history WHERE run_id = 'r1'"), 3);
        assert.equal(await count(a, "SELECT min(step) FROM history WHERE run_id = 'r1'"), 100);
        assert.equal(await count(a, "SELECT count(*) FROM history WHERE run_id = 'r2'"), 10);
        // a write without history leaves history as it is
        await a.writeRun({ record: makeRecord("r1", { state: "crashed" }), state: makeState("r1") });
        assert.equal(await count(a, "SELECT count(*) FROM history WHERE run_id = 'r1'"), 3);
      });
    });

    it("a batch iterator failing mid-write rolls back everything of that run", async () => {
      await withArchive(async (a) => {
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 9)] },
          systemMetrics: [{ run_id: "r1", timestamp: 1700000000, runtime: 1, metrics: { cpu: 1 } }],
          files: [
            {
              entity: E,
              project: P,
              run_id: "r1",
              name: "a.txt",
              size: 1,
              md5: null,
              updated_at: null,
              local_path: null,
            },
          ],
        });
        const before = await snapshot(a);
        for (const replace of [true, false]) {
          await assert.rejects(
            a.writeRun({
              record: makeRecord("r1", { config: { changed: true }, state: "running" }),
              state: makeState("r1", { last_step: 5000, fingerprint: "new" }),
              history: {
                replace,
                fromStep: 5,
                batches: failingBatches(rows("r1", 5, 3000, (s) => ({ newkey: s }))),
              },
              systemMetrics: [],
              files: [],
            }),
            /network went away/,
          );
          assert.equal(await snapshot(a), before, `archive unchanged (replace=${replace})`);
        }
        // a database error (a JSON text the column refuses is impossible here, so use a step that is not a number)
        await assert.rejects(
          a.writeRun({
            record: makeRecord("r1", { config: { changed: true } }),
            state: makeState("r1"),
            history: {
              replace: true,
              fromStep: 0,
              batches: [[...rows("r1", 0, 3), { ...makeRow("r1", 4), step: Number.NaN }]],
            },
          }),
        );
        assert.equal(await snapshot(a), before, "archive unchanged after a failing row");
        // and the archive is still usable
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: false, fromStep: 10, batches: [rows("r1", 10, 11)] },
        });
        assert.equal(await count(a, "SELECT count(*) FROM history"), 12);
      });
    });

    it("typed history: numbers in vals by keyset, other values in rest, -0 kept; a rolled-back keyset is made again", async () => {
      await withArchive(async (a, fx) => {
        const negZero = (s: number): JsonObject => ({
          z: s === 1 ? -0 : s + 0.5,
          s: s === 2 ? "two" : s,
          b: 2n ** 60n,
        });
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 3, negZero)] },
        });
        const stored = await queryObjects(
          a,
          `SELECT h.step, k.keys, CAST(h.vals[1] AS VARCHAR) AS first, CAST(h.rest AS VARCHAR) AS rest
           FROM history_rows h JOIN history_keysets k ON k.entity = h.entity AND k.project = h.project AND k.keyset = h.keyset
           ORDER BY h.step`,
        );
        assert.equal(stored.length, 4);
        assert.deepEqual(stored[0]!.keys, ["loss", "acc", "z", "s"], "one keyset for the chunk, in first-seen order");
        const restOf = (i: number) => parseWandbJson(String(stored[i]!.rest)) as JsonObject;
        assert.equal(restOf(0).b, 2n ** 60n, "a bigint stays exact, in rest");
        assert.equal(restOf(2).s, "two", "a string in rest, beside the same key's numbers in vals");
        assert.equal(restOf(2).z, undefined);
        // -0 keeps its sign in vals and in the export
        const z = await queryObjects(a, `SELECT CAST(h.vals[3] AS TEXT) AS z FROM history_rows h WHERE h.step = 1`);
        assert.match(String(z[0]!.z), /^-0(\.0)?$/);
        const out = join(fx.outputDir, "export");
        await exportArchive(a, { outputDir: out, entity: E, project: P });
        const h = await readParquet(join(out, "runs_history.parquet"), "SELECT z, s, b FROM t ORDER BY step");
        assert.ok(Object.is(h.rows[1]![0], -0), "-0 exported as -0");
        assert.deepEqual(
          h.rows.map((r) => r[1]),
          ["0", "1", '"two"', "3"],
          "a key of numbers and strings: JSON",
        );
        // a write that fails after its rows made a new keyset takes the keyset with it; the next write makes it again
        const keysets = () => count(a, "SELECT count(*) FROM history_keysets");
        const before = await keysets();
        await assert.rejects(
          a.writeRun({
            record: makeRecord("r2"),
            state: makeState("r2"),
            history: {
              replace: true,
              fromStep: 0,
              batches: failingBatches(rows("r2", 0, 2500, (st) => ({ fresh: st }))),
            },
          }),
          /network went away/,
        );
        assert.equal(await keysets(), before, "rolled back");
        await a.writeRun({
          record: makeRecord("r2"),
          state: makeState("r2"),
          history: { replace: true, fromStep: 0, batches: [rows("r2", 0, 2, (st) => ({ fresh: st }))] },
        });
        assert.equal(await keysets(), before + 1);
        await a.writeRun({
          record: makeRecord("r3"),
          state: makeState("r3"),
          history: { replace: true, fromStep: 0, batches: [rows("r3", 0, 2, (st) => ({ fresh: st }))] },
        });
        assert.equal(await keysets(), before + 1, "the same keys reuse their keyset");
        const fresh = await queryObjects(a, "SELECT metrics FROM history WHERE run_id = 'r3' AND step = 2");
        assert.equal((parseWandbJson(String(fresh[0]!.metrics)) as JsonObject).fresh, 2);
      });
    });

    it("preserve keeps stored wandb_metadata/sweep_info of an existing run, and is ignored for a new one", async () => {
      await withArchive(async (a) => {
        const first = makeRecord("r1", { wandb_metadata: { os: "linux" }, sweep_info: { sweep_id: "s1" } });
        await a.writeRun({ record: first, state: makeState("r1"), preserve: ["wandb_metadata"] });
        const later = makeRecord("r1", { wandb_metadata: {}, sweep_info: {}, summary: { loss: 0.1 } });
        await a.writeRun({ record: later, state: makeState("r1"), preserve: ["wandb_metadata", "sweep_info"] });
        const [row] = await queryObjects(a, "SELECT wandb_metadata, sweep_info, summary FROM runs");
        strictEqual(row!.wandb_metadata, { os: "linux" }, "wandb_metadata kept");
        strictEqual(row!.sweep_info, { sweep_id: "s1" }, "sweep_info kept");
        strictEqual(row!.summary, { loss: 0.1 }, "summary updated");
        await a.writeRun({ record: later, state: makeState("r1") });
        const [row2] = await queryObjects(a, "SELECT wandb_metadata FROM runs");
        strictEqual(row2!.wandb_metadata, {}, "rewritten without preserve");
      });
    });

    it("writeRunRecords, loadSyncState and markDeleted", async () => {
      await withArchive(async (a) => {
        const items = Array.from({ length: 450 }, (_, i) => ({
          record: makeRecord(`run${i}`, { state: i % 3 === 0 ? "running" : "finished" }),
          state: makeState(`run${i}`, {
            state: i % 3 === 0 ? "running" : "finished",
            last_step: i - 1,
            history_complete: i % 2 === 0,
          }),
        }));
        await a.writeRunRecords(items);
        await a.writeRunRecords(items.slice(0, 10)); // again: upsert, not duplicate
        assert.equal(await count(a, "SELECT count(*) FROM runs"), 450);
        const other = makeRecord("x", { project: "other" });
        await a.writeRunRecords([{ record: other, state: makeState("x", { project: "other" }) }]);
        const states = await a.loadSyncState(E, P);
        assert.equal(states.size, 450);
        assert.deepEqual(states.get("run7"), items[7]!.state);
        assert.deepEqual(states.get("run0"), { ...items[0]!.state, last_step: -1 });
        assert.equal((await a.loadSyncState(E, "other")).size, 1);
        assert.equal((await a.loadSyncState("nobody", P)).size, 0);
        await a.markDeleted(E, P, ["run1", "run2", "nope"]);
        const after = await a.loadSyncState(E, P);
        assert.equal(after.get("run1")!.deleted, true);
        assert.equal(after.get("run3")!.deleted, false);
        assert.equal(await count(a, "SELECT count(*) FROM runs WHERE deleted AND deleted_at IS NOT NULL"), 2);
        assert.equal(await count(a, "SELECT count(*) FROM runs WHERE deleted AND project = 'other'"), 0);
        const st = await a.status();
        const p = st.projects.find((x) => x.project === P)!;
        assert.equal(p.runs, 450);
        assert.equal(p.deletedRuns, 2);
        assert.equal(p.runsByState.running, 150);
        assert.equal(p.runsByState.finished, 300);
      });
    });

    it("status and logSync", async () => {
      await withArchive(async (a) => {
        let s = await a.status();
        assert.equal(s.kind, name.startsWith("postgres") ? "postgres" : "duckdb");
        assert.deepEqual(s.projects, []);
        assert.ok(!/password|dr-wandb-test/.test(s.location), "no password in location");
        await a.writeRun({
          record: makeRecord("r1"),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 4)] },
        });
        await a.writeRun({
          record: makeRecord("r2", { state: "running" }),
          state: makeState("r2"),
          history: { replace: true, fromStep: 0, batches: [rows("r2", 0, 2)] },
        });
        await a.logSync({
          entity: E,
          project: P,
          started_at: "2024-03-01T00:00:00.000Z",
          finished_at: "2024-03-01T00:05:00.000Z",
          runs_seen: 2,
          runs_written: 2,
          history_rows: 8,
          requests: 5,
          options: '{"runsOnly":false}',
        });
        s = await a.status();
        assert.equal(s.schemaVersion, LATEST_SCHEMA_VERSION);
        assert.deepEqual(s.projects, [
          {
            entity: E,
            project: P,
            runs: 2,
            runsByState: { finished: 1, running: 1 },
            deletedRuns: 0,
            historyRows: 8,
            lastSyncAt: "2024-03-01T00:05:00.000Z",
          },
        ]);
        const log = await queryObjects(a, "SELECT runs_seen, history_rows, options FROM sync_log");
        assert.deepEqual(log, [{ runs_seen: 2, history_rows: 8, options: '{"runsOnly":false}' }]);
      });
    });

    it("query returns columns and plain JS values", async () => {
      await withArchive(async (a) => {
        await a.writeRun({ record: makeRecord("r1"), state: makeState("r1") });
        const r = await a.query(
          `SELECT CAST(9007199254740993 AS BIGINT) AS big, CAST(5 AS BIGINT) AS small, CAST('2024-01-02T03:04:05.5Z' AS TIMESTAMPTZ) AS ts, config, tags FROM runs`,
        );
        assert.deepEqual(r.columns, ["big", "small", "ts", "config", "tags"]);
        const row = r.rows[0]!;
        assert.equal(row[0], 9007199254740993n);
        assert.equal(row[1], 5);
        assert.equal(row[2], "2024-01-02T03:04:05.500Z");
        assert.equal(typeof row[3], "string");
        assert.ok(jsonEquals(JSON.parse(row[3] as string), { lr: 0.1 }));
        assert.deepEqual(row[4], ["a", "b"]);
        await assert.rejects(
          a.query("SELECT * FROM no_such_table"),
          (e: unknown) => e instanceof ArchiveError && e.code === "QUERY",
        );
      });
    });

    it("concurrent writeRun calls on one archive are serialised, not interleaved", async () => {
      await withArchive(async (a) => {
        await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            a.writeRun({
              record: makeRecord(`c${i}`),
              state: makeState(`c${i}`),
              history: { replace: true, fromStep: 0, batches: [rows(`c${i}`, 0, 99), rows(`c${i}`, 100, 199)] },
            }),
          ),
        );
        assert.equal(await count(a, "SELECT count(*) FROM history"), 1200);
      });
    });

    it("export: the original's Parquet files, typed, exact, filtered by project", async () => {
      await withArchive(async (a, fx) => {
        const metrics = (s: number): JsonObject => ({
          step: s * 100,
          nan_metric: s === 1 ? Number.NaN : s,
          inf_metric: s === 2 ? Number.NEGATIVE_INFINITY : 1.5,
          big: 2n ** 63n - 1n - BigInt(s),
          huge: 12345678901234567890123n + BigInt(s),
          mixed: s % 2 === 0 ? "text" : s,
          "dotted.name": s,
          'quo"te': s === 0 ? null : true,
          RUN_ID: "not the run id",
          nested: { a: s },
        });
        const hist = rows("r1", 0, 3, metrics);
        await a.writeRun({
          record: makeRecord("r1", { config: TRICKY }),
          state: makeState("r1"),
          history: { replace: true, fromStep: 0, batches: [hist] },
          systemMetrics: [{ run_id: "r1", timestamp: 1700000000.25, runtime: 2, metrics: { "system.gpu.0": 1 } }],
        });
        await a.writeRun({
          record: makeRecord("o1", { project: "other" }),
          state: makeState("o1", { project: "other" }),
          history: { replace: true, fromStep: 0, batches: [rows("o1", 0, 1, () => ({ only_other: 1 }))] },
        });
        const out = join(fx.outputDir, "export");
        const { files } = await exportArchive(a, { outputDir: out, entity: E, project: P });
        const names = files.map((f) => f.slice(out.length + 1)).sort();
        assert.deepEqual(names, [
          "runs_history.parquet",
          "runs_metadata.parquet",
          "runs_metadata_config.parquet",
          "runs_metadata_summary.parquet",
          "runs_metadata_sweep_info.parquet",
          "runs_metadata_system_attrs.parquet",
          "runs_metadata_system_metrics.parquet",
          "runs_metadata_wandb_metadata.parquet",
          "runs_system_metrics.parquet",
        ]);
        const meta = await readParquet(join(out, "runs_metadata.parquet"));
        assert.deepEqual(meta.columns.slice(0, 6), ["run_id", "run_name", "state", "project", "entity", "created_at"]);
        assert.equal(meta.rows.length, 1, "only the project asked for");
        strictEqual(meta.rows[0]![meta.columns.indexOf("config")], TRICKY, "exported config");
        const cfg = await readParquet(join(out, "runs_metadata_config.parquet"));
        assert.deepEqual(cfg.columns, ["run_id", "run_name", "state", "project", "entity", "created_at", "config"]);
        const types = await readParquet(
          join(out, "runs_history.parquet"),
          "SELECT column_name, column_type FROM (DESCRIBE t)",
        );
        const typeOf = Object.fromEntries(types.rows.map((r) => [r[0], r[1]]));
        assert.equal(typeOf.step, "BIGINT");
        assert.equal(typeOf.timestamp, "TIMESTAMP WITH TIME ZONE");
        assert.equal(typeOf["metrics.step"], "BIGINT", "a metric named step is kept apart from the step column");
        assert.equal(typeOf.nan_metric, "DOUBLE");
        assert.equal(typeOf.big, "BIGINT");
        assert.equal(typeOf.huge, "DECIMAL(38,0)");
        assert.equal(typeOf["dotted.name"], "BIGINT");
        assert.equal(typeOf['quo"te'], "BOOLEAN");
        assert.equal(typeOf["metrics.RUN_ID"], "VARCHAR");
        assert.equal(typeOf.mixed, "JSON");
        assert.equal(typeOf.nested, "JSON");
        assert.equal(typeOf.only_other, undefined, "other project's metric keys are not columns");
        const h = await readParquet(
          join(out, "runs_history.parquet"),
          `SELECT run_id, step, "metrics.step", nan_metric, inf_metric, big, huge, "timestamp", mixed, "quo""te", nested FROM t ORDER BY step`,
        );
        assert.equal(h.rows.length, 4);
        h.rows.forEach((r, s) => {
          assert.equal(r[0], "r1");
          assert.equal(r[1], s);
          assert.equal(r[2], s * 100);
          if (s === 1) assert.ok(Number.isNaN(r[3]), "NaN kept as NaN");
          else assert.equal(r[3], s);
          assert.equal(r[4], s === 2 ? Number.NEGATIVE_INFINITY : 1.5);
          assert.equal(r[5], 2n ** 63n - 1n - BigInt(s));
          assert.equal(r[6], 12345678901234567890123n + BigInt(s));
          assert.equal(r[7], unixToIso(hist[s]!.timestamp));
          assert.equal(r[8], s % 2 === 0 ? '"text"' : String(s));
          assert.equal(r[9], s === 0 ? null : true);
          assert.equal(r[10], `{"a":${s}}`);
        });
        const sm = await readParquet(join(out, "runs_system_metrics.parquet"));
        assert.deepEqual(sm.columns, ["run_id", "timestamp", "runtime", "metrics"]);
        assert.equal(sm.rows.length, 1);
        assert.ok(!existsSync(`${join(out, "runs_history.parquet")}.tmp-${process.pid}`));
        // without a filter: everything
        const all = join(fx.outputDir, "export-all");
        await exportArchive(a, { outputDir: all });
        assert.equal((await readParquet(join(all, "runs_metadata.parquet"))).rows.length, 2);
        const allTypes = await readParquet(join(all, "runs_history.parquet"), "SELECT column_name FROM (DESCRIBE t)");
        assert.ok(allTypes.rows.some((r) => r[0] === "only_other"));
        assert.equal((await readParquet(join(all, "runs_history.parquet"))).rows.length, 6);
      });
    });

    it("export of an empty archive writes empty files", async () => {
      await withArchive(async (a, fx) => {
        const out = join(fx.outputDir, "export");
        const { files } = await exportArchive(a, { outputDir: out });
        assert.equal(files.length, 9);
        assert.equal((await readParquet(join(out, "runs_history.parquet"))).rows.length, 0);
      });
    });

    it("parquetSources: the exports' rows, then the batches, stored exactly as the same rows decoded", async () => {
      const t = tempDir("dr-wandb-parquet-src-");
      try {
        const file = join(t.dir, "0.parquet");
        const inst = await DuckDBInstance.create(":memory:");
        const conn = await inst.connect();
        await conn.run(`COPY (SELECT i::BIGINT AS "_step", 1700000000.25 + i * 0.5 AS "_timestamp",
            CASE WHEN i % 7 = 0 THEN 'NaN'::DOUBLE ELSE i / 3 END AS "_runtime",
            CASE WHEN i % 2 = 0 THEN {'runtime': i} END AS "_wandb",
            CASE WHEN i % 3 = 0 THEN i * 0.1 END AS "_extra",
            CASE i % 5 WHEN 0 THEN 'NaN'::DOUBLE WHEN 1 THEN '-Infinity'::DOUBLE WHEN 2 THEN -0.0 ELSE i / 7 END AS loss,
            9007199254740993 + i AS "big.int",
            CASE WHEN i % 4 = 0 THEN '123456789012345678901234567890' ELSE 'x"\\' || chr(10) || '精度' END AS "huge 🚀",
            CASE WHEN i % 6 = 0 THEN NULL ELSE {'_type': 'histogram', 'bins': [i * 1.5, NULL], 'n': i} END AS "2",
            i % 2 = 0 AS "is_best"
          FROM range(100) r(i)) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
        conn.closeSync();
        inst.closeSync();
        const live = [makeRow("r", 80, { loss: 1.5, extra_live: "x" }), makeRow("r", 81, { loss: Number.NaN })];
        const { decodeParquetSources } = await import("../../src/model/parquet-decode.js");
        const src = { paths: [file], minStep: 0, maxStep: 80, stringKeys: [] };
        const decoded: HistoryRecord[][] = [];
        for await (const b of decodeParquetSources([src], "r")) decoded.push(b);
        await withArchive(async (a) => {
          const write = (project: string, history: NonNullable<Parameters<Archive["writeRun"]>[0]["history"]>) =>
            a.writeRun({ record: makeRecord("r", { project }), state: makeState("r", { project }), history });
          const n1 = await write("files", { replace: true, fromStep: 0, batches: [live], parquetSources: [src] });
          const n2 = await write("rows", { replace: true, fromStep: 0, batches: [...decoded, live] });
          // A step present twice (the same file given twice) cannot be inserted as it is: decoded, one row per step.
          const n3 = await write("dups", {
            replace: false,
            fromStep: 0,
            batches: [live],
            parquetSources: [{ ...src, paths: [file, file] }],
          });
          assert.equal(n1.historyRows, 82);
          assert.equal(n2.historyRows, 82);
          assert.equal(n3.historyRows, 82);
          const dump = async (project: string) => ({
            history: JSON.stringify(
              (
                await a.query(
                  `SELECT step, "timestamp", runtime, wandb_metadata, metrics, extra FROM history WHERE project = '${project}' ORDER BY step`,
                )
              ).rows,
              (_k, v) =>
                typeof v === "bigint" ? `${v}n` : typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
            ),
            keys: JSON.stringify(
              (await a.query(`SELECT key, kinds FROM metric_keys WHERE project = '${project}' ORDER BY key`)).rows,
            ),
          });
          const rows = await dump("rows");
          assert.deepEqual(await dump("files"), rows);
          assert.deepEqual(await dump("dups"), rows);
          assert.match(rows.history, /"NaN"/);
          assert.match(rows.history, /123456789012345678901234567890/);
        });
      } finally {
        t.remove();
      }
    });

    it("a second writer gets LOCKED; a reader opened read-only cannot write", async () => {
      await withArchive(async (a, fx) => {
        await a.writeRun({ record: makeRecord("r1"), state: makeState("r1") });
        await rejectsWithCode(open(fx), "LOCKED", /another dr-wandb process holds the archive/);
        await a.writeRun({ record: makeRecord("r2"), state: makeState("r2") });
      });
      const fx = await makeArchive();
      try {
        const w = await open(fx);
        await w.writeRun({ record: makeRecord("r1"), state: makeState("r1") });
        await w.close();
        const r = await open(fx, true);
        try {
          assert.equal((await r.status()).projects[0]?.runs, 1);
          await rejectsWithCode(r.writeRun({ record: makeRecord("r2"), state: makeState("r2") }), "WRITE");
        } finally {
          await r.close();
        }
      } finally {
        await fx.cleanup();
      }
    });
  });
}

/** A fresh temporary folder for a fixture. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

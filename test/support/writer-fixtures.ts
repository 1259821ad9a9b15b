/**
 * Test helpers for the writers: temp folders, sample records, and real readers (python3's pickle, DuckDB).
 * Not imported by production code.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { JsonObject } from "../../src/model/json.js";
import type { ParquetSource } from "../../src/model/parquet-decode.js";
import type { HistoryRecord, RunRecord } from "../../src/model/records.js";
import { openProjectWriter } from "../../src/output/writer.js";

export async function tempDir(prefix = "dr-wandb-export-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Names in `dir` that are hidden temp files (`.<name>.tmp-…` / `.<name>.spool-…`). */
export async function tempFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => /^\..*\.(tmp|spool)-\d+-[0-9a-f]+$/.test(n));
}

export function sampleRun(runId: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    entity: "ent",
    project: "proj",
    run_id: runId,
    run_name: `name-${runId}`,
    state: "finished",
    created_at: "2024-01-02T03:04:05.000Z",
    heartbeat_at: "2024-01-02T04:00:00.000Z",
    config: { lr: 0.001, layers: [1, 2, 3], nested: { a: { b: "c" } } },
    summary: { loss: 0.25, _step: 9 },
    wandb_metadata: { python: "3.12" },
    system_metrics: {},
    system_attrs: { name: runId, tags: ["t1"] },
    sweep_info: {},
    tags: ["t1"],
    group: null,
    job_type: "train",
    user: "alice",
    notes: null,
    commit: "abc123",
    history_keys: { lastStep: 9, keys: { loss: { typeCounts: [{ type: "number", count: 10 }] } } },
    last_history_step: 9,
    storage_id: `storage-${runId}`,
    ...over,
  };
}

export function sampleRow(runId: string, step: number, metrics: JsonObject, over: Partial<HistoryRecord> = {}) {
  const row: HistoryRecord = {
    run_id: runId,
    step,
    timestamp: 1700000000.5 + step,
    runtime: step * 1.25,
    wandb_metadata: {},
    metrics,
    extra: {},
    ...over,
  };
  return row;
}

export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/**
 * Loads a pickle with python3 (stdlib only) and returns it in a typed canonical form:
 * int → bigint, float → number, datetime → {$datetime: [y, m, d, H, M, S, us], utc: tzinfo is timezone.utc},
 * str/bool/None/list as themselves, dict → plain object (key order kept; keys checked to be str).
 */
export async function loadPickle(path: string): Promise<unknown> {
  const script = `
import datetime, json, pickle, sys
def canon(x):
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return {"$int": str(x)}
    if isinstance(x, float):
        return {"$float": repr(x)}
    if isinstance(x, datetime.datetime):
        return {"$datetime": [x.year, x.month, x.day, x.hour, x.minute, x.second, x.microsecond],
                "utc": x.tzinfo is datetime.timezone.utc}
    if isinstance(x, list):
        return [canon(v) for v in x]
    if isinstance(x, dict):
        for k in x:
            if not isinstance(k, str):
                raise TypeError("non-str key %r" % (k,))
        return {"$dict": [[k, canon(v)] for k, v in x.items()]}
    raise TypeError("unexpected type %s" % type(x))
with open(sys.argv[1], "rb") as f:
    data = pickle.load(f)
    if f.read(1):
        raise ValueError("trailing bytes after STOP")
sys.stdout.write(json.dumps(canon(data)))
`;
  const out = await run("python3", ["-c", script, path]);
  return decodeCanon(JSON.parse(out));
}

function decodeCanon(x: unknown): unknown {
  if (x === null || typeof x !== "object") return x;
  if (Array.isArray(x)) return x.map(decodeCanon);
  const o = x as Record<string, unknown>;
  if ("$int" in o) return BigInt(o.$int as string);
  if ("$float" in o) {
    const r = o.$float as string;
    return r === "nan" ? Number.NaN : r === "inf" ? Number.POSITIVE_INFINITY : r === "-inf" ? -Infinity : Number(r);
  }
  if ("$datetime" in o) return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of o.$dict as [string, unknown][]) {
    if (k === "__proto__") Object.defineProperty(out, k, { value: decodeCanon(v), enumerable: true, writable: true });
    else out[k] = decodeCanon(v);
  }
  return out;
}

/** An in-memory DuckDB connection (time zone UTC), opened on first use, for reading written files back. */
export function duckReader(): { db(): Promise<DuckDBConnection>; close(): void } {
  let conn: DuckDBConnection | null = null;
  return {
    async db() {
      if (conn === null) {
        conn = await (await DuckDBInstance.create(":memory:")).connect();
        await conn.run("SET TimeZone = 'UTC'");
      }
      return conn;
    },
    close: () => conn?.closeSync(),
  };
}

/**
 * Writes `runs` with the Parquet writer twice: with its typed parts (the default: exports read by DuckDB, decoded rows
 * in typed columns) and with every row as CSV text (DR_WANDB_DOWNLOAD_COLUMNAR=0). Returns both histories files.
 */
export async function writeParquetBothWays(
  runs: { id: string; rows: HistoryRecord[][]; parquet?: ParquetSource[] }[],
): Promise<{ typed: string; text: string }> {
  const out: Record<string, string> = {};
  for (const mode of ["typed", "text"]) {
    if (mode === "text") process.env.DR_WANDB_DOWNLOAD_COLUMNAR = "0";
    try {
      const dir = await tempDir();
      const w = await openProjectWriter({
        format: "parquet",
        outputDir: dir,
        entity: "e",
        project: "p",
        withHistory: true,
      });
      assert.equal(w.takesParquet, true);
      for (const r of runs) await w.writeRun(sampleRun(r.id), r.rows, undefined, r.parquet);
      await w.close();
      assert.deepStrictEqual(await tempFilesIn(dir), [], "no temp or spool files left");
      out[mode] = join(dir, "e_p_histories.parquet");
    } finally {
      delete process.env.DR_WANDB_DOWNLOAD_COLUMNAR;
    }
  }
  return { typed: out.typed!, text: out.text! };
}

/** Asserts two Parquet files have the same columns (names, types, order) and rows (in order; values as text). */
export async function assertSameParquet(conn: DuckDBConnection, a: string, b: string): Promise<void> {
  const describeOf = async (p: string) =>
    (await conn.runAndReadAll(`DESCRIBE SELECT * FROM '${p}'`)).getRows().map((r) => `${r[0]} ${r[1]}`);
  assert.deepStrictEqual(await describeOf(a), await describeOf(b));
  // JSON columns compared as their text; rows compared with their position.
  const q = (p: string) => `SELECT row_number() OVER () AS rn, COLUMNS(*)::VARCHAR FROM '${p}'`;
  const differing = async (x: string, y: string) =>
    (await conn.runAndReadAll(`SELECT count(*) FROM (${q(x)} EXCEPT ALL ${q(y)})`)).getRows()[0]?.[0];
  assert.equal(await differing(a, b), 0n);
  assert.equal(await differing(b, a), 0n);
}

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { FakeRun, FObject, FValue, GeneratorOptions, ParquetExport } from "./model.js";
import { quoteIdent } from "./parquet.js";
import { createFakeStore, type DataStore } from "./store.js";

const EDGE: GeneratorOptions = {
  seed: 5,
  entity: "ent",
  project: "proj",
  runs: 12,
  steps: 40,
  metrics: 4,
  profile: "edge",
};

let db: DuckDBInstance;
let conn: DuckDBConnection;
let dir: string;
const stores: DataStore[] = [];

before(async () => {
  db = await DuckDBInstance.create(":memory:");
  conn = await db.connect();
  dir = mkdtempSync(join(tmpdir(), "fake-wandb-parquet-test-"));
});
after(async () => {
  for (const s of stores) await s.close();
  conn.closeSync();
  db.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

function store(o: Partial<GeneratorOptions> & { exportsEnabled?: boolean } = {}): DataStore {
  const s = createFakeStore({ ...EDGE, cacheDir: dir, ...o });
  stores.push(s);
  return s;
}

async function readBack(exports: ParquetExport[]): Promise<Record<string, unknown>[]> {
  const list = exports.map((e) => `'${e.path.replace(/'/g, "''")}'`).join(", ");
  const r = await conn.runAndReadAll(`SELECT * FROM read_parquet([${list}], union_by_name = true) ORDER BY _step`);
  return r.getRowObjectsJS() as Record<string, unknown>[];
}

async function columnTypes(exports: ParquetExport[]): Promise<Map<string, string>> {
  const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${exports[0]!.path}')`);
  return new Map(r.getRowObjectsJS().map((x) => [x.column_name as string, x.column_type as string]));
}

/** Compares a value read from parquet with the truth value (BIGINT comes back as bigint, NaN stays NaN). */
function same(parquet: unknown, truth: FValue): boolean {
  if (typeof truth === "number") {
    if (typeof parquet === "bigint") return BigInt(truth) === parquet;
    return Object.is(parquet, truth) || parquet === truth;
  }
  if (typeof truth === "bigint") {
    if (typeof parquet === "string") return parquet === truth.toString(); // beyond int64: VARCHAR
    return parquet === truth;
  }
  if (Array.isArray(truth)) {
    return Array.isArray(parquet) && parquet.length === truth.length && truth.every((t, i) => same(parquet[i], t));
  }
  if (truth !== null && typeof truth === "object") {
    if (parquet === null || typeof parquet !== "object") return false;
    return Object.keys(truth).every((k) => same((parquet as Record<string, unknown>)[k], (truth as FObject)[k]!));
  }
  return parquet === truth;
}

function assertRowsEqual(got: Record<string, unknown>[], want: FObject[], label: string): void {
  assert.equal(got.length, want.length, `${label}: row count`);
  want.forEach((w, i) => {
    const g = got[i]!;
    for (const [k, v] of Object.entries(g)) {
      if (v === null) assert.ok(!(k in w), `${label} step ${w._step}: ${k} is NULL but the row has it`);
    }
    for (const [k, v] of Object.entries(w)) {
      assert.ok(same(g[k], v), `${label} step ${w._step} key ${k}: ${String(g[k])} != ${String(v)}`);
    }
  });
}

describe("parquet exports", () => {
  it("round trip of every exported edge run equals historyRows (NaN, bigints, structs, hostile names)", async () => {
    const s = store();
    let checked = 0;
    for (const r of s.runs()) {
      const exports = await s.parquetExports(r);
      if (r.exportedThrough === 0) {
        assert.deepEqual(exports, [], `${r.name} (${r.state}) is not exported`);
        continue;
      }
      const want = s.historyRows(r, Number.NEGATIVE_INFINITY, r.exportedThrough);
      if (want.length === 0) {
        assert.deepEqual(exports, []);
        continue;
      }
      for (const e of exports) assert.ok(existsSync(e.path) && e.sizeBytes > 0);
      assertRowsEqual(await readBack(exports), want, r.name);
      checked++;
    }
    assert.ok(checked >= 6, `checked ${checked} runs`);
  });

  it("splits more than 1000 rows into two files ordered by step, and types columns", async () => {
    const s = store();
    const r = s.runs()[0]!; // kitchen sink: 1200 rows
    const exports = await s.parquetExports(r);
    assert.equal(exports.length, 2);
    assert.notEqual(exports[0]!.id, exports[1]!.id);
    const [a, b] = [await readBack([exports[0]!]), await readBack([exports[1]!])];
    assert.equal(a.length + b.length, r.historyLineCount);
    assert.ok((a.at(-1)!._step as bigint) < (b[0]!._step as bigint));
    const types = await columnTypes(exports);
    assert.equal(types.get("_step"), "BIGINT");
    assert.equal(types.get("loss"), "DOUBLE");
    assert.equal(types.get("weird"), "DOUBLE");
    assert.equal(types.get("epoch"), "BIGINT");
    assert.equal(types.get("big_counter"), "BIGINT");
    assert.equal(types.get("huge_int"), "VARCHAR");
    assert.equal(types.get("phase"), "VARCHAR");
    assert.equal(types.get("is_best"), "BOOLEAN");
    assert.match(types.get("examples")!, /^STRUCT\(_type VARCHAR, path VARCHAR/);
    assert.match(types.get("gradients/w")!, /^STRUCT\(_type VARCHAR, "values" BIGINT\[\], bins DOUBLE\[\]\)/);
    for (const k of ["精度", "émoji 🚀", 'val "acc"', "it's", "a.b.c", "key with spaces", "step", "run_id"]) {
      assert.ok(types.has(k), k);
    }
    const nan = await conn.runAndReadAll(
      `SELECT count(*) AS n FROM read_parquet('${exports[0]!.path}') WHERE isnan(${quoteIdent("weird")})`,
    );
    assert.ok((nan.getRowObjectsJS()[0]!.n as bigint) > 0n, "NaN survives as NaN, not NULL");
  });

  it("a run starting at step 1000 and a run with 1000+ keys", async () => {
    const s = store();
    const late = s.runs().find((r) => r.firstStep === 1000)!;
    const rows = await readBack(await s.parquetExports(late));
    assert.equal(rows[0]!._step, 1000n);
    const wide = s.runs().find((r) => Object.keys(s.historyKeys(r).keys as FObject).length > 1000)!;
    const types = await columnTypes(await s.parquetExports(wide));
    assert.ok(types.size > 1000, `${types.size} columns`);
  });

  it("a partly exported run covers only steps < exportedThrough", async () => {
    const s = store();
    const r = s.runs().find((x) => x.exportedThrough > 0 && s.liveData(x, ["_step"]).length > 0)!;
    assert.ok(r, "edge has a partly exported run");
    const rows = await readBack(await s.parquetExports(r));
    assert.equal(Number(rows.at(-1)!._step), r.exportedThrough - 1);
    const live = s.liveData(r, ["_step"]).map((x) => x._step as number);
    assert.equal(rows.length + live.length, r.historyLineCount);
    assert.equal(live[0], r.exportedThrough);
  });

  it("is cached, and a mutation invalidates it", async () => {
    const s = store({ profile: "default", runs: 20, steps: 30, metrics: 3 });
    const r = s.runs().find((x) => x.state === "finished")!;
    const first = await s.parquetExports(r);
    assert.equal(await s.parquetExports(r), await s.parquetExports(r), "same promise result while unchanged");
    assert.deepEqual(
      (await s.parquetExports(r)).map((e) => e.path),
      first.map((e) => e.path),
    );
    s.mutate({ op: "appendSteps", run: r.name, steps: 5 });
    const afterAppend = await s.parquetExports(r);
    assert.notDeepEqual(
      afterAppend.map((e) => e.id),
      first.map((e) => e.id),
    );
    assert.equal((await readBack(afterAppend)).length, 30, "still exported only through the old boundary");
    s.mutate({ op: "finishRun", run: r.name });
    const finished = await readBack(await s.parquetExports(r));
    assert.equal(finished.length, 35);
    assertRowsEqual(finished, s.historyRows(r, 0, 1e9), r.name);
  });

  it("unmutated exports are reused from a shared cacheDir; mutated ones are per store", async () => {
    const o = { profile: "default" as const, runs: 6, steps: 20, metrics: 2, seed: 77 };
    const a = store(o);
    const b = store(o);
    const ra = a.runs().find((x) => x.state === "finished")!;
    const ea = await a.parquetExports(ra);
    const mtime = statSync(ea[0]!.path).mtimeMs;
    const eb = await b.parquetExports(b.run(ra.name)!);
    assert.deepEqual(eb, ea);
    assert.equal(statSync(eb[0]!.path).mtimeMs, mtime, "not rewritten");
    a.mutate({ op: "appendSteps", run: ra.name, steps: 2 });
    b.mutate({ op: "appendSteps", run: ra.name, steps: 2 });
    const [ma, mb] = [await a.parquetExports(ra), await b.parquetExports(b.run(ra.name)!)];
    assert.notEqual(ma[0]!.path, mb[0]!.path);
  });

  it("running runs and stores with exports off have none", async () => {
    const s = store({ profile: "default", runs: 30, steps: 10, metrics: 2 });
    const running = s.runs().find((r) => r.state === "running") as FakeRun;
    assert.deepEqual(await s.parquetExports(running), []);
    const off = store({ profile: "default", runs: 5, steps: 10, metrics: 2, exportsEnabled: false });
    for (const r of off.runs()) assert.deepEqual(await off.parquetExports(r), []);
  });

  it("default profile: int-only keys are BIGINT, floats DOUBLE", async () => {
    const s = store({ profile: "default", runs: 10, steps: 1500, metrics: 6 });
    const r = s.runs().find((x) => x.state === "finished")!;
    const exports = await s.parquetExports(r);
    assert.equal(exports.length, 2);
    const types = await columnTypes(exports);
    assert.equal(types.get("epoch"), "BIGINT");
    assert.equal(types.get("loss"), "DOUBLE");
    assertRowsEqual(await readBack(exports), s.historyRows(r, 0, 1e9), r.name);
  });
});

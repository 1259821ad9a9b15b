/**
 * The viewer's reads on PostgreSQL give the same answers as on DuckDB: the same runs (hostile and spikes runs
 * written through the Archive interface to both), the same down-sampled points with spikes, NaN and ±Infinity, the
 * same full-resolution range, the same exact big integers and hostile-value filters, through the HTTP API.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { tempDir } from "../../test/helpers.js";
import { startTestPg, type TestPgServer } from "../../test/support/pg-test-server.js";
import { openArchive } from "../archive/index.js";
import { parseStrictJson } from "../model/json.js";
import { type RunningServer, startServer } from "./server.js";
import { openSource } from "./source.js";
import { HOSTILE_ID, HOSTILE_KEY, SPIKES, writeExtraRuns } from "./test-support.js";

const ENTITY = "ent";
const PROJECT = "proj ü";
let pgServer: TestPgServer;
let dbName: string;
let dir: Awaited<ReturnType<typeof tempDir>>;
let duck: RunningServer;
let post: RunningServer;

async function both(name: string, params: Record<string, string | string[]>): Promise<[unknown, unknown]> {
  const q = new URLSearchParams({ entity: ENTITY, project: PROJECT });
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, x);
  const out = [];
  for (const s of [duck, post]) {
    const res = await fetch(`${s.url}api/${name}?${q}`);
    assert.equal(res.status, 200, await res.clone().text());
    out.push(await res.json());
  }
  return out as [unknown, unknown];
}

before(async () => {
  pgServer = await startTestPg();
  dbName = `dr_wandb_serve_${randomBytes(6).toString("hex")}`;
  dir = await tempDir("drwandb-serve-pg-");
  for (const dbUrl of [undefined, pgServer.urlFor(dbName)]) {
    const a = await openArchive({ dbUrl, outputDir: dir.path });
    await writeExtraRuns(a, ENTITY, PROJECT);
    await a.close();
  }
  duck = await startServer({ source: await openSource({ outputDir: dir.path }), outputDir: dir.path });
  post = await startServer({
    source: await openSource({ dbUrl: pgServer.urlFor(dbName), outputDir: dir.path }),
    outputDir: dir.path,
  });
});

after(async () => {
  await duck?.close();
  await post?.close();
  if (pgServer) {
    const c = new pg.Client({ connectionString: pgServer.url });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await c.end();
    await pgServer.stop();
  }
  await dir?.[Symbol.asyncDispose]();
});

describe("viewer reads on PostgreSQL", () => {
  it("down-samples like DuckDB, keeping spikes, NaN and ±Infinity", async () => {
    const [d, p] = (await both("series", { key: "spiky", run: "spikes-run", buckets: "100" })) as {
      series: { step: number[]; y: (number | string)[]; sampled: boolean }[];
      ms: number;
    }[];
    assert.deepEqual(p, { ...d!, ms: p!.ms });
    const s = p!.series[0]!;
    assert.equal(s.sampled, true);
    assert.equal(s.y[s.step.indexOf(SPIKES.high)], 1000);
    assert.equal(s.y[s.step.indexOf(SPIKES.nan)], "NaN");
    assert.equal(s.y[s.step.indexOf(SPIKES.ninf)], "-Infinity");
  });

  it("returns the same full-resolution range, on step and wall time", async () => {
    const [d, p] = (await both("series", { key: "spiky", run: "spikes-run", x0: "2400", x1: "2599" })) as {
      series: { step: number[] }[];
      ms: number;
    }[];
    assert.deepEqual(p!.series, d!.series);
    assert.equal(p!.series[0]!.step.length, 200);
    const [dw, pw] = (await both("series", { key: "spiky", run: "spikes-run", x: "wall", buckets: "50" })) as {
      series: unknown[];
    }[];
    assert.deepEqual(pw!.series, dw!.series);
  });

  it("lists, filters and sorts runs the same way, hostile values as values, big integers exact", async () => {
    const params = { col: [`config:${JSON.stringify([HOSTILE_KEY])}`, 'config:["big"]'], sort: 'config:["lr"]' };
    const [d, p] = (await both("runs", params)) as { total: number; rows: { run_id: string; values: unknown[] }[] }[];
    assert.deepEqual(p, d);
    assert.deepEqual(
      p!.rows.map((r) => r.run_id),
      ["spikes-run", HOSTILE_ID],
    );
    assert.equal(p!.rows[1]!.values[1], "18446744073709551623");
    const [dt, pt] = (await both("runs", { tag: "' OR 1=1 --", q: "drop table" })) as { total: number }[];
    assert.deepEqual(pt, dt);
    assert.equal(pt!.total, 1);
    const [dr, pr] = (await both("run", { run: HOSTILE_ID })) as { config: string }[];
    assert.deepEqual(parseStrictJson(pr!.config), parseStrictJson(dr!.config));
    assert.equal((parseStrictJson(pr!.config) as Record<string, unknown>).big, 2n ** 64n + 7n);
    const [dk, pk] = await both("keys", {});
    assert.deepEqual(pk, dk);
    const [df, pf] = await both("facets", {});
    assert.deepEqual(pf, df);
  });
});

/**
 * WandbClient against a small scripted server, for protocol cases the fake does not produce: overlapping and
 * unordered parquet exports, exports that stop short of the last step, unreadable or expired exports (fallback to
 * live history), VARCHAR-encoded integers, and historyKeys sent as a string.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { type JsonObject, stringifyWandb } from "../model/json.js";
import { WandbClient } from "./client.js";
import type { HistoryRow } from "./types.js";

const KEY = "stub-test-key-0123456789abcdefghijklmnopqrstu";
const dir = mkdtempSync(join(tmpdir(), "drw-stub-"));

interface Script {
  historyKeys: unknown;
  parquetUrls: string[];
  liveData: unknown[];
  /** All rows the live history endpoint knows. */
  rows: JsonObject[];
}

let script: Script;
let server: Server;
let base: string;
const requests: { op: string; variables: Record<string, unknown> }[] = [];
const files = new Map<string, Buffer | number>(); // path -> bytes, or an HTTP status to answer with

function send(res: ServerResponse, status: number, body: string | Buffer): void {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { "content-length": b.length, "content-type": "application/json" });
  res.end(b);
}

function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
  if (req.method === "GET") {
    const f = files.get(req.url ?? "");
    if (f === undefined) send(res, 404, '{"error":"no such file"}');
    else if (typeof f === "number") send(res, f, "<Error>expired</Error>");
    else send(res, 200, f);
    return;
  }
  const body = JSON.parse(raw.toString("utf8")) as { operationName: string; variables: Record<string, unknown> };
  requests.push({ op: body.operationName, variables: body.variables });
  const v = body.variables;
  let run: unknown;
  switch (body.operationName) {
    case "RunHistoryKeys":
      run = { historyKeys: script.historyKeys };
      break;
    case "RunParquetHistory":
      run = { parquetHistory: { parquetUrls: script.parquetUrls, liveData: script.liveData } };
      break;
    case "HistoryPage": {
      const lo = v.minStep as number;
      const hi = v.maxStep as number;
      run = {
        history: script.rows
          .filter((r) => (r._step as number) >= lo && (r._step as number) < hi)
          .map((r) => stringifyWandb(r)),
      };
      break;
    }
    case "RunFiles": {
      const wanted = (v.fileNames as string[]) ?? [];
      const listed = wanted.includes("wandb-metadata.json")
        ? [
            {
              node: { id: "f1", name: "wandb-metadata.json", url: `${base}/other/meta.json`, sizeBytes: 13 },
              cursor: "0",
            },
          ]
        : [];
      run = { fileCount: listed.length, files: { edges: listed, pageInfo: { endCursor: null, hasNextPage: false } } };
      break;
    }
    case "Runs": {
      if ((v.perPage as number) > 125) {
        send(res, 503, '{"error":"upstream timeout"}');
        return;
      }
      const start = v.cursor ? Number(v.cursor) + 1 : 0;
      const names = Array.from({ length: 300 }, (_, i) => `run${i}`).slice(start, start + (v.perPage as number));
      const edges = names.map((name, i) => ({
        node: { id: name, name, createdAt: "2025-01-01T00:00:00" },
        cursor: String(start + i),
      }));
      send(
        res,
        200,
        JSON.stringify({
          data: {
            project: {
              runCount: 300,
              runs: { edges, pageInfo: { endCursor: null, hasNextPage: start + names.length < 300 } },
            },
          },
        }),
      );
      return;
    }
    default:
      send(res, 400, JSON.stringify({ errors: [{ message: `unexpected ${body.operationName}` }] }));
      return;
  }
  // The rows travel as JSON strings inside the JSON body, so NaN stays a token inside a string.
  send(res, 200, JSON.stringify({ data: { project: { run } } }));
}

async function writeParquet(name: string, selectSql: string): Promise<string> {
  const path = join(dir, name);
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  await conn.run(`COPY (${selectSql}) TO '${path}' (FORMAT parquet)`);
  conn.closeSync();
  db.closeSync();
  files.set(`/p/${name}`, readFileSync(path));
  return `${base}/p/${name}`;
}

async function scan(client: WandbClient, options = {}): Promise<HistoryRow[]> {
  const out: HistoryRow[] = [];
  // Small windows, so that these short runs take the parquet path (a one-window span is read live directly).
  for await (const b of client.scanHistory("e", "p", "r", { pageSize: 2, ...options })) out.push(...b);
  return out;
}

function ops(): string[] {
  return requests.map((r) => r.op);
}

describe("scanHistory against a scripted server", () => {
  let client: WandbClient;
  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => handle(req, res, Buffer.concat(chunks)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = await WandbClient.create({ apiKey: KEY, baseUrl: base, env: {}, cwd: dir, home: dir, tempDir: dir });
  });
  after(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("overlapping, unordered exports merge by step; liveData's boundary splits parquet from live", async () => {
    const a = await writeParquet(
      "a.parquet",
      "SELECT i::BIGINT AS _step, i * 1.5 AS loss, CASE WHEN i = 2 THEN 'NaN'::DOUBLE END AS x FROM range(0, 6) t(i)",
    );
    const b = await writeParquet("b.parquet", "SELECT i::BIGINT AS _step, i * 1.5 AS loss FROM range(3, 10) t(i)");
    const rows: JsonObject[] = [];
    for (let i = 0; i < 10; i++) rows.push({ _step: i, loss: i >= 8 ? -1 : i * 1.5 });
    script = {
      historyKeys: { lastStep: 9, keys: {} },
      parquetUrls: [b, a],
      liveData: [{ _step: 8.0 }, { _step: 9.0 }],
      rows,
    };
    requests.length = 0;
    const got = await scan(client);
    assert.deepEqual(
      got.map((r) => r._step),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(got[8]!.loss, -1, "steps from the boundary on come from live history");
    assert.equal(got[7]!.loss, 10.5);
    assert.ok(Number.isNaN(got[2]!.x), "DOUBLE NaN stays NaN");
    assert.ok(!("x" in got[3]!), "a NULL column is an absent key");
    assert.deepEqual(ops(), ["RunHistoryKeys", "RunParquetHistory", "HistoryPage"]);
    assert.equal(requests[2]!.variables.minStep, 8);
  });

  test("exports that stop short of lastStep (no liveData) are completed live", async () => {
    const a = await writeParquet("short.parquet", "SELECT i::BIGINT AS _step, 1.0 AS v FROM range(0, 5) t(i)");
    script = {
      historyKeys: { lastStep: 6 },
      parquetUrls: [a],
      liveData: [],
      rows: [0, 1, 2, 3, 4, 5, 6].map((i) => ({ _step: i, v: 2 })),
    };
    requests.length = 0;
    const got = await scan(client);
    assert.deepEqual(
      got.map((r) => [r._step, r.v]),
      [
        [0, 1],
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 1],
        [5, 2],
        [6, 2],
      ],
    );
    assert.equal(requests.at(-1)!.variables.minStep, 5);
  });

  test("VARCHAR digits beyond int64 become bigints unless historyKeys says the key is a string; structs and lists", async () => {
    const a = await writeParquet(
      "types.parquet",
      `SELECT 0::BIGINT AS _step, '123456789012345678901234567890' AS huge, '123456789012345678901234567890' AS label,
              9007199254740993::BIGINT AS big, 42::BIGINT AS small,
              {'_type': 'image-file', 'path': 'media/x.png', 'size': 10::BIGINT} AS img, [1.5, 2.5] AS arr`,
    );
    script = {
      historyKeys: {
        lastStep: 5,
        keys: {
          label: { typeCounts: [{ type: "string", count: 1 }] },
          huge: { typeCounts: [{ type: "number", count: 1 }] },
        },
      },
      parquetUrls: [a],
      liveData: [],
      rows: [],
    };
    const [row] = await scan(client);
    assert.equal(row!.huge, 123456789012345678901234567890n);
    assert.equal(row!.label, "123456789012345678901234567890");
    assert.equal(row!.big, 9007199254740993n);
    assert.equal(row!.small, 42);
    assert.deepEqual(row!.img, { _type: "image-file", path: "media/x.png", size: 10 });
    assert.deepEqual(row!.arr, [1.5, 2.5]);
  });

  test("an expired (403) or unreadable export falls back to live history, exactly", async () => {
    files.set("/p/expired.parquet", 403);
    files.set("/p/garbage.parquet", Buffer.from("this is not parquet"));
    const rows = [0, 1, 2].map((i) => ({ _step: i, v: i }));
    for (const url of [`${base}/p/expired.parquet`, `${base}/p/garbage.parquet`]) {
      script = { historyKeys: { lastStep: 2 }, parquetUrls: [url], liveData: [], rows };
      const before = client.stats().parquetFallbacks;
      const got = await scan(client);
      assert.deepEqual(got, rows);
      assert.equal(client.stats().parquetFallbacks, before + 1);
    }
  });

  test("historyKeys sent as a JSON string; an empty history yields nothing", async () => {
    script = { historyKeys: "{}", parquetUrls: [], liveData: [], rows: [] };
    requests.length = 0;
    assert.deepEqual(await scan(client), []);
    assert.deepEqual(ops(), ["RunHistoryKeys"]);
    script = { historyKeys: '{"lastStep": 1}', parquetUrls: [], liveData: [], rows: [{ _step: 0 }, { _step: 1 }] };
    assert.equal((await scan(client)).length, 2);
  });

  test("stopping early cancels the windows still in flight", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({ _step: i }));
    script = { historyKeys: { lastStep: 49 }, parquetUrls: [], liveData: [], rows };
    for await (const batch of client.scanHistory("e", "p", "r", { pageSize: 5 })) {
      assert.equal(batch.length, 5);
      break;
    }
    // the client is still usable afterwards
    assert.equal((await scan(client, { pageSize: 25 })).length, 50);
  });

  test("a big runs page that keeps failing with 5xx is halved for the rest of the listing (not remembered)", async () => {
    const c = await WandbClient.create({
      apiKey: KEY,
      baseUrl: base,
      env: {},
      cwd: dir,
      home: dir,
      maxAttempts: 2,
      retry: { minDelayMs: 1, maxDelayMs: 2 },
    });
    try {
      requests.length = 0;
      const names: string[] = [];
      for await (const page of c.listRuns("e", "p")) names.push(...page.runs.map((r) => r.name));
      assert.equal(names.length, 300);
      assert.equal(new Set(names).size, 300);
      assert.deepEqual(
        requests.map((r) => r.variables.perPage),
        [500, 500, 250, 250, 125, 125, 125],
      );
      assert.equal(c.stats().capabilities.maxRunsPerPage, undefined);
    } finally {
      await c.close();
    }
  });

  test("fetchJsonFile: a server whose file URLs differ from {base}/files/... is remembered and asked via RunFiles", async () => {
    files.set("/other/meta.json", Buffer.from('{"os": "Linux"}'));
    const c = await WandbClient.create({ apiKey: KEY, baseUrl: base, env: {}, cwd: dir, home: dir });
    try {
      requests.length = 0;
      assert.deepEqual(await c.fetchJsonFile("e", "p", "r", "wandb-metadata.json"), { os: "Linux" });
      assert.equal(c.stats().capabilities.directFiles, false);
      assert.deepEqual(c.stats().byOperation, { downloadFile: 2, RunFiles: 1 });
      assert.deepEqual(await c.fetchJsonFile("e", "p", "r", "wandb-metadata.json"), { os: "Linux" });
      assert.deepEqual(c.stats().byOperation, { downloadFile: 3, RunFiles: 2 });
      assert.equal(await c.fetchJsonFile("e", "p", "r", "missing.json"), null);
    } finally {
      await c.close();
    }
  });

  test("a process that exits in the middle of a parquet scan leaves no temp files behind", async () => {
    const a = await writeParquet("exit.parquet", "SELECT i::BIGINT AS _step, 1.0 AS v FROM range(0, 50) t(i)");
    script = { historyKeys: { lastStep: 49 }, parquetUrls: [a], liveData: [], rows: [] };
    const tmp = mkdtempSync(join(dir, "exit-"));
    const child = join(tmp, "child.mts");
    const clientPath = fileURLToPath(new URL("./client.js", import.meta.url)).replace(/\.js$/, ".ts");
    writeFileSync(
      child,
      `import { WandbClient } from ${JSON.stringify(clientPath)};
       const c = await WandbClient.create({ apiKey: ${JSON.stringify(KEY)}, baseUrl: ${JSON.stringify(base)}, env: {}, cwd: ${JSON.stringify(tmp)}, home: ${JSON.stringify(tmp)}, tempDir: ${JSON.stringify(tmp)} });
       for await (const b of c.scanHistory("e", "p", "r", { pageSize: 2 })) { console.log("rows", b.length); process.exit(0); }`,
    );
    const { spawn } = await import("node:child_process");
    const proc = spawn(process.execPath, ["--import", "tsx", child], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise((r) => proc.on("close", r));
    assert.equal(code, 0, out);
    assert.match(out, /rows 50/);
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.startsWith("dr-wandb-parquet-")),
      [],
    );
  });

  test("the caller's signal aborts a scan with its reason", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({ _step: i }));
    script = { historyKeys: { lastStep: 49 }, parquetUrls: [], liveData: [], rows };
    const ac = new AbortController();
    const reason = new Error("user pressed ctrl-c");
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const batch of client.scanHistory("e", "p", "r", { pageSize: 5, signal: ac.signal })) {
          seen += batch.length;
          ac.abort(reason);
        }
      })(),
      (e: unknown) => e === reason,
    );
    assert.equal(seen, 5);
  });
});

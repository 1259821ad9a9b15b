import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { type FakeServer, startFakeServer } from "./server.js";
import { createStubStore } from "./stub-store.test.js";

const KEY = "stub_key_0123456789012345678901234567890123456789";
const AUTH = `Basic ${Buffer.from(`api:${KEY}`).toString("base64")}`;

const RUNS_QUERY = `#graphql
query Runs($project: String!, $entity: String!, $cursor: String, $perPage: Int = 50, $order: String, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    internalId
    runCount(filters: $filters)
    readOnly
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges { node { projectId ...RunFragment } cursor }
      pageInfo { endCursor hasNextPage }
    }
  }
}
fragment RunFragment on Run {
  id tags name displayName sweepName state config group jobType commit readOnly createdAt heartbeatAt
  description notes systemMetrics summaryMetrics historyLineCount user { name username } historyKeys
}`;

interface GqlResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected dynamically
  json: any;
  text: string;
}

async function post(url: string, body: unknown, headers: Record<string, string> = { authorization: AUTH }) {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text } as GqlResponse;
}

function gql(url: string, query: string, variables: Record<string, unknown> = {}, operationName?: string) {
  return post(url, { query, variables, operationName });
}

const V = { project: "stub-project", entity: "stub-entity" };

describe("fake-wandb server (stub store)", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startFakeServer(createStubStore(), { apiKey: KEY, seed: 7 });
  });
  after(async () => {
    await fake.close();
  });

  test("auth: missing or wrong key gives 401 with the W&B message", async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Basic ${Buffer.from("api:wrong").toString("base64")}` },
    ]) {
      const r = await post(fake.url, { query: "{ viewer { id } }" }, headers);
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, { errors: [{ message: "user is not logged in" }] });
    }
    const bearer = await post(fake.url, { query: "{ viewer { id } }" }, { authorization: `Bearer ${KEY}` });
    assert.equal(bearer.status, 401);
  });

  test("viewer: anonymous query, Viewer and GetViewer shapes", async () => {
    fake.resetStats();
    const r = await gql(fake.url, "{ viewer { id } }");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { data: { viewer: { id: "VXNlcjox" } } });
    const v = await gql(
      fake.url,
      "query Viewer{ viewer { id entity username email flags teams { edges { node { name } } } } }",
    );
    assert.deepEqual(v.json.data.viewer.teams, { edges: [{ node: { name: "stub-entity" } }] });
    assert.equal(v.json.data.viewer.flags, "{}");
    const g = await gql(
      fake.url,
      `query GetViewer { viewer { ...UserFragment } }
       fragment ApiKeyFragment on ApiKey { id name description }
       fragment UserFragment on User { id name username email admin flags entity deletedAt
         apiKeys { edges { node { ...ApiKeyFragment } } } teams { edges { node { name } } } }`,
    );
    assert.equal(g.status, 200);
    assert.equal(g.json.data.viewer.entity, "stub-entity");
    const s = fake.stats();
    assert.equal(s.byOperation.anonymous, 1);
    assert.equal(s.byOperation.Viewer, 1);
    assert.equal(s.byOperation.GetViewer, 1);
  });

  test("ServerFeaturesQuery, ServerInfo and __type probes validate", async () => {
    const f = await gql(fake.url, "query ServerFeaturesQuery { serverInfo { features { name isEnabled } } }");
    assert.deepEqual(f.json, { data: { serverInfo: { features: [] } } });
    const p = await gql(fake.url, 'query ProbeRunInput { RunType: __type(name:"Run") { fields { name } } }');
    const names = p.json.data.RunType.fields.map((x: { name: string }) => x.name);
    assert.ok(names.includes("projectId"));
    const i = await gql(
      fake.url,
      "query ServerInfo{ serverInfo { cliVersionInfo latestLocalVersionInfo { outOfDate latestVersionString versionOnThisInstanceString } } }",
    );
    assert.equal(i.status, 200);
  });

  test("unknown project gives project: null, unknown run gives run: null (HTTP 200)", async () => {
    const q =
      "query Run($project: String!, $entity: String!, $name: String!) { project(name: $project, entityName: $entity) { run(name: $name) { name } } }";
    const p = await gql(fake.url, q, { project: "nope", entity: "stub-entity", name: "run-a" });
    assert.equal(p.status, 200);
    assert.deepEqual(p.json, { data: { project: null } });
    const r = await gql(fake.url, q, { ...V, name: "nope" });
    assert.deepEqual(r.json, { data: { project: { run: null } } });
  });

  test("operationName '' with a #graphql prefix, fragments and variable defaults", async () => {
    fake.resetStats();
    const r = await post(fake.url, {
      query: RUNS_QUERY,
      variables: { ...V, order: "+created_at", filters: "{}", cursor: null },
      operationName: "",
    });
    assert.equal(r.status, 200, r.text);
    const project = r.json.data.project;
    assert.equal(project.runCount, 3);
    assert.equal(project.runs.edges.length, 3); // $perPage default 50
    const node = project.runs.edges[0].node;
    assert.equal(node.projectId, "123");
    assert.equal(node.name, "run-a");
    assert.equal(node.sweepName, "sw1");
    assert.deepEqual(node.user, { name: "Stub User", username: "stub" });
    assert.equal(fake.stats().byOperation.Runs, 1);
    // Absent operationName is the same; an operation with several aliased root fields counts once.
    await post(fake.url, { query: "query Two { a: viewer { id } b: viewer { id } }" });
    assert.equal(fake.stats().byOperation.Two, 1);
  });

  test("JSON-string encodings: config/summary/system metrics strings, historyKeys object, exact bigints", async () => {
    const r = await post(fake.url, { query: RUNS_QUERY, variables: V });
    const node = r.json.data.project.runs.edges[0].node;
    assert.equal(typeof node.config, "string");
    assert.deepEqual(JSON.parse(node.config).lr, { value: 0.1, desc: null });
    assert.equal(typeof node.summaryMetrics, "string");
    assert.match(node.summaryMetrics, /"big":12345678901234567890/);
    assert.equal(typeof node.systemMetrics, "string");
    assert.equal(typeof node.historyKeys, "object");
    assert.equal(node.historyKeys.lastStep, 9);
  });

  test("relay pagination: arrayconnection cursors, hasNextPage false on the last and on an empty page", async () => {
    const vars = { ...V, perPage: 2, cursor: null as string | null };
    const p1 = await post(fake.url, { query: RUNS_QUERY, variables: vars });
    const runs1 = p1.json.data.project.runs;
    assert.deepEqual(
      runs1.edges.map((e: { cursor: string }) => Buffer.from(e.cursor, "base64").toString()),
      ["arrayconnection:0", "arrayconnection:1"],
    );
    assert.equal(runs1.pageInfo.hasNextPage, true);
    assert.equal(runs1.pageInfo.endCursor, runs1.edges[1].cursor);
    vars.cursor = runs1.edges[1].cursor;
    const p2 = await post(fake.url, { query: RUNS_QUERY, variables: vars });
    const runs2 = p2.json.data.project.runs;
    assert.equal(runs2.edges.length, 1);
    assert.equal(runs2.edges[0].node.name, "run-c");
    assert.equal(runs2.pageInfo.hasNextPage, false);
    vars.cursor = runs2.edges[0].cursor;
    const p3 = await post(fake.url, { query: RUNS_QUERY, variables: vars });
    assert.deepEqual(p3.json.data.project.runs, { edges: [], pageInfo: { endCursor: null, hasNextPage: false } });
    // runCount honours filters
    const f = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, filters: '{"state":"running"}' } });
    assert.equal(f.json.data.project.runCount, 1);
    assert.equal(f.json.data.project.runs.edges[0].node.name, "run-b");
  });

  test("bad filters: invalid column and malformed JSON give HTTP 400 with errors[].message", async () => {
    const bad = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, filters: '{"summary.epoch": 9}' } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.errors[0].message, /invalid filter column/);
    const malformed = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, filters: "{not json" } });
    assert.equal(malformed.status, 400);
    assert.ok(malformed.json.errors[0].message.length > 0);
  });

  test("history rows are JSON strings with bare NaN inside; windows and sampling", async () => {
    const q = `query HistoryPage($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
      project(name: $project, entityName: $entity) { run(name: $run) { history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) } } }`;
    const r = await gql(fake.url, q, { ...V, run: "run-a", minStep: 2, maxStep: "5", pageSize: 3 });
    assert.equal(r.status, 200, r.text);
    const rows: string[] = r.json.data.project.run.history;
    assert.equal(rows.length, 3);
    assert.ok(rows.every((x) => typeof x === "string"));
    assert.match(rows[1] as string, /"loss":NaN/);
    const last = await gql(fake.url, q, { ...V, run: "run-a", minStep: 9, maxStep: 10, pageSize: 1 });
    assert.match(last.json.data.project.run.history[0], /"huge":9007199254740993/);
    const ev = await gql(
      fake.url,
      "query RunFullHistory($project: String!, $entity: String!, $name: String!, $samples: Int) { project(name: $project, entityName: $entity) { run(name: $name) { events(samples: $samples) } } }",
      { ...V, name: "run-a", samples: 2 },
    );
    assert.equal(ev.json.data.project.run.events.length, 2);
    assert.equal(typeof ev.json.data.project.run.events[0], "string");
  });

  test("sampledHistory and parquetHistory.liveData are real JSON; NaN never bare in the outer JSON", async () => {
    const q = `query SampledHistoryPage($entity: String!, $project: String!, $run: String!, $spec: JSONString!) {
      project(name: $project, entityName: $entity) { run(name: $run) { sampledHistory(specs: [$spec]) } } }`;
    const spec = JSON.stringify({ keys: ["_step", "loss"], minStep: 2, maxStep: 4, samples: 3 });
    const r = await gql(fake.url, q, { ...V, run: "run-a", spec });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.project.run.sampledHistory, [
      [
        { _step: 2, loss: 1 / 3 },
        { _step: 3, loss: "NaN" },
        { _step: 4, loss: 1 / 5 },
      ],
    ]);
    const p = await gql(
      fake.url,
      `query RunParquetHistory($entity: String!, $project: String!, $runName: String!, $liveKeys: [String!]!) {
        project(name: $project, entityName: $entity) { run(name: $runName) { parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }`,
      { ...V, runName: "run-a", liveKeys: ["_step"] },
    );
    const ph = p.json.data.project.run.parquetHistory;
    assert.equal(ph.parquetUrls.length, 1);
    assert.ok(ph.parquetUrls[0].startsWith(`${fake.storageUrl}/parquet/`));
    assert.deepEqual(ph.liveData, [{ _step: 5 }, { _step: 6 }, { _step: 7 }, { _step: 8 }, { _step: 9 }]);
  });

  const FILES_QUERY = `#graphql
  query RunFiles($project: String!, $entity: String!, $name: String!, $fileCursor: String,
      $fileLimit: Int = 50, $fileNames: [String] = [], $upload: Boolean = false, $pattern: String) {
    project(name: $project, entityName: $entity) {
      internalId
      run(name: $name) { fileCount ...RunFilesFragment }
    }
  }
  fragment RunFilesFragment on Run {
    files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {
      edges { node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5 } cursor }
      pageInfo { endCursor hasNextPage }
    }
  }`;

  test("files: names, LIKE pattern, paging; names+pattern is a GraphQL error", async () => {
    const all = await post(fake.url, {
      query: FILES_QUERY,
      variables: { ...V, name: "run-a", fileLimit: 2 },
      operationName: "",
    });
    const run = all.json.data.project.run;
    assert.equal(run.fileCount, 4);
    assert.equal(run.files.edges.length, 2);
    assert.equal(run.files.pageInfo.hasNextPage, true);
    const node = run.files.edges[1].node;
    assert.equal(node.url, `${fake.url}/files/stub-entity/stub-project/run-a/media/images/a%20b.png`);
    assert.ok(
      node.directUrl.startsWith(
        `${fake.storageUrl}/files/stub-entity/stub-project/run-a/media/images/a%20b.png?token=`,
      ),
    );
    const byName = await gql(fake.url, FILES_QUERY, { ...V, name: "run-a", fileNames: ["output.log"] });
    assert.deepEqual(
      byName.json.data.project.run.files.edges.map((e: { node: { name: string } }) => e.node.name),
      ["output.log"],
    );
    const like = await gql(fake.url, FILES_QUERY, { ...V, name: "run-a", pattern: "%.js_n" });
    assert.deepEqual(
      like.json.data.project.run.files.edges.map((e: { node: { name: string } }) => e.node.name),
      ["wandb-metadata.json"],
    );
    const both = await gql(fake.url, FILES_QUERY, { ...V, name: "run-a", pattern: "%", fileNames: ["x"] });
    assert.equal(both.status, 200);
    assert.match(both.json.errors[0].message, /names and pattern/);
  });

  test("GET /files: auth, 404, 302 to the storage host without auth; authLeaks records a leak", async () => {
    const path = "/files/stub-entity/stub-project/run-a/media/images/a%20b.png";
    const noAuth = await fetch(fake.url + path, { redirect: "manual" });
    assert.equal(noAuth.status, 401);
    const missing = await fetch(`${fake.url}/files/stub-entity/stub-project/run-a/nope.txt`, {
      headers: { authorization: AUTH },
      redirect: "manual",
    });
    assert.equal(missing.status, 404);
    const r = await fetch(fake.url + path, { headers: { authorization: AUTH }, redirect: "manual" });
    assert.equal(r.status, 302);
    const location = r.headers.get("location") as string;
    assert.ok(location.startsWith(`${fake.storageUrl}${path}?token=`));
    fake.resetStats();
    const s = await fetch(location);
    assert.equal(s.status, 200);
    assert.deepEqual([...new Uint8Array(await s.arrayBuffer())], [1, 2, 3, 4]);
    assert.deepEqual(fake.stats().authLeaks, []);
    const leak = await fetch(location, { headers: { authorization: AUTH } });
    await leak.arrayBuffer();
    assert.equal(fake.stats().authLeaks.length, 1);
    assert.equal(fake.stats().authLeaks[0]?.path, path);
    // A name with dot segments survives WHATWG URL normalisation (fetch) and comes back byte for byte.
    const files = await gql(fake.url, FILES_QUERY, { ...V, name: "run-a", fileNames: ["../../escape.txt"] });
    const escUrl: string = files.json.data.project.run.files.edges[0].node.url;
    assert.equal(new URL(escUrl).href, escUrl);
    const esc = await fetch(escUrl, { headers: { authorization: AUTH } });
    assert.equal(await esc.text(), "esc");
    const unsigned = await fetch(location.replace(/token=.*/, "token=bad"));
    assert.equal(unsigned.status, 403);
    const noToken = await fetch(location.replace(/\?.*/, ""));
    assert.equal(noToken.status, 403);
  });

  test("storage: HEAD and Range on a parquet export (206, Content-Range, 416)", async () => {
    const p = await gql(
      fake.url,
      'query P($e: String!, $p: String!, $r: String!) { project(name: $p, entityName: $e) { run(name: $r) { parquetHistory(liveKeys: ["_step"]) { parquetUrls } } } }',
      { e: "stub-entity", p: "stub-project", r: "run-a" },
    );
    const url: string = p.json.data.project.run.parquetHistory.parquetUrls[0];
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "1000");
    assert.equal(head.headers.get("accept-ranges"), "bytes");
    const part = await fetch(url, { headers: { range: "bytes=10-19" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 10-19/1000");
    assert.deepEqual([...new Uint8Array(await part.arrayBuffer())], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const tail = await fetch(url, { headers: { range: "bytes=-4" } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get("content-range"), "bytes 996-999/1000");
    await tail.arrayBuffer();
    const full = await fetch(url);
    assert.equal(full.status, 200);
    assert.equal((await full.arrayBuffer()).byteLength, 1000);
    const beyond = await fetch(url, { headers: { range: "bytes=5000-" } });
    assert.equal(beyond.status, 416);
    await beyond.arrayBuffer();
    assert.ok(fake.stats().parquet >= 5);
  });

  test("control endpoints: stats, reset, truth NDJSON, mutate, faults", async () => {
    fake.resetStats();
    await gql(fake.url, "{ viewer { id } }");
    const stats = (await (await fetch(`${fake.url}/_fake/stats`)).json()) as Record<string, unknown>;
    assert.equal(stats.total, 1);
    assert.equal(stats.graphql, 1);
    for (const k of ["storage", "files", "parquet", "bytesOut", "rateLimited"]) assert.equal(typeof stats[k], "number");
    assert.deepEqual(stats.authLeaks, []);
    assert.equal((await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" })).status, 200);
    assert.equal(fake.stats().total, 0);

    const runs = (await (await fetch(`${fake.url}/_fake/truth/runs`)).text()).trim().split("\n");
    assert.equal(runs.length, 3);
    assert.equal(JSON.parse(runs[0] as string).name, "run-a");
    const hist = (await (await fetch(`${fake.url}/_fake/truth/history?run=run-a`)).text()).trim().split("\n");
    assert.equal(hist.length, 10);
    assert.match(hist[3] as string, /"loss":NaN/);
    const ev = (await (await fetch(`${fake.url}/_fake/truth/events?run=run-a`)).text()).trim().split("\n");
    assert.equal(ev.length, 4);
    const files = (await (await fetch(`${fake.url}/_fake/truth/files?run=run-a`)).text()).trim().split("\n");
    assert.deepEqual(JSON.parse(files[2] as string), { name: "output.log", size: 5, md5: "md5c" });
    assert.equal((await fetch(`${fake.url}/_fake/truth/history?run=nope`)).status, 404);

    const bad = await fetch(`${fake.url}/_fake/mutate`, {
      method: "POST",
      body: JSON.stringify({ op: "setState", run: "zz", state: "finished" }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /unknown run/);
    const ok = await fetch(`${fake.url}/_fake/mutate`, {
      method: "POST",
      body: JSON.stringify([{ op: "setState", run: "run-c", state: "finished" }]),
    });
    assert.deepEqual(await ok.json(), { ok: true });
    const finished = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, filters: '{"state":"finished"}' } });
    assert.equal(finished.json.data.project.runCount, 2);
    await fetch(`${fake.url}/_fake/mutate`, {
      method: "POST",
      body: JSON.stringify({ op: "setState", run: "run-c", state: "crashed" }),
    });

    const badFaults = await fetch(`${fake.url}/_fake/faults`, {
      method: "POST",
      body: JSON.stringify({ failRate: 2 }),
    });
    assert.equal(badFaults.status, 400);
    assert.equal(fake.stats().total, 1); // control endpoints are not counted; only the Runs query above
  });

  test("sdkShapesOnly is off by default: aliased runs and first > 1000 are served", async () => {
    const r = await gql(
      fake.url,
      `query M($e: String!, $p: String!) { project(name: $p, entityName: $e) { a: run(name: "run-a") { name } b: run(name: "run-b") { name } runs(first: 5000) { edges { node { name files { edges { node { name } } } } } } } }`,
      { e: "stub-entity", p: "stub-project" },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.project.b.name, "run-b");
  });
});

describe("fake-wandb server: sdkShapesOnly", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startFakeServer(createStubStore(), { apiKey: KEY, sdkShapesOnly: true });
  });
  after(async () => {
    await fake.close();
  });

  test("rejects aliased run fields, runs(first > 1000) and files inside runs; SDK shapes pass", async () => {
    const vars = { e: "stub-entity", p: "stub-project" };
    const aliases = await gql(
      fake.url,
      `query M($e: String!, $p: String!) { project(name: $p, entityName: $e) { a: run(name: "run-a") { name } b: run(name: "run-b") { name } } }`,
      vars,
    );
    assert.equal(aliases.status, 400);
    assert.match(aliases.json.errors[0].message, /run/);
    const big = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, perPage: 1001 } });
    assert.equal(big.status, 400);
    assert.deepEqual(big.json, { errors: [{ message: "first must be <= 1000" }] });
    const bigLiteral = await gql(
      fake.url,
      "query M($e: String!, $p: String!) { project(name: $p, entityName: $e) { runs(first: 2000) { edges { node { name } } } } }",
      vars,
    );
    assert.equal(bigLiteral.status, 400);
    const files = await gql(
      fake.url,
      "query M($e: String!, $p: String!) { project(name: $p, entityName: $e) { runs { edges { node { ...F } } } } } fragment F on Run { files { edges { node { name } } } }",
      vars,
    );
    assert.equal(files.status, 400);
    assert.match(files.json.errors[0].message, /files/);
    const ok = await post(fake.url, { query: RUNS_QUERY, variables: { ...V, perPage: 1000 } });
    assert.equal(ok.status, 200);
  });
});

/** A raw HTTP request that reports how the exchange ended (the fetch API hides resets and truncation). */
function rawPost(url: string, body: string, timeoutMs = 5000) {
  return new Promise<{ status?: number; body?: string; error?: string; headers?: Record<string, unknown> }>(
    (resolve) => {
      const u = new URL(`${url}/graphql`);
      const req = httpRequest(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: "POST",
          headers: {
            authorization: AUTH,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
          agent: false,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), headers: res.headers }),
          );
          res.on("error", (e) => resolve({ status: res.statusCode, error: e.message }));
          res.on("aborted", () => resolve({ status: res.statusCode, error: "aborted" }));
        },
      );
      req.on("timeout", () => {
        req.destroy(new Error("client timeout"));
      });
      req.on("error", (e) => resolve({ error: e.message }));
      req.end(body);
    },
  );
}

describe("fake-wandb server: faults and rate limits", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startFakeServer(createStubStore(), { apiKey: KEY, seed: 3 });
  });
  after(async () => {
    await fake.close();
  });
  const body = JSON.stringify({ query: RUNS_QUERY, variables: V });

  test("each fault kind behaves as specified and is counted", async () => {
    const expectations: Record<string, (r: Awaited<ReturnType<typeof rawPost>>) => void> = {
      "500": (r) => {
        assert.equal(r.status, 500);
        assert.deepEqual(JSON.parse(r.body as string), { error: "internal database error" });
      },
      "502": (r) => assert.equal(r.status, 502),
      "503": (r) => assert.equal(r.status, 503),
      "429": (r) => {
        assert.equal(r.status, 429);
        assert.deepEqual(JSON.parse(r.body as string), { error: "rate limit exceeded" });
        assert.ok(r.headers?.["retry-after"]);
      },
      graphql: (r) => {
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.body as string), {
          errors: [{ message: "An internal error occurred. Please contact support." }],
          data: null,
        });
      },
      reset: (r) => {
        assert.equal(r.status, undefined);
        assert.ok(r.error);
      },
      truncated: (r) => {
        assert.equal(r.status, 200);
        assert.ok(r.error, "the body must end early");
      },
    };
    fake.resetStats();
    for (const [kind, check] of Object.entries(expectations)) {
      fake.setFaults({ failRate: 1, faultKinds: [kind as "500"] });
      check(await rawPost(fake.url, body));
    }
    fake.setFaults({ failRate: 1, faultKinds: ["stall"], stallMs: 300 });
    const started = Date.now();
    const stalled = await rawPost(fake.url, body);
    assert.equal(stalled.status, undefined);
    assert.ok(stalled.error);
    assert.ok(Date.now() - started >= 250);
    fake.setFaults({ failRate: 0 });
    const faults = fake.stats().faults;
    for (const kind of [...Object.keys(expectations), "stall"]) assert.equal(faults[kind], 1, kind);
    // Faults never apply to control endpoints.
    fake.setFaults({ failRate: 1, faultKinds: ["500"] });
    assert.equal((await fetch(`${fake.url}/_fake/stats`)).status, 200);
    fake.setFaults({ failRate: 0 });
  });

  test("fault draws are deterministic for a seed", async () => {
    const sequence = async () => {
      const f = await startFakeServer(createStubStore(), {
        apiKey: KEY,
        seed: 11,
        faults: { failRate: 0.5, faultKinds: ["500", "503"] },
      });
      const out: number[] = [];
      for (let i = 0; i < 12; i++) out.push((await rawPost(f.url, body)).status ?? 0);
      await f.close();
      return out;
    };
    const a = await sequence();
    assert.deepEqual(await sequence(), a);
    assert.ok(a.some((s) => s === 200) && a.some((s) => s !== 200));
  });

  test("rate limit: 429 with Retry-After and RateLimit-* headers beyond N requests per second", async () => {
    fake.resetStats();
    fake.setFaults({ rateLimit: 1 });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await rawPost(fake.url, body));
    fake.setFaults({ rateLimit: 0 });
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 3, `expected 429s, got ${results.map((r) => r.status)}`);
    const h = limited[0]?.headers ?? {};
    assert.deepEqual(JSON.parse(limited[0]?.body as string), { error: "rate limit exceeded" });
    assert.ok(Number(h["retry-after"]) >= 1);
    assert.equal(h["ratelimit-limit"], "1");
    assert.equal(h["ratelimit-remaining"], "0");
    assert.ok(Number(h["ratelimit-reset"]) >= 1);
    assert.equal(fake.stats().rateLimited, limited.length);
  });

  test("latency model delays responses", async () => {
    fake.setFaults({ latencyMs: 150 });
    const t = Date.now();
    const r = await rawPost(fake.url, body);
    fake.setFaults({ latencyMs: 0 });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t >= 140);
  });
});

describe("fake-wandb server: redirectFiles off, storage faults, /_fake/faults", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startFakeServer(createStubStore(), { apiKey: KEY, redirectFiles: false });
  });
  after(async () => {
    await fake.close();
  });

  test("GET /files serves the bytes directly (with Range) when redirects are off", async () => {
    const url = `${fake.url}/files/stub-entity/stub-project/run-a/output.log`;
    const r = await fetch(url, { headers: { authorization: AUTH }, redirect: "manual" });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "hello");
    const part = await fetch(url, { headers: { authorization: AUTH, range: "bytes=1-2" } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), "el");
    assert.equal((await fetch(url)).status, 401);
  });

  test("POST /_fake/faults changes the model; storage GETs are faulted, HEADs are not", async () => {
    const set = await fetch(`${fake.url}/_fake/faults`, {
      method: "POST",
      body: JSON.stringify({ failRate: 1, faultKinds: ["truncated"] }),
    });
    assert.equal(set.status, 200);
    const current = (await (await fetch(`${fake.url}/_fake/faults`)).json()) as { failRate: number };
    assert.equal(current.failRate, 1);
    const p = await gql(
      fake.url,
      'query P($e: String!, $p: String!) { project(name: $p, entityName: $e) { run(name: "run-a") { parquetHistory(liveKeys: ["_step"]) { parquetUrls } } } }',
      { e: "stub-entity", p: "stub-project" },
    ).catch((e: Error) => e);
    // the GraphQL answer itself is truncated: the client cannot read it
    assert.ok(p instanceof Error);
    await fetch(`${fake.url}/_fake/faults`, { method: "POST", body: JSON.stringify({ failRate: 0 }) });
    const ok = await gql(
      fake.url,
      'query P($e: String!, $p: String!) { project(name: $p, entityName: $e) { run(name: "run-a") { parquetHistory(liveKeys: ["_step"]) { parquetUrls } } } }',
      { e: "stub-entity", p: "stub-project" },
    );
    const url: string = ok.json.data.project.run.parquetHistory.parquetUrls[0];
    fake.setFaults({ failRate: 1, faultKinds: ["truncated"] });
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    const got = await fetch(url)
      .then((r) => r.arrayBuffer())
      .catch((e: Error) => e);
    assert.ok(got instanceof Error, "a truncated storage body must fail to read");
    fake.setFaults({ failRate: 0 });
    assert.equal(fake.stats().faults.truncated, 2);
  });
});

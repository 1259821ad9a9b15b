/** End-to-end tests of startFakeWandb and the fake-wandb CLI with the real (generated) store. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_API_KEY, type FakeWandb, startFakeWandb } from "./index.js";

// biome-ignore lint/suspicious/noExplicitAny: responses are inspected dynamically
type Json = any;

function authHeader(key: string): string {
  return `Basic ${Buffer.from(`api:${key}`).toString("base64")}`;
}

async function gql(fake: FakeWandb, query: string, variables: Record<string, unknown>): Promise<Json> {
  const res = await fetch(`${fake.url}/graphql`, {
    method: "POST",
    headers: { authorization: authHeader(fake.apiKey), "content-type": "application/json" },
    body: JSON.stringify({ query, variables, operationName: "" }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

describe("startFakeWandb with the real store", () => {
  let fake: FakeWandb;
  before(async () => {
    fake = await startFakeWandb({ runs: 6, steps: 120, seed: 5 });
  });
  after(async () => {
    await fake.close();
  });

  test("defaults: entity, project, a key the SDK accepts locally", () => {
    assert.equal(fake.entity, "fake-entity");
    assert.equal(fake.project, "fake-project");
    assert.equal(fake.apiKey, DEFAULT_API_KEY);
    assert.match(fake.apiKey, /^[A-Za-z0-9_]{40,}$/);
  });

  test("HistoryPage windows reproduce /_fake/truth/history step for step", async () => {
    const run = fake.store.runs().find((r) => r.historyLineCount > 0);
    assert.ok(run);
    const q = `#graphql
    query HistoryPage($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
      project(name: $project, entityName: $entity) { run(name: $run) { history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) } } }`;
    const steps: number[] = [];
    for (let lo = 0; lo <= run.lastStep; lo += 50) {
      const r = await gql(fake, q, {
        entity: fake.entity,
        project: fake.project,
        run: run.name,
        minStep: lo,
        maxStep: lo + 50,
        pageSize: 50,
      });
      for (const line of r.data.project.run.history as string[]) {
        steps.push(Number(/"_step":([0-9.]+)/.exec(line)?.[1]));
      }
    }
    const truth = (await (await fetch(`${fake.url}/_fake/truth/history?run=${run.name}`)).text()).trim().split("\n");
    assert.deepEqual(
      steps,
      truth.map((l) => Number(/"_step":(\d+)/.exec(l)?.[1])),
    );
    assert.equal(steps.length, run.historyLineCount);
  });

  test("run files: 302 to the storage host, bytes match sizeBytes and md5; no auth leaks", async () => {
    const run = fake.store.runs()[0];
    assert.ok(run);
    const r = await gql(
      fake,
      `query RunFiles($project: String!, $entity: String!, $name: String!, $fileCursor: String, $fileLimit: Int = 50,
        $fileNames: [String] = [], $upload: Boolean = false, $pattern: String) {
        project(name: $project, entityName: $entity) { internalId run(name: $name) { fileCount
          files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {
            edges { node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5 } cursor }
            pageInfo { endCursor hasNextPage } } } } }`,
      { project: fake.project, entity: fake.entity, name: run.name },
    );
    const edges = r.data.project.run.files.edges as { node: Json }[];
    assert.ok(edges.length > 0);
    assert.equal(r.data.project.run.fileCount, edges.length);
    fake.resetStats();
    for (const { node } of edges) {
      const redirect = await fetch(node.url, {
        headers: { authorization: authHeader(fake.apiKey) },
        redirect: "manual",
      });
      assert.equal(redirect.status, 302);
      const location = redirect.headers.get("location") as string;
      assert.ok(location.startsWith(fake.storageUrl));
      const body = Buffer.from(await (await fetch(location)).arrayBuffer());
      assert.equal(body.length, Number(node.sizeBytes));
      const md5 = createHash("md5").update(body).digest();
      assert.ok(node.md5 === md5.toString("base64") || node.md5 === md5.toString("hex"), node.md5);
      const direct = Buffer.from(await (await fetch(node.directUrl)).arrayBuffer());
      assert.deepEqual(direct, body);
    }
    const stats = fake.stats();
    assert.equal(stats.files, edges.length);
    assert.equal(stats.storage, edges.length * 2);
    assert.deepEqual(stats.authLeaks, []);
  });

  test("parquet exports: HEAD, Range (206) and a full GET of a real parquet file", async () => {
    const run = fake.store.runs().find((r) => r.exportedThrough > 0);
    assert.ok(run, "some run has an export");
    const r = await gql(
      fake,
      `query RunParquetHistory($entity: String!, $project: String!, $runName: String!, $liveKeys: [String!]!) {
        project(name: $project, entityName: $entity) { run(name: $runName) { parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }`,
      { entity: fake.entity, project: fake.project, runName: run.name, liveKeys: ["_step"] },
    );
    const urls = r.data.project.run.parquetHistory.parquetUrls as string[];
    assert.ok(urls.length > 0);
    const url = urls[0] as string;
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    const size = Number(head.headers.get("content-length"));
    assert.ok(size > 8);
    const magic = await fetch(url, { headers: { range: "bytes=0-3" } });
    assert.equal(magic.status, 206);
    assert.equal(Buffer.from(await magic.arrayBuffer()).toString(), "PAR1");
    const tail = await fetch(url, { headers: { range: `bytes=${size - 4}-${size - 1}` } });
    assert.equal(tail.status, 206);
    assert.equal(Buffer.from(await tail.arrayBuffer()).toString(), "PAR1");
    const full = await fetch(url);
    assert.equal((await full.arrayBuffer()).byteLength, size);
  });
});

describe("fake-wandb CLI", () => {
  const bin = fileURLToPath(new URL("./bin.ts", import.meta.url));

  test("prints one JSON line when ready and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", bin, "--runs", "2", "--steps", "10", "--seed", "3"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (c: string) => {
        out += c;
        if (out.includes("\n")) resolve(out);
      });
      child.once("exit", (code) => reject(new Error(`exited early with ${code}`)));
    });
    assert.equal(line.trim().split("\n").length, 1);
    const info = JSON.parse(line);
    assert.deepEqual(Object.keys(info).sort(), ["apiKey", "entity", "project", "storageUrl", "url"]);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await fetch(`${info.url}/graphql`, {
      method: "POST",
      headers: { authorization: authHeader(info.apiKey), "content-type": "application/json" },
      body: JSON.stringify({ query: "query GetDefaultEntity { viewer { id entity } }" }),
    });
    assert.equal(((await r.json()) as Json).data.viewer.entity, "fake-entity");
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
  });

  for (const args of [["--runs", "abc"], ["--fault-kinds", "500,nope"], ["--bogus"], ["--parquet-exports", "maybe"]]) {
    test(`bad flag ${args.join(" ")}: one line on stderr, exit 2`, async () => {
      const child = spawn(process.execPath, ["--import", "tsx", bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      let out = "";
      child.stderr.setEncoding("utf8").on("data", (c: string) => {
        err += c;
      });
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        out += c;
      });
      const [code] = await once(child, "exit");
      assert.equal(code, 2);
      assert.equal(out, "");
      assert.equal(err.trim().split("\n").length, 1, err);
    });
  }
});

/**
 * Issue #8 "Completeness", end to end through the CLI against fake-wandb: `dr-wandb sync ENTITY` syncs every project
 * of the entity (an entity with none exits 4 with one line), and runs' sweep_info holds their sweep's own fields, as
 * the fake serves them, read with one request per distinct sweep (not per run), in the archive and in the download.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/open.js";
import { type JsonObject, parseStrictJson, parseWandbJson } from "../../src/model/json.js";
import { toUtcIso } from "../../src/model/records.js";
import { fakeStats, firstDiff, runCli, tempDir, truthRuns } from "../helpers.js";

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;

before(async () => {
  fake = await startFakeWandb({ profile: "edge", seed: 8, runs: 24, steps: 30 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
});
after(async () => {
  await fake?.close();
});

/** The sweep as the fake serves it, asked the way any GraphQL client would (Basic auth api:<key>). */
async function servedSweep(name: string): Promise<JsonObject> {
  const res = await fetch(`${fake.url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from(`api:${fake.apiKey}`).toString("base64")}`,
    },
    body: JSON.stringify({
      operationName: "ExpectedSweep",
      query: `query ExpectedSweep($e: String, $p: String, $n: String!) {
        project(name: $p, entityName: $e) {
          sweep(sweepName: $n) {
            id name displayName method state description bestLoss config createdAt updatedAt runCount runCountExpected
          }
        }
      }`,
      variables: { e: fake.entity, p: fake.project, n: name },
    }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { data: { project: { sweep: JsonObject | null } } };
  const s = body.data.project.sweep;
  assert.ok(s, `the fake serves sweep ${name}`);
  return s;
}

/** The sweep_info dr-wandb must store for a run of the sweep `name` served as `s`. */
function expectedSweepInfo(name: string, s: JsonObject): JsonObject {
  const config = parseStrictJson(s.config as string) as JsonObject;
  return {
    sweep_id: name,
    sweep_name: (s.displayName as string | null) || (config.name as string) || name,
    display_name: s.displayName ?? null,
    method: s.method ?? null,
    state: s.state ?? null,
    description: s.description ?? null,
    best_loss: s.bestLoss ?? null,
    config,
    run_count: s.runCount ?? null,
    run_count_expected: s.runCountExpected ?? null,
    created_at: toUtcIso(s.createdAt as string | null),
    updated_at: toUtcIso(s.updatedAt as string | null),
    sweep_url: `${fake.url}/${encodeURIComponent(fake.entity)}/${encodeURIComponent(fake.project)}/sweeps/${name}`,
  };
}

async function sweepsOfTruth(): Promise<{ bySweep: Map<string, JsonObject>; runSweep: Map<string, string | null> }> {
  const truth = await truthRuns(fake.url);
  const runSweep = new Map(truth.map((t) => [t.name as string, (t.sweepName as string | null) ?? null]));
  const names = [...new Set([...runSweep.values()].filter((s): s is string => s !== null))];
  const bySweep = new Map<string, JsonObject>();
  for (const n of names) bySweep.set(n, expectedSweepInfo(n, await servedSweep(n)));
  return { bySweep, runSweep };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}

describe("dr-wandb sync ENTITY, and sweep_info from the sweep", () => {
  it("syncs every project of a bare entity; sweep_info equals the served sweep, one request per sweep", async () => {
    const { bySweep, runSweep } = await sweepsOfTruth();
    const withSweep = [...runSweep.values()].filter((s) => s !== null).length;
    assert.ok(bySweep.size >= 2, "the fake project has several sweeps");
    assert.ok(withSweep > bySweep.size, "some sweep has several runs (else one-per-run would pass too)");

    await using dir = await tempDir();
    fake.resetStats();
    const r = await runCli(["sync", fake.entity, "--output-dir", dir.path, "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`Entity ${fake.entity}: 1 project`));
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.deepEqual(
      summary.projects.map((p: JsonObject) => `${p.entity}/${p.project}`),
      [`${fake.entity}/${fake.project}`],
    );
    assert.equal(summary.projects[0].runsWritten, runSweep.size);
    assert.ok(!r.stderr.includes(fake.apiKey) && !r.stdout.includes(fake.apiKey));

    const stats = await fakeStats(fake.url);
    assert.equal(stats.byOperation.Projects, 1, "one Projects request");
    // Each distinct sweep read once (several sweeps may share one aliased GetSweeps request), never once per run.
    const sweepRequests = (stats.byOperation.GetSweep ?? 0) + (stats.byOperation.GetSweeps ?? 0);
    assert.ok(sweepRequests >= 1 && sweepRequests <= bySweep.size, `${sweepRequests} sweep requests`);

    const archive = await openArchive({ outputDir: dir.path, readOnly: true });
    try {
      const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
      const rows = await archive.query(
        `SELECT run_id, sweep_info FROM runs WHERE entity = ${q(fake.entity)} AND project = ${q(fake.project)}`,
      );
      assert.equal(rows.rows.length, runSweep.size, "every run of the project is in the archive");
      for (const [runId, cell] of rows.rows) {
        const info = typeof cell === "string" ? parseStrictJson(cell) : cell;
        const sweep = runSweep.get(runId as string);
        assert.notEqual(sweep, undefined, `run ${runId} is on the server`);
        const want = sweep ? bySweep.get(sweep)! : {};
        const d = firstDiff(info, want);
        assert.equal(d, null, `run ${runId} sweep_info: ${d}`);
      }
    } finally {
      await archive.close();
    }

    // A second sync reads no sweep again for unchanged runs.
    fake.resetStats();
    const again = await runCli(["sync", fake.entity, "--output-dir", dir.path, "--no-export"], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await fakeStats(fake.url)).byOperation.GetSweep ?? 0, 0);
  });

  it("mixes ENTITY and ENTITY/PROJECT without syncing a project twice", async () => {
    await using dir = await tempDir();
    const r = await runCli(
      ["sync", fake.entity, `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "--runs-only", "--json"],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(summary.projects.length, 1);
  });

  it("exits 4 with one line for an entity with no projects", async () => {
    await using dir = await tempDir();
    const r = await runCli(["sync", "no-such-entity", "--output-dir", dir.path], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.match(oneLine(r.stderr), /no projects found for entity no-such-entity/);
  });

  it("rejects a path that is neither ENTITY nor ENTITY/PROJECT (exit 2)", async () => {
    await using dir = await tempDir();
    const r = await runCli(["sync", "a/b/c", "--output-dir", dir.path], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /"a\/b\/c" is not ENTITY\/PROJECT or ENTITY/);
  });

  it("wandb-download writes the same sweep_info, one request per distinct sweep", async () => {
    const { bySweep, runSweep } = await sweepsOfTruth();
    await using dir = await tempDir();
    fake.resetStats();
    const out = join(dir.path, "out");
    const r = await runCli([fake.entity, fake.project, out, "--runs-only", "--format", "jsonl"], {
      env,
      bin: "wandb-download",
    });
    assert.equal(r.code, 0, r.stderr);
    const ops = (await fakeStats(fake.url)).byOperation;
    const sweepRequests = (ops.GetSweep ?? 0) + (ops.GetSweeps ?? 0);
    assert.ok(sweepRequests >= 1 && sweepRequests <= bySweep.size, `${sweepRequests} sweep requests`);
    const text = await readFile(join(out, `${fake.entity}_${fake.project}_runs.jsonl`), "utf8");
    const records = text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => parseWandbJson(l) as JsonObject);
    assert.equal(records.length, runSweep.size);
    for (const rec of records) {
      const sweep = runSweep.get(rec.run_id as string);
      const want = sweep ? bySweep.get(sweep)! : {};
      const d = firstDiff(rec.sweep_info, want);
      assert.equal(d, null, `run ${rec.run_id} sweep_info: ${d}`);
    }
  });
});

/**
 * Bad input and security, end to end: every bad input gives one clear line on stderr and its documented exit code;
 * the API key appears in no output, log, archive or export; Authorization never reaches the storage host.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { startGateProxy } from "../gate-proxy.js";
import { fakeStats, type RunCliOptions, runCli as runCliIn, startCli, tempDir } from "../helpers.js";

/** Every run here in a process of its own: what these tests prove (one line, no stack trace) is what a process shows. */
const runCli = (args: string[], opts: RunCliOptions = {}) => runCliIn(args, { ...opts, process: true });

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;

before(async () => {
  // Every edge scenario (hostile file names, odd values) on few steps: the assertions are about what is written
  // where, not how much.
  fake = await startFakeWandb({ profile: "edge", seed: 3, runs: 12, steps: 40 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
});
after(async () => {
  await fake?.close();
});

function assertOneLine(stderr: string, pattern?: RegExp): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(lines[0]!, /^\s+at /, "no stack trace");
  if (pattern) assert.match(lines[0]!, pattern);
  return lines[0]!;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

describe("bad input", () => {
  it("rejects a sync without entity/project, and bad option values (exit 2)", async () => {
    await using dir = await tempDir();
    const r = await runCli(["sync", "--output-dir", dir.path], { env, cwd: dir.path });
    assert.equal(r.code, 2);
    assertOneLine(r.stderr, /--entity is required/);
    const bad = await runCli(["sync", "e/p", "--filters", "{not json"], { env, cwd: dir.path });
    assert.equal(bad.code, 2);
    assertOneLine(bad.stderr, /JSON/);
    const range = await runCli(["sync", "e/p", "--min-step", "10", "--max-step", "5", "--output-dir", dir.path], {
      env,
      cwd: dir.path,
    });
    assert.equal(range.code, 2);
    assertOneLine(range.stderr, /--min-step/);
  });

  it("reads entity and project from a .env file in the working directory", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, ".env"), `DR_WANDB_ENTITY=${fake.entity}\nDR_WANDB_PROJECT=no-such-project\n`);
    const r = await runCli(["sync", "--output-dir", dir.path, "-q"], { env, cwd: dir.path });
    assert.equal(r.code, 4, r.stderr);
    assertOneLine(r.stderr, /no-such-project/);
  });

  it("says clearly when the base URL is unreachable or not a W&B server (exit 5)", async () => {
    await using dir = await tempDir();
    const closed = await runCli(["sync", "e/p", "--output-dir", dir.path, "--timeout", "2", "-q"], {
      env: { ...env, WANDB_BASE_URL: "http://127.0.0.1:9" },
    });
    assert.equal(closed.code, 5, closed.stderr);
    assertOneLine(closed.stderr);

    const notWandb = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>hello</html>");
    });
    await new Promise<void>((r) => notWandb.listen(0, "127.0.0.1", r));
    const port = (notWandb.address() as { port: number }).port;
    try {
      const r = await runCli(["sync", "e/p", "--output-dir", dir.path, "-q"], {
        env: { ...env, WANDB_BASE_URL: `http://127.0.0.1:${port}` },
      });
      assert.ok(r.code === 5 || r.code === 9, `exit ${r.code}: ${r.stderr}`);
      assertOneLine(r.stderr);
    } finally {
      notWandb.close();
    }
  });

  it("refuses a corrupt or foreign DuckDB file without touching it (exit 7)", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "wandb.duckdb");
    await writeFile(file, "this is not a database\n");
    const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q"], { env });
    assert.equal(r.code, 7, r.stderr);
    assertOneLine(r.stderr);
    assert.equal(await readFile(file, "utf8"), "this is not a database\n");
  });

  it("says clearly when PostgreSQL refuses the connection (exit 8)", async () => {
    await using dir = await tempDir();
    const r = await runCli(
      [
        "sync",
        `${fake.entity}/${fake.project}`,
        "--output-dir",
        dir.path,
        "--db-url",
        "postgresql://u:secretpw@127.0.0.1:9/db",
      ],
      { env },
    );
    assert.equal(r.code, 8, r.stderr);
    assert.ok(!assertOneLine(r.stderr).includes("secretpw"), "the database password must not be printed");
  });

  it("says clearly when the output folder cannot be written (exit 6)", async () => {
    if (process.getuid?.() === 0) {
      // root ignores permission bits: use a path through a regular file instead
      await using dir = await tempDir();
      await writeFile(join(dir.path, "file"), "x");
      const r = await runCli([fake.entity, fake.project, join(dir.path, "file", "out"), "-q"], {
        env,
        bin: "wandb-download",
      });
      assert.equal(r.code, 6, r.stderr);
      assertOneLine(r.stderr);
      return;
    }
    await using dir = await tempDir();
    const ro = join(dir.path, "ro");
    await mkdir(ro);
    await chmod(ro, 0o500);
    const r = await runCli([fake.entity, fake.project, join(ro, "out"), "-q"], { env, bin: "wandb-download" });
    assert.equal(r.code, 6, r.stderr);
    assertOneLine(r.stderr);
  });
});

describe("malformed answers", () => {
  it("stops with exit 9 and one line when the server sends malformed JSON, writing nothing", async () => {
    const run = {
      id: "x",
      name: "r1",
      displayName: "r1",
      state: "finished",
      createdAt: "2025-01-01T00:00:00",
      heartbeatAt: "2025-01-01T00:00:00",
      config: "{}",
      summaryMetrics: "{}",
      systemMetrics: "{}",
      historyKeys: { lastStep: 1 },
      historyLineCount: 2,
      tags: [],
      user: { name: "u", username: "u" },
    };
    const cursor = Buffer.from("arrayconnection:0").toString("base64");
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        if (req.method !== "POST") {
          res.writeHead(404);
          res.end("{}");
          return;
        }
        const data = body.includes("history(")
          ? { project: { run: { history: ['{"_step": 0, "loss": 1}', "{not json"] } } }
          : {
              project: {
                internalId: "p",
                runCount: 1,
                run,
                runs: { edges: [{ node: run, cursor }], pageInfo: { endCursor: cursor, hasNextPage: false } },
              },
            };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ data }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      await using dir = await tempDir();
      const envBad = { WANDB_BASE_URL: `http://127.0.0.1:${port}`, WANDB_API_KEY: fake.apiKey };
      const sync = await runCli(["sync", "e/p", "--output-dir", dir.path, "-q"], { env: envBad });
      assert.equal(sync.code, 9, sync.stderr);
      assertOneLine(sync.stderr, /not valid JSON/);
      const dl = await runCli(["e", "p", join(dir.path, "dl"), "-q"], { env: envBad, bin: "wandb-download" });
      assert.equal(dl.code, 9, dl.stderr);
      assertOneLine(dl.stderr, /not valid JSON/);
      const left = await readdir(dir.path);
      assert.ok(!left.includes("dl") || (await readdir(join(dir.path, "dl"))).length === 0, "no download output");
    } finally {
      server.close();
    }
  });
});

describe("security", () => {
  it("hides an --api-key value from the process title (ps, /proc/<pid>/cmdline)", async () => {
    // The title is rewritten before the first request: read it while that request is held by the proxy.
    const gate = await startGateProxy(fake.url);
    try {
      await using dir = await tempDir();
      const held = gate.holdAt("*");
      const { child, done } = startCli(
        ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, "-q", "--api-key", fake.apiKey],
        { env: { WANDB_BASE_URL: gate.url } },
      );
      const first = await Promise.race([held, done.then((r) => `(ended first: ${r.code} ${r.stderr})`)]);
      assert.ok(first.startsWith("/"), `no request was made: ${first}`);
      const cmdline = (await readFile(`/proc/${child.pid}/cmdline`, "utf8")).replaceAll("\0", " ");
      child.kill("SIGKILL");
      await done;
      assert.ok(cmdline.includes("--api-key ***"), `process title not rewritten: ${cmdline}`);
      assert.ok(!cmdline.includes(fake.apiKey), "the key is visible in the process title");
    } finally {
      await gate.close();
    }
  });

  it("warns when the netrc holding the key is readable by others, and still works", async () => {
    await using dir = await tempDir();
    const host = new URL(fake.url).host;
    const netrc = join(dir.path, ".netrc");
    await writeFile(netrc, `machine ${host}\n  login user\n  password ${fake.apiKey}\n`);
    await chmod(netrc, 0o644);
    const r = await runCli(
      ["sync", `${fake.entity}/${fake.project}`, "--output-dir", join(dir.path, "out"), "-q", "--runs-only"],
      {
        env: { WANDB_BASE_URL: fake.url, HOME: dir.path },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING.*netrc/i);
    assert.ok(!r.stderr.includes(fake.apiKey));
  });

  it("never writes the API key anywhere, and never sends Authorization to the storage host", async () => {
    await using dir = await tempDir();
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    const outputs: string[] = [];
    for (const fmt of ["parquet", "pkl", "jsonl"]) {
      const r = await runCli(
        [fake.entity, fake.project, join(dir.path, fmt), "--format", fmt, "-v", "--system-metrics"],
        {
          env,
          bin: "wandb-download",
        },
      );
      assert.equal(r.code, 0, r.stderr);
      outputs.push(r.stdout, r.stderr);
    }
    const s = await runCli(
      [
        "sync",
        `${fake.entity}/${fake.project}`,
        "--output-dir",
        join(dir.path, "archive"),
        "-v",
        "--files",
        "--system-metrics",
        "--json",
      ],
      { env },
    );
    assert.equal(s.code, 0, s.stderr);
    outputs.push(s.stdout, s.stderr);
    const wrong = await runCli(["sync", "e/p", "--output-dir", join(dir.path, "x"), "-v"], {
      env: { ...env, WANDB_API_KEY: `${fake.apiKey}X` },
    });
    outputs.push(wrong.stdout, wrong.stderr);

    const key = fake.apiKey;
    const forms = [key, Buffer.from(`api:${key}`).toString("base64"), Buffer.from(`api:${key}X`).toString("base64")];
    for (const text of outputs) for (const f of forms) assert.ok(!text.includes(f), "the key leaked into CLI output");
    let files = 0;
    for await (const p of walk(dir.path)) {
      if ((await stat(p)).size > 200 * 1024 * 1024) continue;
      const bytes = await readFile(p);
      for (const f of forms) assert.ok(!bytes.includes(f), `the key leaked into ${p}`);
      files++;
    }
    assert.ok(files > 10, `scanned only ${files} files`);
    const stats = await fakeStats(fake.url);
    assert.deepEqual(stats.authLeaks, [], "Authorization was sent to the storage host");
  });

  it("never writes a file outside the output folder, whatever names the server sends", async () => {
    await using dir = await tempDir();
    const out = join(dir.path, "inside");
    const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", out, "--files", "--no-export"], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /unsafe; not downloaded/);
    const outside = (await readdir(dir.path)).filter((n) => n !== "inside");
    assert.deepEqual(outside, [], "something was written next to the output folder");
    for await (const p of walk(out)) assert.ok(p.startsWith(out));
  });
});

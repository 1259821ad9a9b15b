/**
 * The viewer's HTTP API against a real DuckDB archive synced from fake-wandb's edge profile (plus a hostile run and
 * a 5,000-step "spikes" run written through the Archive interface): down-sampling keeps spikes, NaN and ±Infinity;
 * a zoomed range is full resolution; hostile ids and keys are plain values; big integers stay exact; a non-loopback
 * host needs the token; files outside the archive's files folder are refused.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { ROOT, runCli, startCli, tempDir } from "../../test/helpers.js";
import { openArchive } from "../archive/index.js";
import { type RunningServer, startServer } from "./server.js";
import { openSource } from "./source.js";
import { HOSTILE_ID, HOSTILE_KEY, SPIKE_STEPS, SPIKES, spikeValue, writeExtraRuns } from "./test-support.js";

let fake: FakeWandb;
let dir: Awaited<ReturnType<typeof tempDir>>;
let srv: RunningServer;

async function get(path: string, params: Record<string, string | string[]> = {}, init?: RequestInit) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, x);
  const res = await fetch(`${srv.url}${path.replace(/^\//, "")}?${q}`, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function api(name: string, params: Record<string, string | string[]> = {}) {
  const r = await get(`/api/${name}`, { entity: fake.entity, project: fake.project, ...params });
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

const num = (v: number | string) => (typeof v === "string" ? Number(v) : v);

before(async () => {
  fake = await startFakeWandb({ profile: "edge", runs: 12, steps: 40, metrics: 3, seed: 3 });
  dir = await tempDir("drwandb-serve-");
  const r = await runCli(
    ["sync", `${fake.entity}/${fake.project}`, "--files", "--system-metrics", "--no-export", "--output-dir", dir.path],
    { env: { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey } },
  );
  assert.equal(r.code, 0, r.stderr);
  const archive = await openArchive({ outputDir: dir.path });
  await writeExtraRuns(archive, fake.entity, fake.project);
  await archive.close();
  srv = await startServer({ source: await openSource({ outputDir: dir.path }), outputDir: dir.path });
});

after(async () => {
  await srv?.close();
  await fake?.close();
  await dir?.[Symbol.asyncDispose]();
});

describe("dr-wandb serve API (DuckDB)", () => {
  it("lists every run of the project, with chosen config columns exact (2^64+7 and 2^53+1)", async () => {
    const all = await api("runs", { limit: "1000", col: ['config:["big"]', 'config:["big_param"]'] });
    const truthCount = (await (await fetch(`${fake.url}/_fake/truth/runs`)).text()).trim().split("\n").length;
    assert.equal(all.total, truthCount + 2);
    const hostile = all.rows.find((r: { run_id: string }) => r.run_id === HOSTILE_ID);
    assert.equal(hostile.values[0], "18446744073709551623");
    const kitchen = all.rows.find((r: { values: (string | null)[] }) => r.values[1] !== null);
    assert.equal(kitchen.values[1], "9007199254740993");
  });

  it("sorts by a config key and pages", async () => {
    const a = await api("runs", { sort: 'config:["lr"]', desc: "1", limit: "3", col: 'config:["lr"]' });
    const lrs = a.rows.map((r: { values: string[] }) => Number(r.values[0]));
    assert.deepEqual(
      lrs,
      [...lrs].sort((x, y) => y - x),
    );
    assert.equal(lrs[0], 0.5, "the hostile run's lr 0.5 is the largest");
    const page2 = await api("runs", { sort: "run_id", limit: "3", offset: "3" });
    const first6 = await api("runs", { sort: "run_id", limit: "6" });
    assert.deepEqual(
      page2.rows.map((r: { run_id: string }) => r.run_id),
      first6.rows.slice(3).map((r: { run_id: string }) => r.run_id),
    );
  });

  it("takes hostile ids, keys and filters as values (SQL and HTML stay text; tables intact)", async () => {
    const byText = await api("runs", { q: "DROP TABLE", limit: "10" });
    assert.deepEqual(
      byText.rows.map((r: { run_id: string }) => r.run_id),
      [HOSTILE_ID],
    );
    const byTag = await api("runs", { tag: "' OR 1=1 --" });
    assert.equal(byTag.total, 1);
    const s = await api("series", { key: HOSTILE_KEY, run: HOSTILE_ID, buckets: "100" });
    assert.deepEqual(
      s.series[0].y,
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
    const detail = await api("run", { run: HOSTILE_ID });
    assert.equal(JSON.parse(detail.config)[HOSTILE_KEY], "<b>bold?</b>");
    const sorted = await api("runs", {
      sort: `config:${JSON.stringify([HOSTILE_KEY])}`,
      col: `summary:${JSON.stringify([HOSTILE_KEY])}`,
    });
    assert.ok(sorted.rows.some((r: { values: string[] }) => r.values[0] === "3"));
    const keys = await api("keys");
    assert.ok(keys.history.some((k: { key: string }) => k.key === HOSTILE_KEY));
    const total = await api("runs", { limit: "1" });
    assert.ok(total.total > 2, "runs table still there");
    const bad = await get("/api/runs", { entity: fake.entity, project: fake.project, col: "config:not json" });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).message, /column/);
  });

  it("down-samples 5,000 steps to about the bucket count, keeping every spike, NaN and ±Infinity", async () => {
    const s = await api("series", { key: "spiky", run: "spikes-run", buckets: "100" });
    const run = s.series[0];
    assert.equal(run.total, SPIKE_STEPS);
    assert.equal(run.sampled, true);
    assert.ok(run.x.length <= 100 * 4 + 12 && run.x.length >= 100, `points: ${run.x.length}`);
    const at = (step: number) => run.y[run.step.indexOf(step)];
    assert.equal(at(SPIKES.high), 1000);
    assert.equal(at(SPIKES.high2), 777);
    assert.equal(at(SPIKES.low), -1000);
    assert.equal(at(SPIKES.nan), "NaN");
    assert.equal(at(SPIKES.inf), "Infinity");
    assert.equal(at(SPIKES.ninf), "-Infinity");
    assert.equal(Math.max(...run.y.map(num).filter(Number.isFinite)), 1000);
    assert.equal(run.step[0], 0, "first point kept");
    assert.equal(run.step[run.step.length - 1], SPIKE_STEPS - 1, "last point kept");
    for (let i = 0; i < run.step.length; i++) assert.ok(Object.is(num(run.y[i]), spikeValue(run.step[i])));
  });

  it("returns every point of a zoomed range (full resolution), on x = step and x = runtime", async () => {
    const s = await api("series", { key: "spiky", run: "spikes-run", buckets: "100", x0: "1900", x1: "2099" });
    const run = s.series[0];
    assert.equal(run.sampled, false);
    assert.deepEqual(
      run.step,
      Array.from({ length: 200 }, (_, i) => 1900 + i),
    );
    for (let i = 0; i < 200; i++) assert.ok(Object.is(num(run.y[i]), spikeValue(run.step[i])));
    const rt = await api("series", {
      key: "spiky",
      run: "spikes-run",
      buckets: "100",
      x: "runtime",
      x0: "190",
      x1: "209.9",
    });
    assert.deepEqual(
      rt.series[0].step,
      Array.from({ length: 200 }, (_, i) => 1900 + i),
    );
    assert.deepEqual(rt.series[0].x.slice(0, 2), [190, 190.1]);
  });

  it("serves run files from the files folder only (no traversal, no symlink out, attachments not pages)", async () => {
    const runs = await api("runs", { limit: "1000" });
    let served = 0;
    for (const r of runs.rows.slice(0, 3)) {
      const files = await api("files", { run: r.run_id });
      // media/ holds hundreds of images per run: the other files (hostile names, logs, large.bin) are the cases.
      for (const f of files.files.filter((x: { name: string }) => !x.name.startsWith("media/"))) {
        const res = await get("/api/file", { entity: fake.entity, project: fake.project, run: r.run_id, name: f.name });
        if (f.local_path === null) assert.equal(res.status, 404, f.name);
        else {
          assert.equal(res.status, 200, f.name);
          assert.match(res.headers.get("content-security-policy") ?? "", /sandbox/);
          served++;
        }
      }
    }
    assert.ok(served > 0);
    for (const name of ["../../escape.txt", "/etc/passwd", "../../../wandb.duckdb"]) {
      const res = await get("/api/file", {
        entity: fake.entity,
        project: fake.project,
        run: runs.rows[0].run_id,
        name,
      });
      assert.equal(res.status, 404, name);
    }
    // A symlink inside the files folder pointing outside it is refused too.
    const kitchen = runs.rows.find((r: { run_name: string }) => /-1$/.test(r.run_name ?? ""));
    const files = await api("files", { run: kitchen.run_id });
    const f = files.files.find((x: { local_path: string | null }) => x.local_path);
    await writeFile(join(dir.path, "secret.txt"), "secret\n");
    const linkDir = join(dir.path, "files", "elsewhere");
    await mkdir(linkDir, { recursive: true });
    await symlink(join(dir.path, "secret.txt"), join(linkDir, "link.txt"));
    const { rm, rename } = await import("node:fs/promises");
    const target = join(dir.path, f.local_path);
    await rename(target, `${target}.orig`);
    await symlink(join(dir.path, "secret.txt"), target);
    const res = await get("/api/file", {
      entity: fake.entity,
      project: fake.project,
      run: kitchen.run_id,
      name: f.name,
    });
    assert.equal(res.status, 404);
    await rm(target);
    await rename(`${target}.orig`, target);
  });

  it("answers 503 busy while another process writes the DuckDB file, and reads again once it is gone", async () => {
    // Between requests the viewer holds no lock: a writer (here a child process, like a sync) can open the file.
    const holder = `import { DuckDBInstance } from "@duckdb/node-api";
      const db = await DuckDBInstance.create(process.argv[1]);
      const c = await db.connect();
      await c.run("CHECKPOINT");
      process.stdout.write("held\\n");
      process.stdin.resume();
      process.stdin.on("end", () => { c.closeSync(); db.closeSync(); process.exit(0); });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", holder, join(dir.path, "wandb.duckdb")], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    const [first] = await Promise.race([
      once(child.stdout, "data"),
      once(child, "exit").then(() => assert.fail(`the writer could not open the archive: ${err}`)),
    ]);
    assert.match(String(first), /held/);
    try {
      const busy = await get("/api/projects");
      assert.equal(busy.status, 503);
      assert.equal(JSON.parse(busy.text).error, "busy");
      assert.match(JSON.parse(busy.text).message, /busy/);
      assert.equal(busy.headers.get("retry-after"), "2");
    } finally {
      child.stdin.end();
      await once(child, "exit");
    }
    const ok = await get("/api/projects");
    assert.equal(ok.status, 200);
  });

  it("dr-wandb serve prints its URL and serves; with --host 0.0.0.0 it prints a token and requires it", async () => {
    for (const host of ["127.0.0.1", "0.0.0.0"]) {
      const { child, done } = startCli(["serve", "--output-dir", dir.path, "--port", "0", "--host", host]);
      try {
        const [line] = await Promise.race([
          once(child.stdout!, "data"),
          done.then((r) => assert.fail(`serve exited: ${r.stderr}`)),
        ]);
        const url = String(line).trim();
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/(\?token=[\w-]{20,})?$/);
        const bare = url.replace(/\?.*$/, "");
        const projects = await fetch(`${bare}api/projects${url.includes("token=") ? `?${url.split("?")[1]}` : ""}`);
        assert.equal(projects.status, 200);
        assert.equal(((await projects.json()) as { projects: unknown[] }).projects.length, 1);
        if (host === "0.0.0.0") assert.equal((await fetch(`${bare}api/projects`)).status, 401);
        else assert.ok(!url.includes("token="));
      } finally {
        child.kill("SIGTERM");
        await done;
      }
    }
  });

  it("answers only loopback Host names (no DNS rebinding) and only GET", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((res, rej) => {
      const u = new URL(srv.url);
      const req = request(
        { host: u.hostname, port: u.port, path: "/api/projects", headers: { Host: "evil.example" } },
        (r) => {
          r.resume();
          res(r.statusCode ?? 0);
        },
      );
      req.on("error", rej);
      req.end();
    });
    assert.equal(status, 421);
    const post = await fetch(`${srv.url}api/projects`, { method: "POST" });
    assert.equal(post.status, 405);
  });

  it("requires the access token on a non-loopback host", async () => {
    const s = await startServer({
      source: await openSource({ outputDir: dir.path }),
      outputDir: dir.path,
      host: "0.0.0.0",
    });
    try {
      assert.ok(s.token && s.token.length >= 20);
      assert.equal((await fetch(`${s.url}api/projects`)).status, 401);
      assert.equal((await fetch(`${s.url}`)).status, 401);
      assert.equal((await fetch(`${s.url}api/projects?token=wrong`)).status, 401);
      const ok = await fetch(s.openUrl);
      assert.equal(ok.status, 200);
      const cookie = ok.headers.get("set-cookie") ?? "";
      assert.match(cookie, /HttpOnly; SameSite=Strict/);
      const withCookie = await fetch(`${s.url}api/projects`, { headers: { cookie: cookie.split(";")[0]! } });
      assert.equal(withCookie.status, 200);
      const bearer = await fetch(`${s.url}api/projects`, { headers: { authorization: `Bearer ${s.token}` } });
      assert.equal(bearer.status, 200);
    } finally {
      await s.close();
    }
  });
});

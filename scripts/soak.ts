/**
 * `npm run soak`: the long reliability runs (the short ones are in `npm test`).
 *   1. crash consistency with 20 seeded kill -9 moments (test/e2e/crash.heavy.test.ts with DR_WANDB_CRASH_KILLS=20);
 *   2. the fault soak (test/e2e/faults.test.ts) over several seeds;
 *   3. a large sync: 10,000 runs x 1,000 steps into DuckDB, sampling the process's RSS and open file handles.
 * Results are printed as one JSON line each and collected in .tmp/soak-results.json; docs/reliability.md records them.
 *
 * Options: --only crash,faults,large   --runs N --steps N (large soak size)   --seeds 1,2,3
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";

const ROOT = join(import.meta.dirname, "..");
const opts = new Command("soak")
  .option("--only <parts>", "crash,faults,large", "crash,faults,large")
  .option("--runs <n>", "large soak: runs", "10000")
  .option("--steps <n>", "large soak: steps per run", "1000")
  .option("--seeds <list>", "fault soak seeds", "42,43,44")
  .parse()
  .opts<{ only: string; runs: string; steps: string; seeds: string }>();
const parts = new Set(opts.only.split(","));
const results: Record<string, unknown>[] = [];

function record(r: Record<string, unknown>): void {
  results.push({ ...r, at: new Date().toISOString() });
  console.log(JSON.stringify(r));
}

function runTests(
  file: string,
  env: Record<string, string>,
): { ok: boolean; pass: number; fail: number; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ["scripts/run-tests.mjs", "--tier", "all", file], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const summary = /^(\d+) passed, (\d+) failed/m.exec(r.stdout);
  const pass = Number(summary?.[1] ?? 0);
  const fail = Number(summary?.[2] ?? 0);
  if (r.status !== 0) process.stderr.write(r.stdout.slice(-4000));
  return { ok: r.status === 0, pass, fail, seconds: (Date.now() - t0) / 1000 };
}

if (parts.has("crash")) {
  record({ soak: "crash", kills: 20, seed: 7, ...runTests("test/e2e/crash.heavy", { DR_WANDB_CRASH_KILLS: "20" }) });
}

if (parts.has("faults")) {
  for (const seed of opts.seeds.split(",")) {
    record({
      soak: "faults",
      failRate: 0.15,
      seed: Number(seed),
      ...runTests("test/e2e/faults.heavy", { DR_WANDB_SOAK_SEED: seed }),
    });
  }
}

/** Samples a process's RSS (kB) and open file descriptors until it exits. */
function sample(pid: number, into: { rss: number[]; fds: number[] }): NodeJS.Timeout {
  return setInterval(() => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      into.rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
      into.fds.push(readdirSync(`/proc/${pid}/fd`).length);
    } catch {
      // the process ended
    }
  }, 1000);
}

if (parts.has("large")) {
  const dir = join(tmpdir(), `dr-wandb-soak-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const fake = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "fake-wandb/bin.ts",
      "--port",
      "0",
      "--seed",
      "99",
      "--runs",
      opts.runs,
      "--steps",
      opts.steps,
      "--metrics",
      "8",
      "--cache-dir",
      join(dir, "fake-cache"),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  const info = await new Promise<{ url: string; apiKey: string; entity: string; project: string }>((res, rej) => {
    let buf = "";
    fake.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) res(JSON.parse(buf.slice(0, nl)));
    });
    fake.on("exit", (c) => rej(new Error(`fake-wandb exited with ${c}`)));
  });
  const t0 = Date.now();
  const samples = { rss: [] as number[], fds: [] as number[] };
  const sync = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/bin.ts",
      "sync",
      `${info.entity}/${info.project}`,
      "--output-dir",
      join(dir, "out"),
      "-q",
      "--json",
    ],
    {
      cwd: ROOT,
      env: { ...process.env, WANDB_BASE_URL: info.url, WANDB_API_KEY: info.apiKey },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const timer = sample(sync.pid!, samples);
  let out = "";
  sync.stdout.on("data", (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((res) => sync.on("exit", res));
  clearInterval(timer);
  fake.kill("SIGTERM");
  const summary = out.trim() ? JSON.parse(out.trim().split("\n").pop()!) : null;
  const half = Math.floor(samples.fds.length / 2);
  const fdsFirstHalf = Math.max(0, ...samples.fds.slice(0, half));
  const fdsSecondHalf = Math.max(0, ...samples.fds.slice(half));
  record({
    soak: "large",
    runs: Number(opts.runs),
    steps: Number(opts.steps),
    ok: code === 0,
    exitCode: code,
    seconds: (Date.now() - t0) / 1000,
    historyRows: summary?.projects?.[0]?.historyRows ?? null,
    peakRssMB: Math.round(Math.max(0, ...samples.rss) / 1024),
    fdsFirstHalfMax: fdsFirstHalf,
    fdsSecondHalfMax: fdsSecondHalf,
    handlesGrew: fdsSecondHalf > fdsFirstHalf + 16,
  });
  rmSync(dir, { recursive: true, force: true });
}

mkdirSync(join(ROOT, ".tmp"), { recursive: true });
writeFileSync(join(ROOT, ".tmp", "soak-results.json"), `${JSON.stringify(results, null, 2)}\n`);
const failed = results.filter((r) => r.ok === false);
console.log(`soak: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exitCode = failed.length > 0 ? 1 : 0;

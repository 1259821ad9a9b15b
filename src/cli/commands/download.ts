/** `wandb-download ENTITY PROJECT OUTPUT_DIR` (also `dr-wandb download`): the original tool's command. */
import { resolve } from "node:path";
import type { DownloadFormat } from "../../output/writer.js";
import { downloadProject } from "../../sync/download.js";
import { type ClientFlags, type CommandContext, loggerFor, makeClient, type OutputFlags } from "../context.js";
import { usage } from "../errors.js";
import { historySelection, runSelection, type SelectionFlags } from "../flags.js";
import { Progress } from "../log.js";

export interface DownloadFlags extends ClientFlags, OutputFlags, SelectionFlags {
  runsOnly?: boolean;
  runsPerPage: number;
  logEvery: number;
  format: DownloadFormat;
  metadata?: boolean;
  systemMetrics?: boolean;
}

function checkName(kind: string, v: string): void {
  if (v.trim() === "" || v.includes("/") || v.includes("\\") || v === "." || v === ".." || v.includes("\0")) {
    throw usage(`${kind} "${v}" is not a W&B ${kind} name`);
  }
}

export async function downloadCommand(
  entity: string,
  project: string,
  outputDir: string,
  f: DownloadFlags,
  ctx: CommandContext,
): Promise<void> {
  checkName("entity", entity);
  checkName("project", project);
  const log = loggerFor(ctx, f);
  const ext = f.format;
  const withHistory = !f.runsOnly;
  const runsFile = `${entity}_${project}_runs.${ext}`;
  const historiesFile = `${entity}_${project}_histories.${ext}`;
  const history = historySelection(f);
  log.info("\n:: Beginning Dr. Wandb Project Downloading Tool ::\n");
  log.info(
    JSON.stringify(
      {
        entity,
        project,
        output_dir: outputDir,
        runs_only: !withHistory,
        runs_per_page: f.runsPerPage,
        log_every: f.logEvery,
        format: f.format,
        runs_output_filename: runsFile,
        histories_output_filename: historiesFile,
      },
      null,
      4,
    ),
  );
  log.info("");
  const api = await makeClient(ctx, f, log);
  const progress = f.quiet || f.json || !Progress.enabled(ctx.stderr) ? undefined : new Progress(ctx.stderr);
  try {
    log.info(">> Downloading runs, this will take a while (minutes)");
    const started = Date.now();
    const result = await downloadProject(api, {
      entity,
      project,
      outputDir: resolve(ctx.settings.cwd, outputDir),
      format: f.format,
      withHistory,
      perPage: f.runsPerPage,
      concurrency: f.concurrency,
      metadata: f.metadata,
      systemMetrics: f.systemMetrics,
      runs: runSelection(f),
      history,
      onEvent: (e) => {
        if (e.type === "listing") {
          log.info(`  - total runs found: ${e.runCount}`);
          log.info(`>> Serializing runs and maybe getting histories: ${withHistory ? "True" : "False"}`);
          progress?.start(e.runCount);
        } else if (e.type === "run") {
          if (progress) progress.tick(e.historyRows, e.displayName ?? e.run);
          else if (e.index % f.logEvery === 0 || (log.verbosity === "verbose" && e.index === e.total)) {
            log.info(`>> ${e.index}/${e.total}: ${e.displayName ?? e.run}`);
          }
        } else if (e.type === "warning") log.warn(e.message);
      },
    });
    progress?.stop();
    const runsPath = result.files.find((p) => p.endsWith(runsFile)) ?? resolve(outputDir, runsFile);
    log.info(`>> Dumped runs data to: ${runsPath}`);
    if (withHistory) {
      const hp = result.files.find((p) => p.endsWith(historiesFile)) ?? resolve(outputDir, historiesFile);
      log.info(`>> Dumped histories data to: ${hp}`);
    } else {
      log.info(`>> Runs only, not dumping histories to: ${resolve(outputDir, historiesFile)}`);
    }
    if (f.json) {
      ctx.stdout.write(
        `${JSON.stringify({
          command: "download",
          entity,
          project,
          format: f.format,
          runCount: result.runCount,
          runs: result.runs,
          historyRows: result.historyRows,
          files: result.files,
          seconds: (Date.now() - started) / 1000,
        })}\n`,
      );
    }
  } finally {
    progress?.stop();
    await api.close();
  }
}

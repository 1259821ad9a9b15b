/** `dr-wandb import PATH...`: local `.wandb` files (offline runs, runs that never reached W&B) into the archive. */
import type { CommandContext, OutputFlags } from "../context.js";
import { loggerFor } from "../context.js";
import { EXIT, ExitError } from "../errors.js";
import { type ArchiveFlags, archiveSettings, openArchiveFor } from "./sync.js";

export interface ImportFlags extends ArchiveFlags, OutputFlags {
  entity?: string;
  project?: string;
  force?: boolean;
  export?: boolean;
}

export async function importCommand(paths: string[], f: ImportFlags, ctx: CommandContext): Promise<void> {
  const log = loggerFor(ctx, f);
  const { importPaths, ImportError, planImport } = await import("../../import/index.js");
  const { outputDir } = archiveSettings(f, ctx);
  const defaultEntity = ctx.settings.pick(undefined, "DR_WANDB_ENTITY", undefined);
  const opts = { entity: f.entity, project: f.project, defaultEntity, outputDir, force: f.force };
  const asExit = (e: unknown): unknown =>
    e instanceof ImportError
      ? new ExitError(e.code === "NOT_FOUND" ? EXIT.NOT_FOUND : EXIT.USAGE, e.message, { cause: e })
      : e;
  // every file is checked (header, version, run record, entity) before the archive is opened
  let plan: ReturnType<typeof planImport>;
  try {
    plan = planImport(paths, opts);
  } catch (e) {
    throw asExit(e);
  }
  const archive = await openArchiveFor(f, ctx);
  try {
    log.info(`>> Archive: ${archive.location}`);
    let r: Awaited<ReturnType<typeof importPaths>>;
    try {
      r = await importPaths(archive, plan, {
        ...opts,
        onEvent: (e) => {
          if (e.type === "found")
            log.info(`  - ${e.files} .wandb file${e.files === 1 ? "" : "s"}, ${e.runs} run${e.runs === 1 ? "" : "s"}`);
          else if (e.type === "warning") log.warn(e.message);
          else if (e.action === "kept-wandb")
            log.info(`  - ${e.entity}/${e.project}/${e.run}: the archive has it from W&B; kept W&B's copy`);
          else log.debug(`  - ${e.entity}/${e.project}/${e.run}: ${e.action}, ${e.historyRows} history rows`);
        },
      });
    } catch (e) {
      throw asExit(e);
    }
    log.info(
      `  - wrote ${r.runsWritten}, unchanged ${r.runsUnchanged}, kept from W&B ${r.runsKeptFromWandb}, history rows ${r.historyRows}` +
        (r.warnings.length > 0 ? `, ${r.warnings.length} warning${r.warnings.length === 1 ? "" : "s"}` : ""),
    );
    if (f.export !== false && r.runsWritten > 0) {
      const { exportArchive } = await import("../../export/archive-export.js");
      const only = r.projects.length === 1 ? r.projects[0] : undefined;
      const ex = await exportArchive(archive, { outputDir, entity: only?.entity, project: only?.project });
      log.info(`>> Exported ${ex.files.length} Parquet files to ${outputDir}`);
    }
    if (f.json) ctx.stdout.write(`${JSON.stringify({ command: "import", ...r })}\n`);
  } finally {
    await archive.close();
  }
}

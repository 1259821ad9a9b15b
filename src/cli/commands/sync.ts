/** `dr-wandb sync`: incremental sync of one or more projects into the archive, then the Parquet export. */
import type { Archive } from "../../archive/index.js";
import { type SyncResult, syncProject } from "../../sync/pipeline.js";
import type { WandbApi } from "../../wandb/types.js";
import { type ClientFlags, type CommandContext, loggerFor, makeClient, type OutputFlags } from "../context.js";
import { EXIT, ExitError, usage } from "../errors.js";
import {
  type ArchiveFlags,
  archiveSettings,
  historySelection,
  openArchiveFor,
  runSelection,
  type SelectionFlags,
} from "../flags.js";
import { type Logger, Progress } from "../log.js";

export interface SyncFlags extends ClientFlags, OutputFlags, SelectionFlags, ArchiveFlags {
  entity?: string;
  project?: string;
  runsOnly?: boolean;
  forceRefresh?: boolean;
  export?: boolean;
  runsPerPage: number;
  systemMetrics?: boolean;
  files?: boolean;
  filesPattern?: string;
  maxFileSize?: number;
}

/** A sync target: one project, or (project undefined) every project of the entity. */
export interface SyncTarget {
  entity: string;
  project?: string;
}

/** ENTITY/PROJECT and ENTITY paths from arguments, or --entity/--project (and their environment variables). */
export function projectPaths(paths: string[], f: SyncFlags, ctx: CommandContext): SyncTarget[] {
  const out: SyncTarget[] = [];
  for (const p of paths) {
    const parts = p.split("/");
    if (parts.length === 1 && parts[0]) out.push({ entity: parts[0] });
    else if (parts.length === 2 && parts[0] && parts[1]) out.push({ entity: parts[0], project: parts[1] });
    else throw usage(`"${p}" is not ENTITY/PROJECT or ENTITY`);
  }
  if (out.length > 0) return out;
  const entity = ctx.settings.pick(f.entity, "DR_WANDB_ENTITY", undefined);
  const project = ctx.settings.pick(f.project, "DR_WANDB_PROJECT", undefined);
  if (!entity) throw usage("--entity is required, or set DR_WANDB_ENTITY (environment or .env)");
  if (!project) throw usage("--project is required, or set DR_WANDB_PROJECT (environment or .env)");
  return [{ entity, project }];
}

/**
 * The projects to sync: ENTITY/PROJECT targets as given, and every project W&B lists for a bare ENTITY (the SDK's
 * `api.projects(entity)`), in order and without repeats. An entity with no projects is an error (exit 4).
 */
export async function expandTargets(
  api: Pick<WandbApi, "listProjects">,
  targets: SyncTarget[],
  log?: Logger,
): Promise<{ entity: string; project: string }[]> {
  const out: { entity: string; project: string }[] = [];
  const seen = new Set<string>();
  const add = (entity: string, project: string) => {
    const key = JSON.stringify([entity, project]);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ entity, project });
  };
  for (const { entity, project } of targets) {
    if (project !== undefined) {
      add(entity, project);
      continue;
    }
    let found = 0;
    for await (const page of api.listProjects(entity)) {
      for (const p of page) {
        found++;
        add(entity, p.name);
      }
    }
    if (found === 0) {
      throw new ExitError(EXIT.NOT_FOUND, `no projects found for entity ${entity} (or none visible with this API key)`);
    }
    log?.info(`>> Entity ${entity}: ${found} project${found === 1 ? "" : "s"}`);
  }
  return out;
}

export async function syncCommand(paths: string[], f: SyncFlags, ctx: CommandContext): Promise<void> {
  const log = loggerFor(ctx, f);
  const given = projectPaths(paths, f, ctx);
  const history = historySelection(f);
  const { outputDir } = archiveSettings(f, ctx);
  const api = await makeClient(ctx, f, log);
  let archive: Archive | undefined;
  const results: SyncResult[] = [];
  const exported: string[] = [];
  try {
    const targets = await expandTargets(api, given, log);
    archive = await openArchiveFor(f, ctx);
    log.info(`>> Archive: ${archive.location}`);
    for (const { entity, project } of targets) {
      const progress = f.quiet || f.json || !Progress.enabled(ctx.stderr) ? undefined : new Progress(ctx.stderr);
      log.info(`>> Syncing ${entity}/${project}`);
      try {
        const r = await syncProject(api, archive, {
          entity,
          project,
          withHistory: !f.runsOnly,
          forceRefresh: f.forceRefresh,
          perPage: f.runsPerPage,
          concurrency: f.concurrency,
          runs: runSelection(f),
          history,
          systemMetrics: f.systemMetrics,
          files: f.files ? { outputDir, pattern: f.filesPattern, maxFileSize: f.maxFileSize } : undefined,
          onEvent: (e) => {
            if (e.type === "listing") {
              log.info(`  - runs on W&B: ${e.runCount}`);
              progress?.start(e.runCount);
            } else if (e.type === "run") {
              if (progress) progress.tick(e.historyRows, e.displayName ?? e.run);
              else log.debug(`  - ${e.run} (${e.reasons.join(", ")}): ${e.historyRows} history rows`);
            } else if (e.type === "warning") log.warn(e.message);
            else if (e.type === "deleted") log.info(`  - marked deleted on W&B: ${e.runs.join(", ")}`);
          },
        });
        progress?.stop();
        results.push(r);
        log.info(
          `  - listed ${r.runsListed}, wrote ${r.runsWritten}, unchanged ${r.runsUnchanged}, deleted ${r.runsDeleted}, ` +
            `history rows ${r.historyRows}${f.files ? `, files downloaded ${r.filesDownloaded}` : ""}`,
        );
        if (r.runsWritten === 0 && r.runsDeleted === 0) log.info(">> No runs to download");
      } finally {
        progress?.stop();
      }
    }
    if (f.export !== false) {
      const { exportArchive } = await import("../../export/archive-export.js");
      const onlyOne = targets.length === 1 ? targets[0] : undefined;
      const ex = await exportArchive(archive, { outputDir, entity: onlyOne?.entity, project: onlyOne?.project });
      exported.push(...ex.files);
      log.info(`>> Exported ${ex.files.length} Parquet files to ${outputDir}`);
    }
  } finally {
    await archive?.close();
    await api.close();
  }
  if (f.json) {
    ctx.stdout.write(`${JSON.stringify({ command: "sync", projects: results, exported })}\n`);
  }
}

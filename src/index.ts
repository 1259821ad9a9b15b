/**
 * dr-wandb as a library: everything the CLI does, as typed functions and async iterators.
 * See docs/library.md for examples (each of them is run by the tests).
 *
 *   import { listRuns, scanHistory, downloadProject, syncProject, openArchive } from "dr-wandb";
 *
 * Functions that talk to W&B take connection options ({ apiKey, baseUrl, ... }, resolved as the CLI does: explicit,
 * WANDB_API_KEY, .env, netrc) or an existing `client`; a client they create themselves is closed when they finish.
 */
import type { Archive } from "./archive/archive.js";
import { openArchive } from "./archive/open.js";
import { exportArchive } from "./export/archive-export.js";
import type { JsonObject } from "./model/json.js";
import { type HistoryRecord, toHistoryRecord } from "./model/records.js";
import { type DownloadOptions, type DownloadResult, downloadProject as runDownload } from "./sync/download.js";
import { syncProject as runSync, type SyncOptions, type SyncResult } from "./sync/pipeline.js";
import { buildFilters, type RunSelection } from "./sync/selection.js";
import { WandbClient, type WandbClientOptions } from "./wandb/client.js";
import type { ScanHistoryOptions, WandbApi, WandbProject, WandbRun } from "./wandb/types.js";

export type { Archive, ArchiveStatus, QueryResult, RunSyncState } from "./archive/archive.js";
export { ArchiveError } from "./archive/errors.js";
export { openArchive } from "./archive/open.js";
export { exportArchive } from "./export/archive-export.js";
export {
  type JsonObject,
  type JsonValue,
  parseStrictJson,
  parseWandbJson,
  stringifyStrict,
  stringifyWandb,
} from "./model/json.js";
export type { FileRecord, HistoryRecord, RunRecord, SystemMetricsRecord } from "./model/records.js";
export { type DownloadFormat, openProjectWriter, type ProjectWriter } from "./output/writer.js";
export type { DownloadEvent, DownloadResult } from "./sync/download.js";
export type { HistorySelection } from "./sync/fetch-run.js";
export type { SyncEvent, SyncResult } from "./sync/pipeline.js";
export type { RunSelection } from "./sync/selection.js";
export { NotFoundError, RateGovernor, WandbClient, type WandbClientOptions, WandbError } from "./wandb/index.js";
export type {
  HistoryRow,
  RunsPage,
  WandbApi,
  WandbFile,
  WandbProject,
  WandbRun,
  WandbSweep,
} from "./wandb/types.js";

/** How a library call reaches W&B: an existing client, or options to create one. */
export interface Connection extends WandbClientOptions {
  client?: WandbApi;
}

/** Creates a W&B client (key and base URL resolved as the CLI resolves them). Close it with `client.close()`. */
export function connect(options: WandbClientOptions = {}): Promise<WandbClient> {
  return WandbClient.create(options);
}

async function withClient<T>(conn: Connection, fn: (api: WandbApi) => Promise<T>): Promise<T> {
  if (conn.client) return fn(conn.client);
  const { client: _unused, ...opts } = conn;
  const api = await WandbClient.create(opts);
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

/** Every run of a project (full config, summary and system metrics; one request per page), oldest first. */
export async function* listRuns(
  entity: string,
  project: string,
  options: Connection & RunSelection & { perPage?: number; order?: string } = {},
): AsyncGenerator<WandbRun> {
  const own = options.client === undefined;
  const api = options.client ?? (await WandbClient.create(options));
  try {
    const seen = new Set<string>();
    for await (const page of api.listRuns(entity, project, {
      filters: buildFilters(options),
      order: options.order ?? "+created_at",
      perPage: options.perPage,
    })) {
      for (const run of page.runs) {
        if (seen.has(run.name)) continue;
        if (options.maxRuns !== undefined && seen.size >= options.maxRuns) return;
        seen.add(run.name);
        yield run;
      }
    }
  } finally {
    if (own) await api.close();
  }
}

/** Every project of an entity (what `dr-wandb sync ENTITY` syncs). */
export async function* listProjects(entity: string, conn: Connection = {}): AsyncGenerator<WandbProject> {
  const own = conn.client === undefined;
  const api = conn.client ?? (await WandbClient.create(conn));
  try {
    for await (const page of api.listProjects(entity)) yield* page;
  } finally {
    if (own) await api.close();
  }
}

/** One run, or null when it does not exist. */
export function getRun(
  entity: string,
  project: string,
  runId: string,
  conn: Connection = {},
): Promise<WandbRun | null> {
  return withClient(conn, (api) => api.getRun(entity, project, runId));
}

/** Every history row of a run, in step order (parquet exports first, live windows for the rest). */
export async function* scanHistory(
  entity: string,
  project: string,
  runId: string,
  options: Connection & ScanHistoryOptions = {},
): AsyncGenerator<HistoryRecord> {
  const own = options.client === undefined;
  const api = options.client ?? (await WandbClient.create(options));
  try {
    for await (const batch of api.scanHistory(entity, project, runId, options)) {
      for (const row of batch as JsonObject[]) {
        const rec = toHistoryRecord(runId, row);
        if (rec) yield rec;
      }
    }
  } finally {
    if (own) await api.close();
  }
}

/** What `wandb-download` does: a project's runs (and histories) into pkl, parquet or jsonl files. */
export function downloadProject(options: DownloadOptions & Connection): Promise<DownloadResult> {
  return withClient(options, (api) => runDownload(api, options));
}

export interface SyncProjectOptions extends SyncOptions, Connection {
  /** Archive URL (duckdb:PATH, postgresql://...); default <outputDir>/wandb.duckdb. */
  dbUrl?: string;
  /** Folder of the archive and its Parquet export. */
  outputDir: string;
  /** Write the Parquet export after the sync (default true). */
  export?: boolean;
  /** An archive opened by the caller (then dbUrl is ignored and the archive is left open). */
  archive?: Archive;
}

/** What `dr-wandb sync` does: an incremental sync of one project into the archive, then the Parquet export. */
export function syncProject(options: SyncProjectOptions): Promise<SyncResult & { exported: string[] }> {
  return withClient(options, async (api) => {
    const archive = options.archive ?? (await openArchive({ dbUrl: options.dbUrl, outputDir: options.outputDir }));
    try {
      const result = await runSync(api, archive, options);
      const exported =
        options.export === false
          ? []
          : (
              await exportArchive(archive, {
                outputDir: options.outputDir,
                entity: options.entity,
                project: options.project,
              })
            ).files;
      return { ...result, exported };
    } finally {
      if (!options.archive) await archive.close();
    }
  });
}

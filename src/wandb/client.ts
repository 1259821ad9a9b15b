/**
 * WandbClient: the WandbApi over W&B's GraphQL API, run-file downloads and parquet history exports.
 *
 * Request shapes the official SDK never sends (aliased multi-run documents, pages larger than 50, named files inside
 * a Runs page) are tried first and given up per server on a validation/complexity rejection (see capabilities.ts);
 * `compat: true` uses only the SDK's shapes from the start.
 *
 * A thin façade: the requests live in listing.ts (runs pages, createdAt ranges), batches.ts (runs by name),
 * projects-sweeps.ts, files.ts and history.ts, over one ClientCore (transport, capabilities, page sizes).
 */
import { tmpdir } from "node:os";
import { isJsonObject, type JsonObject } from "../model/json.js";
import { ParquetReader } from "../model/parquet-reader.js";
import { AliasBatcher } from "./batcher.js";
import { getRun, getRuns } from "./batches.js";
import { type Capabilities, capabilitiesFor } from "./capabilities.js";
import { ClientCore } from "./client-core.js";
import { type ResolveConfigOptions, resolveConfig, type WandbConfig } from "./config.js";
import { WandbError } from "./errors.js";
import { downloadFile, fetchJsonFile, listFiles } from "./files.js";
import { type GovernorOptions, type GovernorStats, RateGovernor } from "./governor.js";
import { HistoryReader } from "./history.js";
import { listRuns, runCount } from "./listing.js";
import { getSweep, getSweepAlone, listProjects, type SweepReads } from "./projects-sweeps.js";
import { SWEEP_FIELDS, VIEWER } from "./queries.js";
import { registerSecret } from "./redact.js";
import type { RetryOptions, Sleep } from "./retry.js";
import { LARGE_HEAP_BYTES, Transport, type TransportStats } from "./transport.js";
import type {
  EventRow,
  HistoryRow,
  ListRunsOptions,
  RunsPage,
  ScanHistoryOptions,
  Viewer,
  WandbApi,
  WandbFile,
  WandbProject,
  WandbRun,
  WandbSweep,
} from "./types.js";

export interface WandbClientOptions extends ResolveConfigOptions {
  /** Per-attempt timeout of a GraphQL request (headers and body). Default 60 000 ms. */
  timeoutMs?: number;
  /** Per-attempt timeout of a download: to headers, and the longest pause between body chunks. Default 60 000 ms. */
  downloadTimeoutMs?: number;
  /** Requests in all per operation, including the first. Default 8. */
  maxAttempts?: number;
  /** Backoff settings (minDelayMs 500, maxDelayMs 30 000, maxServerWaitMs 120 000 by default). */
  retry?: Partial<RetryOptions>;
  /** A rate governor shared with other clients of the same server (default: a private one). */
  governor?: RateGovernor;
  /** Settings of the private governor made when `governor` is not given (start 8, max 32, no requests/s cap). */
  governorOptions?: GovernorOptions;
  /** Use only the request shapes the official SDK sends (no aliases, pages of at most 50). */
  compat?: boolean;
  /** Runs per listRuns page. Default 500 (halved on rejection, down to the SDK's 50). */
  perPage?: number;
  /** Files per listFiles page. Default 500 (halved on rejection, down to 50). */
  filesPerPage?: number;
  /** Runs per aliased getRuns request. Default 50. */
  runsPerRequest?: number;
  /** Window requests of one scanHistory in flight at once. Default 4. */
  historyConcurrency?: number;
  /** JSON file remembering per-server capabilities across processes (optional). */
  capabilityCacheFile?: string;
  /** Directory for temporary parquet downloads. Default os.tmpdir(). */
  tempDir?: string;
  /**
   * Run a full garbage collection after parsing a GraphQL answer of 8 MiB or more (see LARGE_ANSWER_BYTES and
   * LARGE_HEAP_BYTES in transport.ts): lower peak memory for a process that is mostly this client, as the commands
   * are. Default false: a host process's heap is left to V8.
   */
  collectLargeAnswers?: boolean;
  /** Test hooks. */
  sleep?: Sleep;
  random?: () => number;
}

export interface WandbClientStats extends TransportStats {
  governor: GovernorStats;
  capabilities: Capabilities;
  /** History scans that read live because their parquet exports could not be fetched or read. */
  parquetFallbacks: number;
  /** History windows the server down-sampled (then read again in the SDK's windows). */
  downsampledWindows: number;
  /** Documents that carried several runs' reads, and how many reads they carried. */
  batches: number;
  batchedReads: number;
  lastParquetError?: string;
}

const DEFAULT_PER_PAGE = 500;
const DEFAULT_RUNS_PER_REQUEST = 50;
const DEFAULT_HISTORY_CONCURRENCY = 4;

export class WandbClient implements WandbApi {
  readonly baseUrl: string;
  /** Configuration warnings for the user (e.g. a netrc readable by others). */
  readonly warnings: readonly string[];
  private readonly transport: Transport;
  private readonly core: ClientCore;
  private readonly parquet = new ParquetReader();
  private readonly history: HistoryReader;
  private readonly sweepReads: SweepReads;

  /** Resolves the API key and base URL (see config.ts) and makes a client. */
  static async create(options: WandbClientOptions = {}): Promise<WandbClient> {
    return new WandbClient(resolveConfig(options), options);
  }

  constructor(config: WandbConfig, options: WandbClientOptions = {}) {
    registerSecret(config.apiKey); // also when the config was built by hand rather than by resolveConfig
    this.baseUrl = config.baseUrl;
    this.warnings = [...config.warnings];
    this.transport = new Transport({
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      timeoutMs: options.timeoutMs,
      downloadTimeoutMs: options.downloadTimeoutMs,
      retry: { ...options.retry, ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}) },
      governor: options.governor ?? new RateGovernor(options.governorOptions),
      sleep: options.sleep,
      random: options.random,
      collectAboveHeapBytes: options.collectLargeAnswers ? LARGE_HEAP_BYTES : undefined,
    });
    const compat = options.compat ?? false;
    const cap = (n: number | undefined, d: number) => Math.max(1, Math.floor(n ?? d));
    const cacheFile = options.capabilityCacheFile;
    const caps = capabilitiesFor(this.baseUrl, cacheFile);
    const core = new ClientCore(
      this.baseUrl,
      this.transport,
      caps,
      compat,
      cap(options.perPage, DEFAULT_PER_PAGE),
      cap(options.filesPerPage, DEFAULT_PER_PAGE),
      cap(options.runsPerRequest, DEFAULT_RUNS_PER_REQUEST),
      cacheFile,
    );
    this.core = core;
    this.history = new HistoryReader(this.transport, this.parquet, options.tempDir ?? tmpdir(), {
      concurrency: cap(options.historyConcurrency, DEFAULT_HISTORY_CONCURRENCY),
      caps,
      learn: (update) => core.learn(update),
      compat,
    });
    this.sweepReads = new AliasBatcher(
      this.transport,
      caps,
      {
        operation: "GetSweeps",
        field: "sweep",
        declare: (i) => `$n${i}: String!`,
        select: (i) => `r${i}: sweep(sweepName: $n${i}) { ${SWEEP_FIELDS} }`,
        variables: (i, a) => ({ [`n${i}`]: a.name }),
        single: (a) => getSweepAlone(core, a.entity, a.project, a.name),
      },
      { compat, learn: (update) => core.learn(update), capability: "sweepBatches" },
    );
  }

  /** Requests (every attempt and redirect hop) by operation, bytes received, retries, governor and capabilities. */
  stats(): WandbClientStats {
    return {
      ...this.transport.stats(),
      governor: this.transport.governor.stats(),
      capabilities: { ...this.core.caps },
      parquetFallbacks: this.history.parquetFallbacks,
      downsampledWindows: this.history.downsampledWindows,
      ...this.history.batchStats(),
      ...(this.history.lastParquetError !== undefined ? { lastParquetError: this.history.lastParquetError } : {}),
    };
  }

  async close(): Promise<void> {
    this.parquet.close();
    await this.transport.close();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Runs (listing.ts, batches.ts)

  async viewer(): Promise<Viewer> {
    const data = await this.transport.graphql("Viewer", VIEWER, {});
    const v = data.viewer;
    if (!isJsonObject(v)) {
      throw new WandbError({
        code: "AUTH",
        operation: "Viewer",
        reason: "the server did not recognise the API key (viewer is null)",
        hint: `Check the API key for ${new URL(this.baseUrl).host} (WANDB_API_KEY, \`wandb login\`, or --api-key)`,
      });
    }
    return {
      id: typeof v.id === "string" ? v.id : String(v.id ?? ""),
      entity: typeof v.entity === "string" ? v.entity : null,
      username: typeof v.username === "string" ? v.username : null,
    };
  }

  runCount(entity: string, project: string, filters?: JsonObject): Promise<number> {
    return runCount(this.core, entity, project, filters);
  }

  listRuns(entity: string, project: string, options: ListRunsOptions = {}): AsyncIterable<RunsPage> {
    return listRuns(this.core, entity, project, options);
  }

  getRun(entity: string, project: string, name: string): Promise<WandbRun | null> {
    return getRun(this.core, entity, project, name);
  }

  getRuns(entity: string, project: string, names: string[]): Promise<Map<string, WandbRun | null>> {
    return getRuns(this.core, entity, project, names);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Projects and sweeps (projects-sweeps.ts)

  listProjects(entity: string): AsyncIterable<WandbProject[]> {
    return listProjects(this.core, entity);
  }

  getSweep(entity: string, project: string, sweepName: string): Promise<WandbSweep | null> {
    return getSweep(this.sweepReads, entity, project, sweepName);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // History (history.ts)

  async lastHistoryStep(entity: string, project: string, name: string): Promise<number> {
    return this.history.lastHistoryStep(entity, project, name);
  }

  scanHistory(
    entity: string,
    project: string,
    name: string,
    options: ScanHistoryOptions = {},
  ): AsyncIterable<HistoryRow[]> {
    return this.history.scan(entity, project, name, options);
  }

  sampledHistory(
    entity: string,
    project: string,
    name: string,
    options: { keys?: string[]; samples: number },
  ): Promise<HistoryRow[]> {
    return this.history.sampledHistory(entity, project, name, options);
  }

  systemEvents(entity: string, project: string, name: string, samples = 500): Promise<EventRow[]> {
    return this.history.systemEvents(entity, project, name, samples);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Files (files.ts)

  listFiles(
    entity: string,
    project: string,
    name: string,
    options: { pattern?: string; names?: string[]; perPage?: number } = {},
  ): AsyncIterable<WandbFile[]> {
    return listFiles(this.core, entity, project, name, options);
  }

  downloadFile(file: WandbFile, dest: string, options: { resume?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    return downloadFile(this.core, file, dest, options);
  }

  /** A small JSON run file, or null when the run has no such file (see files.ts for the cheapest way it is read). */
  fetchJsonFile(
    entity: string,
    project: string,
    name: string,
    fileName: string,
    listed?: WandbFile | null,
  ): Promise<JsonObject | null> {
    return fetchJsonFile(this.core, entity, project, name, fileName, listed);
  }
}

export { createdAtRanges } from "./listing.js";

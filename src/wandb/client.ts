/**
 * WandbClient: the WandbApi over W&B's GraphQL API, run-file downloads and parquet history exports.
 *
 * Request shapes the official SDK never sends (aliased multi-run documents, pages larger than 50, named files inside
 * a Runs page) are tried first and given up per server on a validation/complexity rejection (see capabilities.ts);
 * `compat: true` uses only the SDK's shapes from the start.
 */
import { tmpdir } from "node:os";
import { isJsonObject, type JsonObject, type JsonValue, parseWandbJson, stringifyWandb } from "../model/json.js";
import { ParquetReader } from "../model/parquet-reader.js";
import { wandbTimeMs } from "../model/records.js";
import { AliasBatcher } from "./batcher.js";
import {
  type Capabilities,
  capabilitiesFor,
  isShapeRejection,
  SDK_PAGE_SIZE,
  saveCapabilities,
} from "./capabilities.js";
import { type ResolveConfigOptions, resolveConfig, type WandbConfig } from "./config.js";
import { decodeFile, decodeProject, decodeRun, decodeSweep, requireProject, requireRun } from "./decode.js";
import { downloadToBuffer, downloadToFile } from "./download.js";
import { WandbError } from "./errors.js";
import { type GovernorOptions, type GovernorStats, RateGovernor } from "./governor.js";
import { HistoryReader } from "./history.js";
import {
  PROJECTS,
  RUN,
  RUN_COUNT,
  RUN_FILES,
  RUNS,
  RUNS_WITH_FILES,
  runsByName,
  SWEEP,
  SWEEP_FIELDS,
  SWEEP_LEGACY,
  VIEWER,
} from "./queries.js";
import { registerSecret } from "./redact.js";
import type { RetryOptions, Sleep } from "./retry.js";
import { Transport, type TransportStats } from "./transport.js";
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
  private readonly caps: Capabilities;
  private readonly compat: boolean;
  private readonly perPage: number;
  private readonly filesPerPage: number;
  private readonly runsPerRequest: number;
  private readonly historyConcurrency: number;
  private readonly cacheFile: string | undefined;
  private readonly parquet = new ParquetReader();
  private readonly history: HistoryReader;
  private readonly sweepReads: AliasBatcher<{ entity: string; project: string; name: string }>;

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
    });
    this.compat = options.compat ?? false;
    const cap = (n: number | undefined, d: number) => Math.max(1, Math.floor(n ?? d));
    this.perPage = cap(options.perPage, DEFAULT_PER_PAGE);
    this.filesPerPage = cap(options.filesPerPage, DEFAULT_PER_PAGE);
    this.runsPerRequest = cap(options.runsPerRequest, DEFAULT_RUNS_PER_REQUEST);
    this.historyConcurrency = cap(options.historyConcurrency, DEFAULT_HISTORY_CONCURRENCY);
    this.cacheFile = options.capabilityCacheFile;
    this.caps = capabilitiesFor(this.baseUrl, this.cacheFile);
    this.history = new HistoryReader(this.transport, this.parquet, options.tempDir ?? tmpdir(), {
      concurrency: this.historyConcurrency,
      caps: this.caps,
      learn: (update) => this.learn(update),
      compat: this.compat,
    });
    this.sweepReads = new AliasBatcher(
      this.transport,
      this.caps,
      {
        operation: "GetSweeps",
        field: "sweep",
        declare: (i) => `$n${i}: String!`,
        select: (i) => `r${i}: sweep(sweepName: $n${i}) { ${SWEEP_FIELDS} }`,
        variables: (i, a) => ({ [`n${i}`]: a.name }),
        single: (a) => this.getSweepAlone(a.entity, a.project, a.name),
      },
      { compat: this.compat, learn: (update) => this.learn(update), capability: "sweepBatches" },
    );
  }

  /** Requests (every attempt and redirect hop) by operation, bytes received, retries, governor and capabilities. */
  stats(): WandbClientStats {
    return {
      ...this.transport.stats(),
      governor: this.transport.governor.stats(),
      capabilities: { ...this.caps },
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
  // Runs

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

  async runCount(entity: string, project: string, filters?: JsonObject): Promise<number> {
    const where = `${entity}/${project}`;
    const data = await this.transport.graphql(
      "RunCount",
      RUN_COUNT,
      { entity, project, filters: stringifyWandb(filters ?? {}) },
      { run: where },
    );
    const p = requireProject(data, "RunCount", where);
    const n = p.runCount;
    return typeof n === "number" ? n : typeof n === "bigint" ? Number(n) : 0;
  }

  async *listRuns(entity: string, project: string, options: ListRunsOptions = {}): AsyncIterable<RunsPage> {
    const order = options.order ?? "+created_at";
    const parallel = Math.max(1, Math.floor(options.parallel ?? 1));
    const listing: { size?: number } = {};
    const ranged = parallel > 1 && order === "+created_at" && !this.compat && this.caps.rangeListing !== false;
    const page = await this.fetchRunsPage(entity, project, options, null, listing);
    yield page;
    if (!page.hasNextPage || page.next === null) return;
    const remaining = page.runCount - page.runs.length;
    const perPage = Math.max(1, page.runs.length);
    let cursor: string | null = page.next;
    // More than one page to go: the newest run's creation time (one small request) bounds the ranges.
    if (ranged && remaining > perPage) {
      const ranges = createdAtRanges(
        page.runs[page.runs.length - 1]?.createdAt ?? "",
        await this.newestCreatedAt(entity, project, options),
        Math.min(parallel, Math.ceil(remaining / perPage)),
      );
      if (ranges) {
        const done = yield* this.listRanges(entity, project, options, ranges, page.runCount);
        if (done) return;
        // The server did not keep to the ranges: the rest in the usual way (callers drop runs seen twice).
      }
    }
    for (;;) {
      const next = await this.fetchRunsPage(entity, project, options, cursor, listing);
      yield next;
      if (!next.hasNextPage || next.next === null || next.next === cursor) return;
      cursor = next.next;
    }
  }

  /**
   * Lists disjoint createdAt ranges at once, each paged serially, yielding pages as they come (a few buffered at
   * most). Returns false, having stopped, when a page holds a run outside its range (the server ignored the filter).
   */
  private async *listRanges(
    entity: string,
    project: string,
    options: ListRunsOptions,
    ranges: CreatedAtRange[],
    runCount: number,
  ): AsyncGenerator<RunsPage, boolean> {
    const stop = new AbortController();
    const signal = options.signal ? anySignal([options.signal, stop.signal]) : stop.signal;
    const queue: RunsPage[] = [];
    let active = ranges.length;
    let failure: unknown;
    let outside = false;
    let wake: (() => void) | undefined;
    let room: (() => void)[] = [];
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const maxQueued = 2;
    const worker = async (range: CreatedAtRange) => {
      const listing: { size?: number } = {};
      const opts: ListRunsOptions = { ...options, filters: range.filters(options.filters), signal };
      let cursor: string | null = null;
      try {
        for (;;) {
          while (queue.length >= maxQueued && !stop.signal.aborted) await new Promise<void>((r) => room.push(r));
          if (stop.signal.aborted) return;
          const page = await this.fetchRunsPage(entity, project, opts, cursor, listing);
          if (!page.runs.every((r) => range.holds(r.createdAt))) {
            outside = true;
            this.learn({ rangeListing: false });
            stop.abort();
            return;
          }
          queue.push({ runs: page.runs, runCount, hasNextPage: true });
          notify();
          if (!page.hasNextPage || page.next === null || page.next === cursor) return;
          cursor = page.next;
        }
      } catch (e) {
        if (!stop.signal.aborted) {
          failure = e;
          stop.abort();
        }
      } finally {
        active--;
        notify();
      }
    };
    const workers = ranges.map(worker);
    try {
      for (;;) {
        if (failure !== undefined) throw failure;
        if (outside) return false;
        const page = queue.shift();
        if (page) {
          const waiting = room;
          room = [];
          for (const r of waiting) r();
          yield page;
          continue;
        }
        if (active === 0) break;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
      if (failure !== undefined) throw failure;
      if (outside) return false;
      if (this.caps.rangeListing !== true) this.learn({ rangeListing: true });
      return true;
    } finally {
      stop.abort();
      for (const r of room) r();
      await Promise.allSettled(workers);
    }
  }

  /** The creation time of the newest run matching the filters (one run, newest first), or null. */
  private async newestCreatedAt(entity: string, project: string, options: ListRunsOptions): Promise<string | null> {
    const data = await this.transport.graphql(
      "Runs",
      RUNS,
      {
        entity,
        project,
        cursor: null,
        perPage: 1,
        order: "-created_at",
        filters: stringifyWandb(options.filters ?? {}),
      },
      { run: `${entity}/${project}`, signal: options.signal },
    );
    const p = requireProject(data, "Runs", `${entity}/${project}`);
    const conn = isJsonObject(p.runs) ? p.runs : {};
    const edge = Array.isArray(conn.edges) ? conn.edges.find(isJsonObject) : undefined;
    const node = edge && isJsonObject(edge.node) ? edge.node : null;
    return node && typeof node.createdAt === "string" ? node.createdAt : null;
  }

  /** One Runs page after `cursor` (null: the first), with the files shape when asked and accepted. */
  private async fetchRunsPage(
    entity: string,
    project: string,
    options: ListRunsOptions,
    cursor: string | null,
    listing: { size?: number },
  ): Promise<RunsPage & { next: string | null }> {
    const where = `${entity}/${project}`;
    const filters = stringifyWandb(options.filters ?? {});
    const order = options.order ?? "+created_at";
    const requested = Math.max(1, Math.floor(options.perPage ?? this.perPage));
    const fileNames = options.files && options.files.length > 0 ? options.files : undefined;
    let withFiles = false;
    const data = await this.withPageSize("runs", requested, listing, async (perPage) => {
      const vars = { entity, project, cursor, perPage, order, filters };
      const meta = { run: where, signal: options.signal };
      withFiles = fileNames !== undefined && !this.compat && this.caps.filesInRuns !== false;
      if (!withFiles) return this.transport.graphql("Runs", RUNS, vars, meta);
      try {
        const d = await this.transport.graphql("Runs", RUNS_WITH_FILES, { ...vars, fileNames }, meta);
        if (this.caps.filesInRuns !== true) this.learn({ filesInRuns: true });
        return d;
      } catch (e) {
        if (!isShapeRejection(e)) throw e;
        withFiles = false;
        // The same page in the SDK's shape: if it is accepted, files inside runs were the problem (remembered);
        // if it is rejected too, the page size was, and withPageSize asks again with smaller pages.
        const d = await this.transport.graphql("Runs", RUNS, vars, meta);
        this.learn({ filesInRuns: false });
        return d;
      }
    });
    const p = requireProject(data, "Runs", where);
    const conn = isJsonObject(p.runs) ? p.runs : {};
    const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
    const runs = edges
      .map((e) => e.node)
      .filter(isJsonObject)
      .map((n) => {
        if (!withFiles) return decodeRun(n, entity, project);
        // The files are not part of the run's record (their URLs are signed and short-lived).
        const { files, ...node } = n;
        const run = decodeRun(node, entity, project);
        const fconn = isJsonObject(files) ? files : null;
        if (fconn && Array.isArray(fconn.edges)) {
          run.files = fconn.edges
            .filter(isJsonObject)
            .map((e) => e.node)
            .filter(isJsonObject)
            .map(decodeFile);
        }
        return run;
      });
    const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
    const hasNextPage = pageInfo.hasNextPage === true && edges.length > 0;
    const runCount = typeof p.runCount === "number" ? p.runCount : runs.length;
    // The legacy paginator's rule: continue after the last edge's cursor.
    const last = edges[edges.length - 1];
    const nextCursor = last && typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
    return { runs, runCount, hasNextPage, next: hasNextPage && typeof nextCursor === "string" ? nextCursor : null };
  }

  async getRun(entity: string, project: string, name: string): Promise<WandbRun | null> {
    const where = `${entity}/${project}/${name}`;
    const data = await this.transport.graphql("Run", RUN, { entity, project, name }, { run: where });
    const p = requireProject(data, "Run", where);
    return isJsonObject(p.run) ? decodeRun(p.run, entity, project) : null;
  }

  async getRuns(entity: string, project: string, names: string[]): Promise<Map<string, WandbRun | null>> {
    const unique = [...new Set(names)];
    const out = new Map<string, WandbRun | null>();
    if (unique.length === 0) return out;
    if (!this.compat && this.caps.aliases !== false && unique.length > 1) {
      let size = Math.min(this.caps.maxAliases ?? this.runsPerRequest, this.runsPerRequest, unique.length);
      // The first batch finds out whether (and how large) aliased documents are accepted.
      for (;;) {
        try {
          await this.fetchRunBatch(entity, project, unique.slice(0, size), out);
          break;
        } catch (e) {
          if (!isShapeRejection(e)) throw e;
          // "field queried more than once" / alias errors reject aliasing itself; anything else may be about size.
          const aliasing = /alias|more than once|duplicate/i.test((e as WandbError).reason);
          const smaller = aliasing ? 0 : Math.floor(size / 2);
          if (smaller < 2) {
            size = 0;
            this.learn({ aliases: false });
            break;
          }
          size = smaller;
          this.learn({ maxAliases: size });
        }
      }
      if (size > 0) {
        if (this.caps.aliases !== true) this.learn({ aliases: true });
        const batches: string[][] = [];
        for (let i = size; i < unique.length; i += size) batches.push(unique.slice(i, i + size));
        await Promise.all(batches.map((b) => this.fetchRunBatch(entity, project, b, out)));
        return new Map(names.map((n) => [n, out.get(n) ?? null]));
      }
    }
    const runs = await Promise.all(unique.map((n) => this.getRun(entity, project, n)));
    for (let i = 0; i < unique.length; i++) out.set(unique[i]!, runs[i] ?? null);
    return new Map(names.map((n) => [n, out.get(n) ?? null]));
  }

  private async fetchRunBatch(
    entity: string,
    project: string,
    names: string[],
    out: Map<string, WandbRun | null>,
  ): Promise<void> {
    const where = `${entity}/${project}`;
    if (names.length === 1) {
      out.set(names[0]!, await this.getRun(entity, project, names[0]!));
      return;
    }
    const vars: Record<string, unknown> = { entity, project };
    names.forEach((n, i) => {
      vars[`n${i}`] = n;
    });
    const data = await this.transport.graphql("RunsByName", runsByName(names.length), vars, { run: where });
    const p = requireProject(data, "RunsByName", where);
    names.forEach((n, i) => {
      const node = p[`r${i}`];
      out.set(n, isJsonObject(node) ? decodeRun(node, entity, project) : null);
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Projects and sweeps

  async *listProjects(entity: string): AsyncIterable<WandbProject[]> {
    let cursor: string | null = null;
    for (;;) {
      const data = await this.transport.graphql(
        "Projects",
        PROJECTS,
        { entity, cursor, perPage: SDK_PAGE_SIZE },
        { run: entity },
      );
      // An entity W&B does not know (or that this key cannot see) lists nothing.
      const conn = isJsonObject(data.models) ? data.models : {};
      const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
      const projects = edges
        .map((e) => e.node)
        .filter(isJsonObject)
        .map((n) => decodeProject(n, entity))
        .filter((p): p is WandbProject => p !== null);
      if (projects.length > 0) yield projects;
      const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
      if (pageInfo.hasNextPage !== true || edges.length === 0) return;
      // The SDK's Projects paginator: continue after the last edge's cursor.
      const last = edges[edges.length - 1]!;
      const next = typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
      if (typeof next !== "string" || next === cursor) return;
      cursor = next;
    }
  }

  async getSweep(entity: string, project: string, sweepName: string): Promise<WandbSweep | null> {
    const where = `${entity}/${project}`;
    // Several sweeps asked for at about the same time (the first runs of a listing) share one aliased document.
    const data = await this.sweepReads.load(entity, project, where, { entity, project, name: sweepName }, 1);
    const p = requireProject(data, "GetSweep", where);
    return isJsonObject(p.sweep) ? decodeSweep(p.sweep, sweepName) : null;
  }

  /** GetSweep as the SDK sends it (the legacy Sweep document on servers that reject GetSweep's newer fields). */
  private async getSweepAlone(entity: string, project: string, name: string): Promise<JsonObject> {
    const vars = { entity, project, name };
    const where = `${entity}/${project}`;
    try {
      return await this.transport.graphql("GetSweep", SWEEP, vars, { run: where });
    } catch (e) {
      if (!isShapeRejection(e)) throw e;
      return await this.transport.graphql("Sweep", SWEEP_LEGACY, vars, { run: where });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // History

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
  // Files

  async *listFiles(
    entity: string,
    project: string,
    name: string,
    options: { pattern?: string; names?: string[]; perPage?: number } = {},
  ): AsyncIterable<WandbFile[]> {
    const where = `${entity}/${project}/${name}`;
    if (options.pattern !== undefined && options.names && options.names.length > 0) {
      throw new WandbError({
        code: "BAD_REQUEST",
        operation: "RunFiles",
        run: where,
        reason: "pass either names or pattern, not both",
      });
    }
    const requested = Math.max(1, Math.floor(options.perPage ?? this.filesPerPage));
    let cursor: string | null = null;
    const listing: { size?: number } = {};
    for (;;) {
      const data = await this.withPageSize("files", requested, listing, (fileLimit) =>
        this.transport.graphql(
          "RunFiles",
          RUN_FILES,
          {
            entity,
            project,
            name,
            fileCursor: cursor,
            fileLimit,
            fileNames: options.names ?? [],
            pattern: options.pattern ?? null,
          },
          { run: where },
        ),
      );
      const run = requireRun(data, "RunFiles", where);
      const conn = isJsonObject(run.files) ? run.files : {};
      const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
      const files = edges
        .map((e) => e.node)
        .filter(isJsonObject)
        .map(decodeFile);
      const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
      if (files.length > 0) yield files;
      if (pageInfo.hasNextPage !== true || edges.length === 0) return;
      const last = edges[edges.length - 1]!;
      const next = typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
      if (typeof next !== "string" || next === cursor) return;
      cursor = next;
    }
  }

  async downloadFile(
    file: WandbFile,
    dest: string,
    options: { resume?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    const url = file.url ?? file.directUrl;
    if (!url) {
      throw new WandbError({
        code: "PROTOCOL",
        operation: "downloadFile",
        reason: `file ${file.name} has no download URL`,
      });
    }
    await downloadToFile(this.transport, url, dest, {
      operation: "downloadFile",
      run: file.name,
      size: Number.isFinite(file.sizeBytes) && file.sizeBytes >= 0 ? file.sizeBytes : undefined,
      md5: file.md5,
      resume: options.resume,
      signal: options.signal,
    });
  }

  /**
   * A small JSON run file, or null when the run has no such file. Unless `compat` is set, the file is first fetched
   * straight from its W&B URL ({base}/files/<entity>/<project>/<run>/<path>, the `url` RunFiles would return): one
   * request instead of two. A server where that URL scheme does not work is remembered and asked through RunFiles.
   * With `listed` (the file as the Runs page selected it, see ListRunsOptions.files) there is no API request at all:
   * its signed `directUrl` is read, and null means the run has no such file.
   */
  async fetchJsonFile(
    entity: string,
    project: string,
    name: string,
    fileName: string,
    listed?: WandbFile | null,
  ): Promise<JsonObject | null> {
    const label = `${entity}/${project}/${name}/${fileName}`;
    // What the run listing said: no such file, or its signed storage URL (no credentials sent there, no API request).
    if (listed === null) return null;
    if (listed?.directUrl) {
      try {
        return parseJsonFile(
          await downloadToBuffer(this.transport, listed.directUrl, { operation: "downloadFile", run: label }),
          label,
        );
      } catch (e) {
        // An expired signature or a moved file: ask W&B below. Failures that retries did not cure are the caller's.
        if (!(e instanceof WandbError) || e.transient || !["AUTH", "NOT_FOUND", "BAD_REQUEST"].includes(e.code)) {
          throw e;
        }
      }
    }
    if (!this.compat && this.caps.directFiles !== false) {
      const url = `${this.baseUrl}/files/${[entity, project, name].map(encodeURIComponent).join("/")}/${fileName
        .split("/")
        .map(encodeURIComponent)
        .join("/")}`;
      let direct: JsonObject | undefined;
      try {
        direct = parseJsonFile(
          await downloadToBuffer(this.transport, url, { operation: "downloadFile", run: label }),
          label,
        );
      } catch (e) {
        // Not there, or not this URL scheme (an HTML page, a 404 of another layout): ask RunFiles below.
        if (!(e instanceof WandbError) || !["NOT_FOUND", "PROTOCOL", "BAD_REQUEST"].includes(e.code)) throw e;
        if (e.code === "NOT_FOUND" && this.caps.directFiles === true) return null;
      }
      if (direct) {
        if (this.caps.directFiles !== true) this.learn({ directFiles: true });
        return direct;
      }
      const listed = await this.fetchListedJsonFile(entity, project, name, fileName);
      if (listed !== null) this.learn({ directFiles: false });
      return listed;
    }
    return this.fetchListedJsonFile(entity, project, name, fileName);
  }

  /** fetchJsonFile the SDK's way: RunFiles(fileNames: [name]), then GET its url. */
  private async fetchListedJsonFile(
    entity: string,
    project: string,
    name: string,
    fileName: string,
  ): Promise<JsonObject | null> {
    const label = `${entity}/${project}/${name}/${fileName}`;
    let file: WandbFile | undefined;
    for await (const page of this.listFiles(entity, project, name, { names: [fileName], perPage: SDK_PAGE_SIZE })) {
      file = page.find((f) => f.name === fileName);
      if (file) break;
    }
    const url = file?.url ?? file?.directUrl;
    if (!file || !url) return null;
    try {
      return parseJsonFile(
        await downloadToBuffer(this.transport, url, { operation: "downloadFile", run: label }),
        label,
      );
    } catch (e) {
      if (e instanceof WandbError && e.code === "NOT_FOUND") return null;
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Helpers

  private learn(update: Partial<Capabilities>): void {
    Object.assign(this.caps, update);
    saveCapabilities(this.baseUrl, this.cacheFile);
  }

  /**
   * Sends a paged request with the largest page size the server accepts: `requested` (capped by what was learned),
   * halved on a shape rejection down to the SDK's 50 (the accepted size is remembered), and halved for this request
   * when a big page still fails with 5xx/timeouts after all retries.
   */
  private async withPageSize<T>(
    kind: "runs" | "files",
    requested: number,
    listing: { size?: number },
    send: (size: number) => Promise<T>,
  ): Promise<T> {
    const key = kind === "runs" ? "maxRunsPerPage" : "maxFilesPerPage";
    let size = Math.min(listing.size ?? requested, this.caps[key] ?? requested);
    if (this.compat) size = Math.min(size, SDK_PAGE_SIZE);
    for (;;) {
      try {
        const result = await send(size);
        listing.size = size;
        return result;
      } catch (e) {
        if (size <= SDK_PAGE_SIZE) throw e;
        if (isShapeRejection(e)) {
          // Remembered for the server: never try above this again.
          size = Math.max(SDK_PAGE_SIZE, Math.floor(size / 2));
          this.learn({ [key]: size });
        } else if (e instanceof WandbError && e.transient && ["SERVER", "TIMEOUT", "PROTOCOL"].includes(e.code)) {
          // A big page that still fails with 5xx/timeouts after all retries: smaller pages for the rest of this
          // listing only (the failures may have had nothing to do with the size).
          size = Math.max(SDK_PAGE_SIZE, Math.floor(size / 2));
        } else throw e;
      }
    }
  }
}

function parseJsonFile(buf: Buffer, label: string): JsonObject {
  let parsed: JsonValue;
  try {
    parsed = parseWandbJson(buf.toString("utf8"));
  } catch (e) {
    throw new WandbError({
      code: "PROTOCOL",
      operation: "fetchJsonFile",
      run: label,
      reason: `not valid JSON (${(e as Error).message})`,
      cause: e,
    });
  }
  if (!isJsonObject(parsed)) {
    throw new WandbError({ code: "PROTOCOL", operation: "fetchJsonFile", run: label, reason: "not a JSON object" });
  }
  return parsed;
}

/** A half-open createdAt range [from, to) (no upper end for the last), as a W&B filter and as a check. */
interface CreatedAtRange {
  filters(user: JsonObject | undefined): JsonObject;
  holds(createdAt: string): boolean;
}

/**
 * `count` disjoint createdAt ranges from `from` (the last run of the first page: runs created at that same second may
 * be listed twice, never missed) to past `newest`, split evenly in time at whole seconds, written as W&B compares
 * createdAt (zone-less UTC text, as --created-after does). Null when the times cannot be read or there is nothing to
 * split.
 */
export function createdAtRanges(from: string, newest: string | null, count: number): CreatedAtRange[] | null {
  if (newest === null || count < 2) return null;
  const a = wandbTimeMs(from);
  const b = wandbTimeMs(newest);
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) return null;
  const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 19);
  const cuts: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = Math.floor((a + ((b - a) * i) / count) / 1000) * 1000;
    if (cuts.length === 0 || t > cuts[cuts.length - 1]!) cuts.push(t);
  }
  if (cuts.length < 2) return null;
  return cuts.map((lo, i) => {
    const hi = cuts[i + 1];
    const bounds: JsonObject[] = [{ createdAt: { $gte: fmt(lo) } }];
    if (hi !== undefined) bounds.push({ createdAt: { $lt: fmt(hi) } });
    return {
      filters: (user) => ({ $and: [...(user && Object.keys(user).length > 0 ? [user] : []), ...bounds] }),
      holds: (createdAt) => {
        const t = wandbTimeMs(createdAt);
        return Number.isFinite(t) && t >= lo && (hi === undefined || t < hi);
      },
    };
  });
}

/** An AbortSignal aborted when any of `signals` is. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}

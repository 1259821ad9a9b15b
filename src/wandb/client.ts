/**
 * WandbClient: the WandbApi over W&B's GraphQL API, run-file downloads and parquet history exports.
 *
 * Request shapes the official SDK never sends (aliased multi-run documents, pages larger than 50) are tried first and
 * given up per server on a validation/complexity rejection (see capabilities.ts); `compat: true` uses only the SDK's
 * shapes from the start.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isJsonObject, type JsonObject, type JsonValue, parseWandbJson, stringifyWandb } from "../model/json.js";
import { lastStepOf, normaliseStep } from "../model/records.js";
import {
  type Capabilities,
  capabilitiesFor,
  isShapeRejection,
  SDK_PAGE_SIZE,
  saveCapabilities,
} from "./capabilities.js";
import { type ResolveConfigOptions, resolveConfig, type WandbConfig } from "./config.js";
import { decodeFile, decodeRow, decodeRun, keyTypes, restoreNonFinite, stepOf } from "./decode.js";
import { downloadToBuffer, downloadToFile } from "./download.js";
import { NotFoundError, WandbError } from "./errors.js";
import type { GovernorStats, RateGovernor } from "./governor.js";
import { ParquetReader } from "./parquet.js";
import {
  HISTORY_PAGE,
  RUN,
  RUN_COUNT,
  RUN_EVENTS,
  RUN_FILES,
  RUN_FULL_HISTORY,
  RUN_HISTORY_KEYS,
  RUN_PARQUET_HISTORY,
  RUN_SAMPLED_HISTORY,
  RUNS,
  runsByName,
  SAMPLED_HISTORY_PAGE,
  VIEWER,
} from "./queries.js";
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
  WandbRun,
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
  lastParquetError?: string;
}

const DEFAULT_PER_PAGE = 500;
const DEFAULT_RUNS_PER_REQUEST = 50;
const DEFAULT_HISTORY_PAGE = 1000;
const DEFAULT_HISTORY_CONCURRENCY = 4;
const PARQUET_DOWNLOAD_CONCURRENCY = 4;

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
  private readonly tempDir: string;
  private readonly parquet = new ParquetReader();
  private parquetFallbacks = 0;
  private lastParquetError: string | undefined;

  /** Resolves the API key and base URL (see config.ts) and makes a client. */
  static async create(options: WandbClientOptions = {}): Promise<WandbClient> {
    return new WandbClient(resolveConfig(options), options);
  }

  constructor(config: WandbConfig, options: WandbClientOptions = {}) {
    this.baseUrl = config.baseUrl;
    this.warnings = [...config.warnings];
    this.transport = new Transport({
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      timeoutMs: options.timeoutMs,
      downloadTimeoutMs: options.downloadTimeoutMs,
      retry: { ...options.retry, ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}) },
      governor: options.governor,
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
    this.tempDir = options.tempDir ?? tmpdir();
  }

  /** Requests (every attempt and redirect hop) by operation, bytes received, retries, governor and capabilities. */
  stats(): WandbClientStats {
    return {
      ...this.transport.stats(),
      governor: this.transport.governor.stats(),
      capabilities: { ...this.caps },
      parquetFallbacks: this.parquetFallbacks,
      ...(this.lastParquetError !== undefined ? { lastParquetError: this.lastParquetError } : {}),
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
    const p = this.projectOf(data, "RunCount", where);
    const n = p.runCount;
    return typeof n === "number" ? n : typeof n === "bigint" ? Number(n) : 0;
  }

  async *listRuns(entity: string, project: string, options: ListRunsOptions = {}): AsyncIterable<RunsPage> {
    const where = `${entity}/${project}`;
    const filters = stringifyWandb(options.filters ?? {});
    const order = options.order ?? "+created_at";
    const requested = Math.max(1, Math.floor(options.perPage ?? this.perPage));
    let cursor: string | null = null;
    const listing: { size?: number } = {};
    for (;;) {
      const data = await this.withPageSize("runs", requested, listing, (perPage) =>
        this.transport.graphql(
          "Runs",
          RUNS,
          { entity, project, cursor, perPage, order, filters },
          { run: where, signal: options.signal },
        ),
      );
      const p = this.projectOf(data, "Runs", where);
      const conn = isJsonObject(p.runs) ? p.runs : {};
      const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
      const runs = edges
        .map((e) => e.node)
        .filter(isJsonObject)
        .map((n) => decodeRun(n, entity, project));
      const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
      const hasNextPage = pageInfo.hasNextPage === true && edges.length > 0;
      const runCount = typeof p.runCount === "number" ? p.runCount : runs.length;
      yield { runs, runCount, hasNextPage };
      if (!hasNextPage) return;
      // The legacy paginator's rule: continue after the last edge's cursor.
      const last = edges[edges.length - 1]!;
      const next = typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
      if (typeof next !== "string" || next === cursor) return;
      cursor = next;
    }
  }

  async getRun(entity: string, project: string, name: string): Promise<WandbRun | null> {
    const where = `${entity}/${project}/${name}`;
    const data = await this.transport.graphql("Run", RUN, { entity, project, name }, { run: where });
    const p = this.projectOf(data, "Run", where);
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
          if (size <= 2) {
            size = 0;
            this.learn({ aliases: false });
            break;
          }
          size = Math.floor(size / 2);
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
    const p = this.projectOf(data, "RunsByName", where);
    names.forEach((n, i) => {
      const node = p[`r${i}`];
      out.set(n, isJsonObject(node) ? decodeRun(node, entity, project) : null);
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // History

  async lastHistoryStep(entity: string, project: string, name: string): Promise<number> {
    return lastStepOf(await this.historyKeys(entity, project, name));
  }

  private async historyKeys(entity: string, project: string, name: string, signal?: AbortSignal): Promise<JsonValue> {
    const where = `${entity}/${project}/${name}`;
    const data = await this.transport.graphql(
      "RunHistoryKeys",
      RUN_HISTORY_KEYS,
      { entity, project, name },
      { run: where, signal },
    );
    const run = this.runOf(data, "RunHistoryKeys", where);
    let hk: JsonValue = run.historyKeys ?? null;
    if (typeof hk === "string") {
      try {
        hk = parseWandbJson(hk);
      } catch {
        hk = null;
      }
    }
    return hk;
  }

  async *scanHistory(
    entity: string,
    project: string,
    name: string,
    options: ScanHistoryOptions = {},
  ): AsyncIterable<HistoryRow[]> {
    const where = `${entity}/${project}/${name}`;
    const signal = options.signal;
    const minStep = Math.max(0, Math.floor(options.minStep ?? 0));
    const pageSize = Math.max(1, Math.floor(options.pageSize ?? DEFAULT_HISTORY_PAGE));
    let types = new Map<string, Set<string>>();
    let lastStep: number;
    if (options.lastStep !== undefined) lastStep = options.lastStep;
    else {
      const hk = await this.historyKeys(entity, project, name, signal);
      lastStep = lastStepOf(hk);
      types = keyTypes(hk);
    }
    const stop = Math.min(options.maxStep ?? Number.POSITIVE_INFINITY, lastStep + 1);
    if (!(stop > minStep)) return;

    if (options.keys && options.keys.length > 0) {
      yield* this.sampledWindows(entity, project, name, options.keys, minStep, stop, pageSize, types, signal);
      return;
    }

    let liveFrom = minStep;
    if (options.useParquet !== false) {
      const data = await this.transport.graphql(
        "RunParquetHistory",
        RUN_PARQUET_HISTORY,
        { entity, project, runName: name, liveKeys: ["_step"] },
        { run: where, signal },
      );
      const ph = this.runOf(data, "RunParquetHistory", where).parquetHistory;
      const urls = isJsonObject(ph) && Array.isArray(ph.parquetUrls) ? ph.parquetUrls.filter(isString) : [];
      const liveSteps = (isJsonObject(ph) && Array.isArray(ph.liveData) ? ph.liveData : [])
        .map((d) => (isJsonObject(d) ? normaliseStep(d._step) : null))
        .filter((s): s is number => s !== null);
      const boundary = liveSteps.length > 0 ? Math.min(...liveSteps) : Number.POSITIVE_INFINITY;
      if (urls.length > 0 && boundary > minStep) {
        const parquetStop = Math.min(stop, boundary);
        let opened: { batches: AsyncGenerator<HistoryRow[]>; cleanup: () => Promise<void> } | undefined;
        try {
          opened = await this.openParquet(urls, minStep, parquetStop, types, where, signal);
        } catch (e) {
          if (signal?.aborted) throw e;
          // Exports that cannot be fetched or read (expired URLs, an unexpected schema): read everything live.
          this.parquetFallbacks++;
          this.lastParquetError = e instanceof Error ? e.message : String(e);
        }
        if (opened) {
          let maxSeen = minStep - 1;
          try {
            for await (const batch of opened.batches) {
              const s = stepOf(batch[batch.length - 1]!);
              if (s !== null && s > maxSeen) maxSeen = s;
              yield batch;
            }
          } finally {
            await opened.cleanup();
          }
          // Live rows start at the boundary; without one, anything past the exports' last row is read live too.
          liveFrom = Number.isFinite(boundary) ? Math.max(minStep, boundary) : Math.max(minStep, maxSeen + 1);
        }
      }
    }
    yield* this.liveWindows(entity, project, name, liveFrom, stop, pageSize, signal);
  }

  /**
   * Downloads the exports (to a temp dir; no credentials to other hosts) and opens them for rows
   * minStep <= _step < maxStep. Fails before yielding anything when a file cannot be fetched or read.
   */
  private async openParquet(
    urls: string[],
    minStep: number,
    maxStep: number,
    types: Map<string, Set<string>>,
    where: string,
    signal?: AbortSignal,
  ): Promise<{ batches: AsyncGenerator<HistoryRow[]>; cleanup: () => Promise<void> }> {
    const dir = await mkdtemp(join(this.tempDir, "dr-wandb-parquet-"));
    const cleanup = () => rm(dir, { recursive: true, force: true });
    try {
      const paths = urls.map((_u, i) => join(dir, `${i}.parquet`));
      let next = 0;
      const worker = async () => {
        while (next < urls.length) {
          const i = next++;
          await downloadToFile(this.transport, urls[i]!, paths[i]!, { operation: "parquetFile", run: where, signal });
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARQUET_DOWNLOAD_CONCURRENCY, urls.length) }, worker));
      const stringKeys = new Set<string>();
      for (const [k, t] of types) if (t.has("string")) stringKeys.add(k);
      const batches = await this.parquet.open(paths, { minStep, maxStep, stringKeys });
      return { batches, cleanup };
    } catch (e) {
      await cleanup();
      throw e;
    }
  }

  /** HistoryPage windows [off, off+pageSize) from `from` to `stop`, a few in flight, yielded in order. */
  private async *liveWindows(
    entity: string,
    project: string,
    name: string,
    from: number,
    stop: number,
    pageSize: number,
    signal?: AbortSignal,
  ): AsyncGenerator<HistoryRow[]> {
    const where = `${entity}/${project}/${name}`;
    const windows = stepWindows(from, stop, pageSize);
    const fetchWindow = async ([lo, hi]: [number, number], s: AbortSignal): Promise<HistoryRow[]> => {
      const data = await this.transport.graphql(
        "HistoryPage",
        HISTORY_PAGE,
        { entity, project, run: name, minStep: lo, maxStep: hi, pageSize },
        { run: where, signal: s },
      );
      const lines = this.runOf(data, "HistoryPage", where).history;
      const rows = (Array.isArray(lines) ? lines : []).map((l) => decodeRow(l, "HistoryPage"));
      return inWindow(rows, lo, hi);
    };
    let prev = Number.NEGATIVE_INFINITY;
    for await (const rows of ordered(windows, fetchWindow, this.historyConcurrency, signal)) {
      const fresh = rows.filter((r) => {
        const s = stepOf(r)!;
        if (s <= prev) return false;
        prev = s;
        return true;
      });
      if (fresh.length > 0) yield fresh; // an empty window does not end the scan
    }
  }

  /** SampledHistoryPage windows (spec maxStep is inclusive: end - 1), as the SDK does for keyed scans. */
  private async *sampledWindows(
    entity: string,
    project: string,
    name: string,
    keys: string[],
    from: number,
    stop: number,
    pageSize: number,
    types: Map<string, Set<string>>,
    signal?: AbortSignal,
  ): AsyncGenerator<HistoryRow[]> {
    const where = `${entity}/${project}/${name}`;
    const specKeys = keys.includes("_step") ? keys : ["_step", ...keys];
    const windows = stepWindows(from, stop, pageSize);
    const fetchWindow = async ([lo, hi]: [number, number], s: AbortSignal): Promise<HistoryRow[]> => {
      const spec = JSON.stringify({ keys: specKeys, minStep: lo, maxStep: hi - 1, samples: hi - lo });
      const data = await this.transport.graphql(
        "SampledHistoryPage",
        SAMPLED_HISTORY_PAGE,
        { entity, project, run: name, spec },
        { run: where, signal: s },
      );
      const rows = firstSpecRows(this.runOf(data, "SampledHistoryPage", where).sampledHistory).map((r) =>
        restoreNonFinite(decodeRow(r, "SampledHistoryPage"), types),
      );
      return inWindow(rows, lo, hi);
    };
    for await (const rows of ordered(windows, fetchWindow, this.historyConcurrency, signal)) {
      if (rows.length > 0) yield rows;
    }
  }

  async sampledHistory(
    entity: string,
    project: string,
    name: string,
    options: { keys?: string[]; samples: number },
  ): Promise<HistoryRow[]> {
    const where = `${entity}/${project}/${name}`;
    if (options.keys && options.keys.length > 0) {
      const keys = options.keys.includes("_step") ? options.keys : ["_step", ...options.keys];
      const specs = [JSON.stringify({ keys, samples: options.samples })];
      const data = await this.transport.graphql(
        "RunSampledHistory",
        RUN_SAMPLED_HISTORY,
        { entity, project, name, specs },
        { run: where },
      );
      const rows = firstSpecRows(this.runOf(data, "RunSampledHistory", where).sampledHistory);
      return rows.map((r) => decodeRow(r, "RunSampledHistory"));
    }
    const data = await this.transport.graphql(
      "RunFullHistory",
      RUN_FULL_HISTORY,
      { entity, project, name, samples: options.samples },
      { run: where },
    );
    const lines = this.runOf(data, "RunFullHistory", where).history;
    return (Array.isArray(lines) ? lines : []).map((l) => decodeRow(l, "RunFullHistory"));
  }

  async systemEvents(entity: string, project: string, name: string, samples = 500): Promise<EventRow[]> {
    const where = `${entity}/${project}/${name}`;
    const data = await this.transport.graphql(
      "RunFullHistory",
      RUN_EVENTS,
      { entity, project, name, samples },
      {
        run: where,
      },
    );
    const lines = this.runOf(data, "RunFullHistory", where).events;
    return (Array.isArray(lines) ? lines : []).map((l) => decodeRow(l, "RunFullHistory"));
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
      const run = this.runOf(data, "RunFiles", where);
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

  async fetchJsonFile(entity: string, project: string, name: string, fileName: string): Promise<JsonObject | null> {
    const where = `${entity}/${project}/${name}`;
    let file: WandbFile | undefined;
    for await (const page of this.listFiles(entity, project, name, { names: [fileName], perPage: SDK_PAGE_SIZE })) {
      file = page.find((f) => f.name === fileName);
      if (file) break;
    }
    const url = file?.url ?? file?.directUrl;
    if (!file || !url) return null;
    let buf: Buffer;
    try {
      buf = await downloadToBuffer(this.transport, url, { operation: "downloadFile", run: `${where}/${fileName}` });
    } catch (e) {
      if (e instanceof WandbError && e.code === "NOT_FOUND") return null;
      throw e;
    }
    let parsed: JsonValue;
    try {
      parsed = parseWandbJson(buf.toString("utf8"));
    } catch (e) {
      throw new WandbError({
        code: "PROTOCOL",
        operation: "fetchJsonFile",
        run: `${where}/${fileName}`,
        reason: `not valid JSON (${(e as Error).message})`,
        cause: e,
      });
    }
    if (!isJsonObject(parsed)) {
      throw new WandbError({
        code: "PROTOCOL",
        operation: "fetchJsonFile",
        run: `${where}/${fileName}`,
        reason: "not a JSON object",
      });
    }
    return parsed;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Helpers

  private projectOf(data: JsonObject, operation: string, where: string): JsonObject {
    const p = data.project;
    if (!isJsonObject(p)) {
      throw new NotFoundError({
        operation,
        run: where,
        reason: `project ${where.split("/").slice(0, 2).join("/")} not found (or not visible with this API key)`,
      });
    }
    return p;
  }

  private runOf(data: JsonObject, operation: string, where: string): JsonObject {
    const run = this.projectOf(data, operation, where).run;
    if (!isJsonObject(run)) throw new NotFoundError({ operation, run: where, reason: `run ${where} not found` });
    return run;
  }

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

function isString(v: JsonValue): v is string {
  return typeof v === "string";
}

/** Rows with lo <= step < hi, in step order, one per step. */
function inWindow(rows: HistoryRow[], lo: number, hi: number): HistoryRow[] {
  const kept = rows.filter((r) => {
    const s = stepOf(r);
    return s !== null && s >= lo && s < hi;
  });
  kept.sort((a, b) => stepOf(a)! - stepOf(b)!);
  return kept.filter((r, i) => i === 0 || stepOf(r) !== stepOf(kept[i - 1]!));
}

/** The rows of the first spec of a sampledHistory answer ([[row, ...]]). */
function firstSpecRows(v: JsonValue | undefined): JsonValue[] {
  if (!Array.isArray(v)) return [];
  const first = v[0];
  return Array.isArray(first) ? first : [];
}

/** The windows [off, min(off + size, stop)) from `from` to `stop`, generated lazily. */
function* stepWindows(from: number, stop: number, size: number): Generator<[number, number]> {
  for (let off = from; off < stop; off += size) yield [off, Math.min(off + size, stop)];
}

/**
 * Runs `fetch` over `items` with up to `depth` in flight and yields the results in order. Stopping early (or an
 * error) aborts what is still in flight.
 */
async function* ordered<I, T>(
  items: Iterable<I>,
  fetch: (item: I, signal: AbortSignal) => Promise<T>,
  depth: number,
  signal?: AbortSignal,
): AsyncGenerator<T> {
  const ac = new AbortController();
  const onCallerAbort = () => ac.abort(signal?.reason);
  if (signal?.aborted) ac.abort(signal.reason);
  else signal?.addEventListener("abort", onCallerAbort, { once: true });
  const combined = ac.signal;
  const source = items[Symbol.iterator]();
  const inflight: Promise<T>[] = [];
  const launch = (): boolean => {
    const next = source.next();
    if (next.done) return false;
    const p = fetch(next.value, combined);
    p.catch(() => undefined); // observed when awaited; avoids unhandled rejections for abandoned ones
    inflight.push(p);
    return true;
  };
  try {
    while (inflight.length < depth && launch()) {
      // fill the pipeline
    }
    while (inflight.length > 0) {
      const result = await inflight.shift()!;
      launch();
      yield result;
    }
  } finally {
    signal?.removeEventListener("abort", onCallerAbort);
    ac.abort(new Error("history scan stopped"));
  }
}

/**
 * Reading a run's history: RunHistoryKeys for the last step, parquet exports (RunParquetHistory; files fetched
 * without W&B credentials and read with DuckDB) for the exported part, HistoryPage windows for the live tail,
 * SampledHistoryPage windows for keyed scans (history-sampled.ts); rows merged in step order, one per step, in
 * batches. The exports' download: history-parquet.ts; how a step range is cut into windows and their answers put in
 * order: history-windows.ts.
 */
import { isJsonObject, type JsonValue, parseWandbJson } from "../model/json.js";
import type { ParquetReader } from "../model/parquet-reader.js";
import { lastStepOf, normaliseStep } from "../model/records.js";
import { AliasBatcher, type BatchKind } from "./batcher.js";
import { type Capabilities, isShapeRejection } from "./capabilities.js";
import { keyTypes, requireRun, stepOf } from "./decode.js";
import { WandbError } from "./errors.js";
import { type OpenedExports, openParquetExports } from "./history-parquet.js";
import { sampledHistory, sampledWindows, systemEvents } from "./history-sampled.js";
import {
  ordered,
  planWindows,
  type Segment,
  sortedUniqueIn,
  stepWindows,
  type Window,
  WindowRows,
} from "./history-windows.js";
import { LazyLines } from "./lazy-lines.js";
import { HISTORY_PAGE, RUN_HISTORY_KEYS, RUN_PARQUET_HISTORY } from "./queries.js";
import type { Transport } from "./transport.js";
import type { EventRow, HistoryRow, ScanHistoryOptions } from "./types.js";

const DEFAULT_HISTORY_PAGE = 1000;
/**
 * Cells (rows x keys) asked for in one history window when the window's steps are known (see `liveWindows`): about
 * 12-20 MB of JSON. One such window of a scan is in flight at a time (other runs' scans overlap with it), and its rows
 * are decoded a chunk at a time (DECODE_CHUNK_CELLS). The answer's bytes are held until its last row is decoded: S2's
 * `sync` (22 live runs of 660,000 cells) peaked at 285-293 MB with 500,000 against 300-316 MB with 1,000,000, in the
 * same time (75-83 s against 77-87 s; by hand, interleaved, 2026-12-08); 250,000 gained nothing more.
 * DR_WANDB_WINDOW_CELLS overrides it.
 */
const WINDOW_CELLS = positiveEnv("DR_WANDB_WINDOW_CELLS") ?? 500_000;
/**
 * Cells of the windows combined in one batched document (a window larger than this goes alone). Each answer is held
 * as bytes and text while it is parsed, several at once when many runs are read: S4's sync (50 runs of 150,000 cells
 * at 5 requests/s) peaked at 295-320 MB with 500,000 against 305-396 MB with 1,000,000 (three runs each, 2026-12-07),
 * at the same speed; smaller windows instead would cost requests (a 600,000-cell run two instead of one).
 * DR_WANDB_BATCH_CELLS overrides it.
 */
const BATCH_CELLS = positiveEnv("DR_WANDB_BATCH_CELLS") ?? 500_000;
const MAX_WINDOW_ROWS = 50_000;
/**
 * Cells of a window's rows decoded at once (WindowRows): the scan hands them out before decoding more, so that a
 * 500,000-cell window is not 25 MB of row objects at once (its consumer packs each chunk; src/sync/spool.ts).
 */
const DECODE_CHUNK_CELLS = 32_768;

interface WindowArgs {
  entity: string;
  project: string;
  run: string;
  minStep: number;
  maxStep: number;
  samples: number;
}

interface ParquetArgs {
  entity: string;
  project: string;
  runName: string;
}

export interface HistoryReaderOptions {
  /** Window requests of one scan in flight at once. */
  concurrency: number;
  /** What is known about the server (live object), and how to record what is learned. */
  caps?: Capabilities;
  learn?: (update: Partial<Capabilities>) => void;
  /** Only the SDK's request shapes: 1,000-step windows, one run per document. */
  compat?: boolean;
}

export class HistoryReader {
  /** Scans that read live because their parquet exports could not be fetched or read. */
  parquetFallbacks = 0;
  lastParquetError: string | undefined;
  /** Windows whose answer had fewer rows than the run's known steps (the server down-sampled them). */
  downsampledWindows = 0;
  private readonly concurrency: number;
  private readonly caps: Capabilities;
  private readonly learn: (update: Partial<Capabilities>) => void;
  private readonly compat: boolean;
  private readonly windows: AliasBatcher<WindowArgs>;
  private readonly exports: AliasBatcher<ParquetArgs>;

  constructor(
    private readonly transport: Transport,
    private readonly parquet: ParquetReader,
    private readonly tempDir: string,
    options: HistoryReaderOptions,
  ) {
    this.concurrency = options.concurrency;
    this.caps = options.caps ?? {};
    this.learn = options.learn ?? ((u) => Object.assign(this.caps, u));
    this.compat = options.compat ?? false;
    const batcherOptions = { compat: this.compat, learn: this.learn };
    this.windows = new AliasBatcher(this.transport, this.caps, windowKind(transport), {
      ...batcherOptions,
      maxCost: BATCH_CELLS,
    });
    this.exports = new AliasBatcher(this.transport, this.caps, parquetKind(transport), batcherOptions);
  }

  /** Batched documents sent and the reads they carried (history windows and parquetHistory together). */
  batchStats(): { batches: number; batchedReads: number } {
    return {
      batches: this.windows.batches + this.exports.batches,
      batchedReads: this.windows.batchedReads + this.exports.batchedReads,
    };
  }

  async lastHistoryStep(entity: string, project: string, name: string): Promise<number> {
    return lastStepOf(await this.historyKeys(entity, project, name));
  }

  async historyKeys(entity: string, project: string, name: string, signal?: AbortSignal): Promise<JsonValue> {
    const where = `${entity}/${project}/${name}`;
    const data = await this.transport.graphql(
      "RunHistoryKeys",
      RUN_HISTORY_KEYS,
      { entity, project, name },
      { run: where, signal },
    );
    const run = requireRun(data, "RunHistoryKeys", where);
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

  async *scan(
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
    if (options.historyKeys !== undefined && options.historyKeys !== null) {
      types = keyTypes(options.historyKeys);
      lastStep = options.lastStep ?? lastStepOf(options.historyKeys);
    } else if (options.lastStep !== undefined) lastStep = options.lastStep;
    else {
      const hk = await this.historyKeys(entity, project, name, signal);
      lastStep = lastStepOf(hk);
      types = keyTypes(hk);
    }
    const stop = Math.min(options.maxStep ?? Number.POSITIVE_INFINITY, lastStep + 1);
    if (!(stop > minStep)) return;

    let reserved = false;
    const reserve = async (steps: number) => {
      if (reserved || !options.beforeRows || steps <= 0) return;
      reserved = true;
      await options.beforeRows(steps);
    };
    if (options.keys && options.keys.length > 0) {
      await reserve(stop - minStep);
      const keyed = { keys: options.keys, from: minStep, stop, pageSize, types, concurrency: this.concurrency };
      yield* sampledWindows(this.transport, entity, project, name, keyed, signal);
      return;
    }

    let liveFrom = minStep;
    /** Steps known to be exactly the rows from `from` on (liveData: every step not yet exported). */
    let known: { from: number; steps: number[] } | undefined;
    // A span of at most one window is one HistoryPage request: cheaper than asking for exports at all (this is the
    // common incremental case, a short tail of new steps).
    if (options.useParquet !== false && stop - minStep > pageSize) {
      const data = await this.exports.load(entity, project, where, { entity, project, runName: name }, 1, signal);
      const ph = requireRun(data, "RunParquetHistory", where).parquetHistory;
      const urls = isJsonObject(ph) && Array.isArray(ph.parquetUrls) ? ph.parquetUrls.filter(isString) : [];
      const liveSteps = (isJsonObject(ph) && Array.isArray(ph.liveData) ? ph.liveData : [])
        .map((d) => (isJsonObject(d) ? normaliseStep(d._step) : null))
        .filter((s): s is number => s !== null);
      // liveData can hold one entry per unexported step (millions for a long live run): no spread into Math.min.
      let boundary = Number.POSITIVE_INFINITY;
      for (const st of liveSteps) if (st < boundary) boundary = st;
      // Everything from the boundary on is live, and liveData lists those steps; with no exports at all, every row
      // is live and liveData lists them all.
      if (liveSteps.length > 0) {
        const from = urls.length === 0 ? minStep : Math.max(minStep, boundary);
        known = { from, steps: sortedUniqueIn(liveSteps, from, stop) };
      }
      if (urls.length > 0 && boundary > minStep) {
        const parquetStop = Math.min(stop, boundary);
        let opened: OpenedExports | undefined;
        // The exports' rows are reserved for before their download (files taken, or rows decoded from them).
        await reserve(stop - minStep);
        try {
          opened = await openParquetExports(this.transport, this.parquet, this.tempDir, {
            urls,
            minStep,
            maxStep: parquetStop,
            types,
            where,
            signal,
            take: options.takeParquet,
          });
        } catch (e) {
          if (signal?.aborted) throw e;
          // Exports that cannot be fetched or read (expired URLs, an unexpected schema): read everything live.
          this.parquetFallbacks++;
          this.lastParquetError = e instanceof Error ? e.message : String(e);
        }
        if (opened && "taken" in opened) {
          // The taker stores the exports' rows itself; live rows follow them.
          const maxSeen = Math.max(minStep - 1, opened.taken);
          liveFrom = Number.isFinite(boundary) ? Math.max(minStep, boundary) : Math.max(minStep, maxSeen + 1);
        } else if (opened) {
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
    await reserve(stop - liveFrom);
    yield* this.liveWindows(entity, project, name, liveFrom, stop, pageSize, signal, known, Math.max(1, types.size));
  }

  /**
   * HistoryPage windows from `from` to `stop`, a few in flight, yielded in order. Where the steps are not known, the
   * SDK's windows: [off, off + pageSize) with samples = pageSize, which the server answers with every row. Where they
   * are (`known`, from liveData), windows of up to WINDOW_CELLS cells, each checked against the number of steps it
   * must hold: a server that down-sampled the window (its samples cap is undocumented) is found out, remembered, and
   * the window read again in the SDK's windows. Windows of several runs may share one request (see batcher.ts).
   */
  private async *liveWindows(
    entity: string,
    project: string,
    name: string,
    from: number,
    stop: number,
    pageSize: number,
    signal: AbortSignal | undefined,
    known: { from: number; steps: number[] } | undefined,
    keysCount: number,
  ): AsyncGenerator<HistoryRow[]> {
    const where = `${entity}/${project}/${name}`;
    // A window's answer is kept as its row texts and decoded a chunk at a time as it is consumed (WindowRows).
    const request = async (lo: number, hi: number, samples: number, s: AbortSignal | undefined): Promise<Segment> => {
      const args = { entity, project, run: name, minStep: lo, maxStep: hi, samples };
      const data = await this.windows.load(entity, project, where, args, Math.min(samples, hi - lo) * keysCount, s);
      const lines = requireRun(data, "HistoryPage", where).history;
      return { lines: lines instanceof LazyLines || Array.isArray(lines) ? lines : [], lo, hi };
    };
    const sdkWindows = async (lo: number, hi: number, s: AbortSignal | undefined): Promise<Segment[]> => {
      const out: Segment[] = [];
      for (const [a, b] of stepWindows(lo, hi, pageSize)) out.push(await request(a, b, pageSize, s));
      return out;
    };
    /** A window's segments; `expected`: one large request whose distinct steps are checked once decoded. */
    const fetchWindow = async (w: Window, s: AbortSignal): Promise<{ segments: Segment[]; expected?: number }> => {
      if (w.expected === undefined) return { segments: [await request(w.lo, w.hi, pageSize, s)] };
      if (this.compat || this.caps.historyWindows === false || w.hi - w.lo <= pageSize) {
        return { segments: await sdkWindows(w.lo, w.hi, s) };
      }
      let seg: Segment | undefined;
      try {
        seg = await request(w.lo, w.hi, Math.min(w.hi - w.lo, w.expected), s);
      } catch (e) {
        // A server that refuses a large `samples` outright (a validation error, or a 500 after every retry).
        if (s.aborted || !(e instanceof WandbError) || !(isShapeRejection(e) || e.code === "SERVER")) throw e;
        this.learn({ historyWindows: false });
      }
      if (seg !== undefined && seg.lines.length >= w.expected) return { segments: [seg], expected: w.expected };
      if (seg !== undefined) {
        this.downsampledWindows++;
        this.learn({ historyWindows: false });
      }
      return { segments: await sdkWindows(w.lo, w.hi, s) };
    };
    const windows = planWindows(
      from,
      stop,
      pageSize,
      known,
      Math.max(pageSize, Math.min(MAX_WINDOW_ROWS, Math.floor(WINDOW_CELLS / keysCount))),
    );
    const rows = new WindowRows();
    const chunkRows = Math.max(64, Math.floor(DECODE_CHUNK_CELLS / keysCount));
    // Known-step windows are large: one in flight bounds what a scan holds; the SDK's small windows, `concurrency`.
    const depth = known ? 1 : this.concurrency;
    for await (const got of ordered(windows, fetchWindow, depth, signal)) {
      const below = rows.floor;
      for (const seg of got.segments) yield* rows.decode(seg, chunkRows, "HistoryPage");
      if (got.expected === undefined) continue;
      if (rows.count >= got.expected) {
        if (this.caps.historyWindows !== true && got.expected > pageSize) this.learn({ historyWindows: true });
        continue;
      }
      // As many rows as steps, but fewer distinct steps of the window: down-sampled after all. Read again in the
      // SDK's windows; the rows already given are not given twice.
      this.downsampledWindows++;
      this.learn({ historyWindows: false });
      const { lo, hi } = got.segments[0]!;
      for (const seg of await sdkWindows(lo, hi, signal)) yield* rows.decode(seg, chunkRows, "HistoryPage", { below });
    }
  }

  async sampledHistory(
    entity: string,
    project: string,
    name: string,
    options: { keys?: string[]; samples: number },
  ): Promise<HistoryRow[]> {
    return sampledHistory(this.transport, entity, project, name, options);
  }

  async systemEvents(entity: string, project: string, name: string, samples = 500): Promise<EventRow[]> {
    return systemEvents(this.transport, entity, project, name, samples);
  }
}

function positiveEnv(name: string): number | undefined {
  const n = Number(process.env[name]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function isString(v: JsonValue): v is string {
  return typeof v === "string";
}

function windowKind(transport: Transport): BatchKind<WindowArgs> {
  return {
    operation: "HistoryPages",
    lazyLines: "history",
    declare: (i) => `$n${i}: String!, $lo${i}: Int64!, $hi${i}: Int64!, $s${i}: Int!`,
    select: (i) => `r${i}: run(name: $n${i}) { history(minStep: $lo${i}, maxStep: $hi${i}, samples: $s${i}) }`,
    variables: (i, a) => ({ [`n${i}`]: a.run, [`lo${i}`]: a.minStep, [`hi${i}`]: a.maxStep, [`s${i}`]: a.samples }),
    single: (a, signal) =>
      transport.graphql(
        "HistoryPage",
        HISTORY_PAGE,
        {
          entity: a.entity,
          project: a.project,
          run: a.run,
          minStep: a.minStep,
          maxStep: a.maxStep,
          pageSize: a.samples,
        },
        { run: `${a.entity}/${a.project}/${a.run}`, signal, lazyLines: "history" },
      ),
  };
}

function parquetKind(transport: Transport): BatchKind<ParquetArgs> {
  return {
    operation: "RunsParquetHistory",
    declare: (i) => `$n${i}: String!`,
    select: (i) => `r${i}: run(name: $n${i}) { parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } }`,
    variables: (i, a) => ({ [`n${i}`]: a.runName }),
    single: (a, signal) =>
      transport.graphql(
        "RunParquetHistory",
        RUN_PARQUET_HISTORY,
        { entity: a.entity, project: a.project, runName: a.runName, liveKeys: ["_step"] },
        { run: `${a.entity}/${a.project}/${a.runName}`, signal },
      ),
  };
}

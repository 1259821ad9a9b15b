/**
 * The data half of fake-wandb: a seeded, deterministic W&B project behind the {@link FakeStore} contract.
 *
 * Notes on choices (where real W&B is unknown or the fake has to pick):
 * - Exports: runs in a terminal state (finished, crashed, failed, killed) are exported through lastStep+1 when
 *   exports are enabled; running and preempted (resumable) runs are not. In the edge profile the "float-step" run is
 *   exported only through half of its steps, so a reader must merge parquet and live rows.
 * - appendSteps keeps the run's state; a finished run then stays exported only through its old boundary.
 *   setState never changes exports; finishRun is what exports a run (through lastStep+1).
 * - addRuns creates "running" runs, created after every existing run, with `steps` rows of history.
 * - Every mutation bumps the touched run's heartbeatAt to a store clock that only moves forward (+10 s a step).
 *
 * Over 400 lines on purpose: one Store class implementing FakeStore; its reads, mutations, truth and exports share
 * the run table and the store clock (generation itself is generator.ts and its modules).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { b64, encodeHistoryLine, encodeTruthLine, encodeWandbJson } from "./encode.js";
import { compileFilter, FilterError, sortRuns } from "./filters.js";
import {
  computeSummary,
  countRows,
  type FileSpec,
  fileSpecs,
  forEachRow,
  formatTime,
  type GenContext,
  type GeneratedRun,
  generateProject,
  generateRun,
  hash3,
  type KeySpec,
  keyTypeName,
  lastRowEpoch,
  makeEvents,
  makeRow,
  mulberry32,
  parseTime,
  type RunSpec,
  segRange,
  specFirstStep,
  specLastStep,
  specRowCount,
  stepsIn,
  strHash,
  systemSnapshot,
} from "./generator.js";
import type {
  FakeFile,
  FakeRun,
  FakeStore,
  FakeUser,
  FObject,
  FValue,
  GeneratorOptions,
  MutateOp,
  ParquetExport,
} from "./model.js";
import { ParquetWriter } from "./parquet.js";

export { FilterError } from "./filters.js";

export class MutateError extends Error {
  override name = "MutateError";
}

export interface FakeStoreOptions extends GeneratorOptions {
  /** Whether terminal runs get parquet exports. Default true. */
  exportsEnabled?: boolean;
  /** Where parquet exports are written. Default: a fresh folder under os.tmpdir(). */
  cacheDir?: string;
}

interface Entry {
  run: FakeRun;
  spec: RunSpec;
  /** Bumped by every mutation of the run (invalidates caches). */
  version: number;
  files?: { version: number; specs: FileSpec[]; meta: FakeFile[] };
  keys?: { version: number; value: FObject };
  exports?: { key: string; promise: Promise<ParquetExport[]> };
}

/** The store, with a close() to release DuckDB (not part of the FakeStore contract). */
export interface DataStore extends FakeStore {
  close(): Promise<void>;
}

export function createFakeStore(options: FakeStoreOptions): DataStore {
  return new Store(options);
}

const SAMPLE_SALT = 0x5a3f;
/** Bump when generated history changes, so stale parquet files in a shared cacheDir are not reused. */
const GENERATOR_VERSION = 1;

class Store implements DataStore {
  readonly entity: string;
  readonly project: string;
  readonly projectId: number;
  readonly internalId: string;
  readonly viewer: FakeUser & { id: string; entity: string };

  private readonly options: FakeStoreOptions;
  private readonly ctx: GenContext;
  private readonly all: Entry[] = [];
  private readonly byName = new Map<string, Entry>();
  private readonly byRun = new WeakMap<FakeRun, Entry>();
  private exportsOn: boolean;
  private clock: number;
  private sampleCalls = 0;
  private queryCache = new Map<string, FakeRun[]>();
  private visibleCache: FakeRun[] | undefined;
  private writer: ParquetWriter | undefined;
  private cacheDir: string | undefined;
  private readonly token = randomBytes(3).toString("hex");

  constructor(options: FakeStoreOptions) {
    this.options = { ...options };
    this.entity = options.entity;
    this.project = options.project;
    this.projectId = 100000 + (hash3(options.seed, 0x9a, 1) % 900000);
    this.internalId = b64(`Project:v1:${options.project}:${options.entity}`);
    const { ctx, runs } = generateProject(options);
    this.ctx = ctx;
    const u = ctx.users[0]!;
    this.viewer = { ...u, id: b64(`User:${1000 + (options.seed % 1000)}`), entity: options.entity };
    this.exportsOn = options.exportsEnabled ?? true;
    this.cacheDir = options.cacheDir;
    let clock = 0;
    for (const g of runs) {
      this.add(g);
      clock = Math.max(clock, parseTime(g.run.heartbeatAt), parseTime(g.run.createdAt));
    }
    this.clock = clock;
  }

  private add(g: GeneratedRun): Entry {
    const e: Entry = { run: g.run, spec: g.spec, version: 0 };
    g.run.exportedThrough = this.exportsOn ? g.spec.exportBoundary : 0;
    this.all.push(e);
    this.byName.set(g.run.name, e);
    this.byRun.set(g.run, e);
    return e;
  }

  get exportsEnabled(): boolean {
    return this.exportsOn;
  }
  set exportsEnabled(on: boolean) {
    this.exportsOn = on;
    for (const e of this.all) e.run.exportedThrough = on ? e.spec.exportBoundary : 0;
  }

  private entry(run: FakeRun): Entry {
    const e = this.byRun.get(run) ?? this.byName.get(run.name);
    if (!e) throw new Error(`fake-wandb: unknown run ${run.name}`);
    return e;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Runs

  runs(): FakeRun[] {
    if (!this.visibleCache) this.visibleCache = this.all.filter((e) => !e.run.deleted).map((e) => e.run);
    return this.visibleCache.slice();
  }

  run(name: string): FakeRun | undefined {
    const e = this.byName.get(name);
    return e && !e.run.deleted ? e.run : undefined;
  }

  query(filters: FObject | null, order: string | null): FakeRun[] {
    const key = `${filters === null ? "null" : encodeWandbJson(filters)}\u0000${order ?? ""}`;
    const hit = this.queryCache.get(key);
    if (hit) return hit.slice();
    const pred = compileFilter(filters);
    const base = this.runs().filter(pred);
    const out = sortRuns(base, order);
    if (this.queryCache.size > 64) this.queryCache.clear();
    this.queryCache.set(key, out);
    return out.slice();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Wire encodings

  wireConfig(run: FakeRun): string {
    const wrapped: FObject = {};
    for (const k of Object.keys(run.config)) {
      wrapped[k] = { value: run.config[k]!, desc: k === "lr" ? "learning rate" : null };
    }
    wrapped._wandb = { value: run.wandbConfig };
    return encodeWandbJson(wrapped);
  }

  wireSummary(run: FakeRun): string {
    return encodeWandbJson(run.summary);
  }

  wireSystemMetrics(run: FakeRun): string {
    return encodeWandbJson(run.systemMetrics);
  }

  historyKeys(run: FakeRun): FObject {
    const e = this.entry(run);
    if (e.keys && e.keys.version === e.version) return e.keys.value;
    const spec = e.spec;
    const rows = specRowCount(spec);
    const keys: FObject = {};
    if (rows > 0) {
      const tc = (type: string, count: number): FObject => ({ typeCounts: [{ type, count }] });
      keys._step = tc("number", rows);
      keys._runtime = tc("number", rows);
      keys._timestamp = tc("number", rows);
      const sparse = spec.keys.filter((k) => k.period !== 1);
      const counts = new Map<string, number>();
      if (sparse.length > 0) {
        for (const s of stepsIn(spec, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)) {
          for (const k of sparse) if (s % k.period === k.phase) counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
        }
      }
      for (const k of spec.keys) {
        const n = k.period === 1 ? rows : (counts.get(k.name) ?? 0);
        if (n > 0) keys[k.name] = tc(keyTypeName(k.kind), n);
      }
    }
    const value: FObject = { lastStep: specLastStep(spec), keys };
    e.keys = { version: e.version, value };
    return value;
  }

  // ------------------------------------------------------------------------------------------------------------
  // History

  historyRows(run: FakeRun, minStep: number, maxStep: number): FObject[] {
    const out: FObject[] = [];
    forEachRow(this.entry(run).spec, minStep, maxStep, (r) => out.push(r));
    return out;
  }

  encodeHistoryLine(row: FObject): string {
    return encodeHistoryLine(row);
  }

  sampleHistory(run: FakeRun, samples: number, minStep?: number, maxStep?: number): FObject[] {
    const spec = this.entry(run).spec;
    const lo = minStep ?? Number.NEGATIVE_INFINITY;
    const hi = maxStep ?? Number.POSITIVE_INFINITY;
    const n = countRows(spec, lo, hi);
    if (samples >= n) return this.historyRows(run, lo, hi);
    if (samples <= 0) return [];
    // Random Bernoulli down-sampling (as W&B: approximately `samples` rows, differing between calls).
    const rng = mulberry32(hash3(this.options.seed ^ spec.seed, SAMPLE_SALT, ++this.sampleCalls));
    const p = samples / n;
    const out: FObject[] = [];
    for (const seg of spec.segments) {
      const [a, b] = segRange(seg, lo, hi);
      for (let j = a; j < b; j++) if (rng() < p) out.push(makeRow(spec, seg, j));
    }
    return out;
  }

  sampledHistory(
    run: FakeRun,
    spec: { keys: string[]; samples?: number; minStep?: number; maxStep?: number },
  ): FObject[] {
    const rs = this.entry(run).spec;
    const lo = spec.minStep ?? Number.NEGATIVE_INFINITY;
    const hi = spec.maxStep === undefined || spec.maxStep === null ? Number.POSITIVE_INFINITY : spec.maxStep + 1;
    const wanted = [...new Set(["_step", ...spec.keys])];
    const fixed = new Set(["_step", "_runtime", "_timestamp"]);
    const keySpecs: KeySpec[] = [];
    for (const k of wanted) {
      if (fixed.has(k)) continue;
      const ks = rs.keys.find((x) => x.name === k);
      if (!ks) return []; // a key the run never logged: no row has every key
      keySpecs.push(ks);
    }
    // Matching rows by step predicate, without building rows.
    const matches: Array<[number, number]> = [];
    rs.segments.forEach((seg, si) => {
      const [a, b] = segRange(seg, lo, hi);
      for (let j = a; j < b; j++) {
        const step = seg.startStep + j * seg.stride;
        let ok = true;
        for (const k of keySpecs) {
          if (k.period !== 1 && step % k.period !== k.phase) {
            ok = false;
            break;
          }
        }
        if (ok) matches.push([si, j]);
      }
    });
    let chosen = matches;
    const samples = spec.samples;
    if (samples !== undefined && samples !== null && samples >= 0 && matches.length > samples) {
      chosen = [];
      if (samples === 1) chosen.push(matches[matches.length - 1]!);
      else if (samples > 1) {
        const m = matches.length;
        for (let i = 0; i < samples; i++) chosen.push(matches[Math.round((i * (m - 1)) / (samples - 1))]!);
      }
    }
    return chosen.map(([si, j]) => {
      const row = makeRow(rs, rs.segments[si]!, j);
      const out: FObject = {};
      for (const k of wanted) out[k] = row[k]!;
      return out;
    });
  }

  events(run: FakeRun): FObject[] {
    return makeEvents(this.entry(run).spec, this.options.events ?? 20);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Parquet exports and live data

  private boundary(e: Entry): number {
    return this.exportsOn ? e.run.exportedThrough : 0;
  }

  async parquetExports(run: FakeRun): Promise<ParquetExport[]> {
    const e = this.entry(run);
    const through = this.boundary(e);
    if (through <= 0) return [];
    const key = `${e.version}:${through}`;
    if (e.exports && e.exports.key === key) return e.exports.promise;
    if (!this.writer) {
      this.cacheDir ??= mkdtempSync(join(tmpdir(), "fake-wandb-parquet-"));
      mkdirSync(this.cacheDir, { recursive: true }); // a --cache-dir that does not exist yet
      this.writer = new ParquetWriter(this.cacheDir);
    }
    // Version 0 (unmutated) exports are a pure function of the generation options, so their names say so and an
    // existing file in a shared cacheDir is reused; a mutated run's history depends on this store's clock, so its
    // files carry a per-store token.
    const o = this.options;
    const optsHash = hash3(hash3(o.seed, o.steps, o.metrics), strHash(o.profile), GENERATOR_VERSION).toString(36);
    const tag = e.version === 0 ? "v0" : `${this.token}v${e.version}`;
    const base = `${this.entity}_${this.project}_${e.run.name}_${optsHash}_${tag}_${through}`.replace(
      /[^A-Za-z0-9_.-]/g,
      "_",
    );
    const old = e.exports?.promise;
    const promise = this.writer.write(e.spec, through, base, e.version === 0);
    e.exports = { key, promise };
    if (old) {
      // Superseded exports of a mutated run are removed once the new ones exist (unmutated ones may be shared).
      const writer = this.writer;
      void Promise.all([old, promise])
        .then(([prev, next]) => {
          const keep = new Set(next.map((x) => x.path));
          return writer.discard(prev.filter((x) => !keep.has(x.path) && !x.id.includes("_v0_")));
        })
        .catch(() => undefined);
    }
    promise.catch(() => {
      if (e.exports?.promise === promise) e.exports = undefined;
    });
    return promise;
  }

  liveData(run: FakeRun, liveKeys: string[]): FObject[] {
    const e = this.entry(run);
    const from = this.boundary(e);
    const out: FObject[] = [];
    if (liveKeys.length === 1 && liveKeys[0] === "_step") {
      for (const s of stepsIn(e.spec, from, Number.POSITIVE_INFINITY)) out.push({ _step: s });
      return out;
    }
    forEachRow(e.spec, from, Number.POSITIVE_INFINITY, (row) => {
      const o: FObject = {};
      for (const k of liveKeys) if (row[k] !== undefined) o[k] = row[k]!;
      out.push(o);
    });
    return out;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Files

  private fileState(e: Entry): { specs: FileSpec[]; meta: FakeFile[] } {
    if (e.files && e.files.version === e.version) return e.files;
    const specs = fileSpecs(e.spec, e.run, this.options);
    const updatedAt = e.run.heartbeatAt;
    const meta = specs.map((f) => {
      const c = f.content();
      return {
        name: f.name,
        sizeBytes: c.length,
        md5: createHash("md5").update(c).digest("base64"),
        mimetype: f.mimetype,
        updatedAt,
      };
    });
    e.files = { version: e.version, specs, meta };
    return e.files;
  }

  files(run: FakeRun): FakeFile[] {
    return this.fileState(this.entry(run)).meta.map((m) => ({ ...m }));
  }

  fileContent(run: FakeRun, name: string): Buffer | undefined {
    const f = this.fileState(this.entry(run)).specs.find((x) => x.name === name);
    return f?.content();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Truth

  truthRun(run: FakeRun): FObject {
    return {
      name: run.name,
      storageId: run.storageId,
      displayName: run.displayName,
      state: run.state,
      tags: [...run.tags],
      group: run.group,
      jobType: run.jobType,
      sweepName: run.sweepName,
      commit: run.commit,
      createdAt: run.createdAt,
      heartbeatAt: run.heartbeatAt,
      description: run.description,
      notes: run.notes,
      user: { name: run.user.name, username: run.user.username },
      config: run.config,
      summary: run.summary,
      systemMetrics: run.systemMetrics,
      lastStep: run.lastStep,
      historyLineCount: run.historyLineCount,
      files: this.files(run).map((f) => ({ name: f.name, size: f.sizeBytes, md5: f.md5 })),
    };
  }

  truthLine(row: FObject): string {
    return encodeTruthLine(row);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Mutations

  private live(name: string): Entry {
    const e = this.byName.get(name);
    if (!e || e.run.deleted) throw new MutateError(`unknown run ${JSON.stringify(name)}`);
    return e;
  }

  private touch(e: Entry, atLeast = 0): void {
    this.clock = Math.max(this.clock + 10, Math.ceil(atLeast));
    e.run.heartbeatAt = formatTime(this.clock);
    e.version++;
  }

  private changed(): void {
    this.queryCache.clear();
    this.visibleCache = undefined;
  }

  mutate(op: MutateOp): void {
    switch (op.op) {
      case "appendSteps": {
        const e = this.live(op.run);
        const k = Math.floor(op.steps);
        if (!(k > 0)) throw new MutateError(`appendSteps needs steps > 0, got ${op.steps}`);
        const spec = e.spec;
        const start = specLastStep(spec) + 1;
        const prev = spec.segments[spec.segments.length - 1];
        const dt = prev?.dt && prev.stride === 1 ? prev.dt : 1;
        spec.segments.push({ startStep: start, stride: 1, count: k, t0: this.clock + 1 - spec.createdEpoch, dt });
        e.run.firstStep = specFirstStep(spec);
        e.run.lastStep = specLastStep(spec);
        e.run.historyLineCount = specRowCount(spec);
        e.run.summary = computeSummary(spec, e.run.summary, start);
        e.run.systemMetrics = systemSnapshot(spec, this.options.events ?? 20);
        this.touch(e, lastRowEpoch(spec) + 1);
        break;
      }
      case "setState": {
        const e = this.live(op.run);
        e.run.state = op.state;
        this.touch(e);
        break;
      }
      case "setTags": {
        const e = this.live(op.run);
        e.run.tags = [...op.tags];
        this.touch(e);
        break;
      }
      case "setSummary": {
        const e = this.live(op.run);
        e.run.summary = { ...e.run.summary, ...op.summary };
        this.touch(e);
        break;
      }
      case "setConfig": {
        const e = this.live(op.run);
        e.run.config = { ...e.run.config, ...op.config };
        this.touch(e);
        break;
      }
      case "addRuns": {
        const count = Math.floor(op.count);
        if (!(count >= 0)) throw new MutateError(`addRuns needs count >= 0, got ${op.count}`);
        for (let i = 0; i < count; i++) {
          let created = this.clock + 60;
          for (const x of this.all) created = Math.max(created, parseTime(x.run.createdAt) + 1);
          const scenario = this.options.profile === "edge" ? "generic" : "default";
          const g = generateRun(this.ctx, this.all.length, created, scenario, "running");
          g.spec.exportBoundary = 0;
          const e = this.add(g);
          this.clock = Math.max(this.clock, created, Math.ceil(lastRowEpoch(g.spec) + 1));
          e.run.heartbeatAt = formatTime(this.clock);
        }
        break;
      }
      case "deleteRun": {
        const e = this.live(op.run);
        e.run.deleted = true;
        this.touch(e);
        break;
      }
      case "finishRun": {
        const e = this.live(op.run);
        e.run.state = "finished";
        e.spec.exportBoundary = specLastStep(e.spec) + 1;
        e.run.exportedThrough = this.exportsOn ? e.spec.exportBoundary : 0;
        e.run.summary = computeSummary(e.spec, e.run.summary, null);
        this.touch(e);
        break;
      }
      default: {
        const never: never = op;
        throw new MutateError(`unknown mutation ${JSON.stringify((never as { op?: string }).op)}`);
      }
    }
    this.changed();
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.writer = undefined;
  }
}

/** Parses a W&B filter JSON string (the `filters` GraphQL variable) with FilterError on bad JSON. */
export function parseFilters(text: string | null | undefined): FObject | null {
  if (text === null || text === undefined || text === "") return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FilterError(`filters are not valid JSON: ${(e as Error).message}`);
  }
  if (v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new FilterError("filters must be a JSON object");
  return v as FObject;
}

export type { FValue };

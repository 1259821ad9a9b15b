/**
 * Seeded, deterministic generator of a fake W&B project.
 *
 * - Run metadata comes from a mulberry32 stream seeded per run (same seed => byte-identical data).
 * - History is never materialised: a row is a pure function of (run seed, step, segment) computed with integer
 *   hashing, so 200 runs x 20,000 steps x 30 metrics costs only the per-run key lists.
 * - A run's steps are a list of segments {startStep, stride, count}: dense runs have one segment, runs starting at
 *   1000 or with gaps/strides have others, appendSteps adds one.
 *
 * Edge profile: one run per scenario, in this order (its config.scenario names it), then "generic" runs:
 *   kitchen-sink  finished, >1000 rows (two parquet files), every hard key (sparse, unicode, dotted, quoted, fixed
 *                 column names, _custom, NaN/±Infinity, 2^53+1.., beyond-int64, string, bool, image, histogram),
 *                 hostile file names, a 3 MB file, unicode tags/group, sweep, notes with newlines, summary-only key
 *   late-start    finished, steps start at 1000          sparse-steps  finished, gaps and strides 3 and 7
 *   running / crashed / failed / killed / preempted       wide          finished, 1,100 distinct keys
 *   no-history    finished, firstStep = lastStep = -1     sweep-notes   finished, sweep, unicode user, notes
 *   float-step    finished, `_step` written as `3.0` on every 3rd row, exported only through half its steps
 */
import { createHash } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";
import { b64, encodeWandbJson, FLOAT_STEP_ROWS } from "./encode.js";
import type { FakeRun, FakeUser, FObject, FValue, GeneratorOptions } from "./model.js";

// ---------------------------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: a tiny seeded PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer hash of up to three 32-bit inputs (murmur3-style finaliser); returns an unsigned 32-bit integer. */
export function hash3(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ b, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ c, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x165667b1);
  h ^= h >>> 16;
  return h >>> 0;
}

const INV32 = 1 / 4294967296;
function unit(h: number): number {
  return h * INV32;
}

/** 32-bit FNV-1a of a string (for salts derived from names). */
export function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
function randomId(rng: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rng() * 36)];
  return s;
}
function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)] as T;
}
function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/** 2025-01-02T03:04:05 UTC, the creation time of the first run. */
export const BASE_EPOCH = Date.UTC(2025, 0, 2, 3, 4, 5) / 1000;

/** "2025-01-02T03:04:05" (no zone, as W&B sends it) from Unix seconds. */
export function formatTime(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().slice(0, 19);
}
/** Unix seconds from a W&B time ("2025-01-02T03:04:05", zone-less = UTC; a zone or fraction is honoured). */
export function parseTime(s: string): number {
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(s);
  const ms = Date.parse(hasZone ? s : `${s}Z`);
  return ms / 1000;
}

// ---------------------------------------------------------------------------------------------------------------
// History keys and values

export type KeyKind =
  | "float"
  | "int"
  | "bigint" // beyond 2^53, within int64
  | "huge" // beyond int64
  | "special" // floats with NaN / Infinity / -Infinity
  | "string"
  | "bool"
  | "image"
  | "histogram";

export interface KeySpec {
  name: string;
  kind: KeyKind;
  /** The key is present at steps with step % period === phase. */
  period: number;
  phase: number;
  /** Salt for the value hash. */
  id: number;
  /** Shape parameters (meaning depends on kind). */
  a: number;
  b: number;
  c: number;
  d: number;
}

function key(name: string, kind: KeyKind, period = 1, phase = 0): KeySpec {
  const id = strHash(name);
  const r = mulberry32(id);
  return {
    name,
    kind,
    period,
    phase,
    id,
    a: 0.5 + 2 * r(),
    b: 0.0005 + 0.01 * r(),
    c: r() * 0.2,
    d: 0.01 + 0.05 * r(),
  };
}

/** The history-key type name W&B reports in historyKeys.typeCounts. */
export function keyTypeName(kind: KeyKind): string {
  switch (kind) {
    case "string":
      return "string";
    case "bool":
      return "boolean";
    case "image":
      return "image-file";
    case "histogram":
      return "histogram";
    default:
      return "number";
  }
}

const DEFAULT_KEY_NAMES = [
  "loss",
  "acc",
  "lr",
  "epoch",
  "val/loss",
  "val/acc",
  "train/grad_norm",
  "train/tokens",
  "perplexity",
  "global_step",
  "train/loss",
  "train/acc",
  "val/f1",
  "val/precision",
  "val/recall",
  "throughput/samples_per_sec",
  "gpu_mem_gb",
  "batch_idx",
];
const DEFAULT_INT_KEYS = new Set(["epoch", "train/tokens", "global_step", "batch_idx"]);

const defaultKeyCache = new Map<number, KeySpec[]>();
/** The shared key list of default-profile runs with `n` metrics (runs share it: memory stays flat). */
export function defaultKeys(n: number): KeySpec[] {
  let ks = defaultKeyCache.get(n);
  if (ks) return ks;
  ks = [];
  for (let i = 0; i < n; i++) {
    const name = i < DEFAULT_KEY_NAMES.length ? DEFAULT_KEY_NAMES[i]! : `metric_${String(i).padStart(3, "0")}`;
    const isInt = DEFAULT_INT_KEYS.has(name) || (i >= DEFAULT_KEY_NAMES.length && i % 7 === 3);
    ks.push(key(name, isInt ? "int" : "float"));
  }
  defaultKeyCache.set(n, ks);
  return ks;
}

/** Every hard key of the edge profile. */
export const EDGE_KEYS: readonly KeySpec[] = [
  key("loss", "float"),
  key("acc", "float"),
  key("epoch", "int"),
  key("train.loss", "float"),
  key("a.b.c", "float", 2, 0),
  key("train/lr", "float"),
  key("精度", "float"),
  key("émoji 🚀", "float", 3, 1),
  key('val "acc"', "float", 5, 0),
  key("it's", "int", 5, 2),
  key("key with spaces", "float"),
  key("step", "int"),
  key("timestamp", "float"),
  key("run_id", "string"),
  key("runtime", "float", 4, 0),
  key("_custom", "float"),
  key("sparse/every_7", "float", 7, 3),
  key("weird", "special"),
  key("big_counter", "bigint"),
  key("huge_int", "huge", 10, 5),
  key("phase", "string"),
  key("is_best", "bool", 3, 0),
  key("examples", "image", 10, 0),
  key("gradients/w", "histogram", 5, 1),
];
const EDGE_BASIC_NAMES = new Set(["loss", "acc", "epoch", "a.b.c", "sparse/every_7", "weird", "examples"]);
const EDGE_BASIC: KeySpec[] = EDGE_KEYS.filter((k) => EDGE_BASIC_NAMES.has(k.name));

/** 1,100 distinct keys: 100 dense, the rest sparse (present every 10th step). */
function wideKeys(): KeySpec[] {
  const ks: KeySpec[] = [];
  for (let i = 0; i < 1100; i++) {
    const name = `wide/k${String(i).padStart(4, "0")}`;
    ks.push(i < 100 ? key(name, i % 10 === 9 ? "int" : "float") : key(name, "float", 10, i % 10));
  }
  return ks;
}

export const TWO_POW_53_PLUS_1 = 9007199254740993n;
export const BEYOND_INT64 = 123456789012345678901234567890n;
const PHASES = ["train", "eval", "test"] as const;
const RUN_IDS = ["r-α", "run 1", "x\ty"] as const;

/** A small deterministic PNG (8x8 RGB) for media file `seed`. */
export function makePng(seed: number): Buffer {
  const w = 8;
  const h = 8;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w * 3; x++) raw[y * (w * 3 + 1) + 1 + x] = hash3(seed, y, x) & 0xff;
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function safeMediaName(k: string): string {
  return k.replace(/[^A-Za-z0-9_-]/g, "_");
}

interface MediaInfo {
  path: string;
  sha256: string;
  size: number;
  seed: number;
}
const mediaCache = new Map<string, MediaInfo>();
/** The media file an image value at (run, key, step) points to. */
export function mediaInfo(runSeed: number, k: KeySpec, step: number): MediaInfo {
  const seed = hash3(runSeed, k.id, step);
  const ck = `${runSeed}:${k.id}:${step}`;
  let m = mediaCache.get(ck);
  if (m) return m;
  const png = makePng(seed);
  const sha256 = createHash("sha256").update(png).digest("hex");
  m = {
    path: `media/images/${safeMediaName(k.name)}_${step}_${sha256.slice(0, 20)}.png`,
    sha256,
    size: png.length,
    seed,
  };
  if (mediaCache.size > 50_000) mediaCache.clear();
  mediaCache.set(ck, m);
  return m;
}

/** The value of key `k` at `step` in the run with seed `runSeed` (scale/rate: per-run curve parameters). */
export function keyValue(runSeed: number, scale: number, rate: number, k: KeySpec, step: number): FValue {
  const h = hash3(runSeed, k.id, step);
  switch (k.kind) {
    case "float":
      return (scale * k.a) / (1 + step * k.b * rate) + k.c + (unit(h) - 0.5) * k.d;
    case "int":
      if (k.name.includes("epoch")) return Math.floor(step / (50 + (k.id % 450)));
      if (k.name === "global_step" || k.name === "step") return step * 8;
      if (k.name.includes("tokens")) return step * (256 + (k.id % 4096));
      return h % 1000;
    case "special": {
      const u = unit(h);
      if (u < 0.08) return Number.NaN;
      if (u < 0.12) return Number.POSITIVE_INFINITY;
      if (u < 0.16) return Number.NEGATIVE_INFINITY;
      return (scale * k.a) / (1 + step * k.b) + (u - 0.5) * k.d;
    }
    case "bigint":
      return TWO_POW_53_PLUS_1 + BigInt(step);
    case "huge":
      return BEYOND_INT64 + BigInt(step);
    case "string":
      return k.name === "run_id" ? RUN_IDS[h % RUN_IDS.length]! : PHASES[h % PHASES.length]!;
    case "bool":
      return (h & 1) === 1;
    case "image": {
      const m = mediaInfo(runSeed, k, step);
      return { _type: "image-file", path: m.path, sha256: m.sha256, size: m.size, width: 8, height: 8, format: "png" };
    }
    case "histogram": {
      const values: FValue[] = [];
      const bins: FValue[] = [];
      const lo = -1 - unit(h);
      const width = (2 * -lo) / 8;
      for (let i = 0; i < 8; i++) values.push(hash3(h, i, 7) % 100);
      for (let i = 0; i <= 8; i++) bins.push(lo + i * width);
      return { _type: "histogram", values, bins };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Runs

/** A run of consecutive rows: steps startStep + j*stride, runtimes t0 + j*dt (+ jitter), j < count. */
export interface Segment {
  startStep: number;
  stride: number;
  count: number;
  t0: number;
  dt: number;
}

/** What the generator knows about a run besides its FakeRun metadata. */
export interface RunSpec {
  index: number;
  seed: number;
  scenario: string;
  keys: KeySpec[];
  segments: Segment[];
  createdEpoch: number;
  /** Per-run curve parameters. */
  scale: number;
  rate: number;
  /** When > 0, rows whose step % floatStepEvery === 0 go on the wire with `_step` as a float (`10.0`). */
  floatStepEvery: number;
  /** Extra files (edge profile). */
  extraFiles: ExtraFile[];
  /** Steps < this are exported when exports are on (independent of the switch). */
  exportBoundary: number;
}

export type ExtraFile = { name: string; kind: "text"; text: string } | { name: string; kind: "large"; size: number };

export interface GeneratedRun {
  run: FakeRun;
  spec: RunSpec;
}

/** The stable users of a project; users[0] is the viewer. */
export function makeUsers(entity: string, profile: string): FakeUser[] {
  const users: FakeUser[] = [
    { name: "Ada Lovelace", username: entity, email: `${entity}@example.com` },
    { name: "Grace Hopper", username: "grace", email: "grace@example.com" },
    { name: "Alan Turing", username: "alan", email: "alan@example.com" },
  ];
  if (profile === "edge") users.push({ name: "José Núñez 🚀", username: "jose-n", email: "jose@example.com" });
  return users;
}

const ADJ = ["glamorous", "brisk", "quiet", "lucky", "misty", "bold", "amber", "eager", "cosmic", "gentle"];
const NOUN = ["frog", "river", "sun", "pine", "comet", "fox", "meadow", "storm", "wave", "dawn"];
const TAGS = ["baseline", "ablation", "v2", "lr-sweep", "debug", "prod"];
const EDGE_SCENARIOS = [
  "kitchen-sink",
  "late-start",
  "sparse-steps",
  "running",
  "crashed",
  "failed",
  "killed",
  "preempted",
  "wide",
  "no-history",
  "float-step",
  "sweep-notes",
] as const;
export const EDGE_SCENARIO_COUNT = EDGE_SCENARIOS.length;

export interface GenContext {
  options: GeneratorOptions;
  users: FakeUser[];
  names: Set<string>;
  sweeps: string[];
}

export function makeContext(options: GeneratorOptions): GenContext {
  const rng = mulberry32(hash3(options.seed, 0x5e1ee, 0));
  const sweeps = [randomId(rng, 8), randomId(rng, 8), randomId(rng, 8)];
  return { options, users: makeUsers(options.entity, options.profile), names: new Set(), sweeps };
}

/** Number of runs the project starts with (the edge profile always holds every scenario). */
export function initialRunCount(options: GeneratorOptions): number {
  return options.profile === "edge" ? Math.max(options.runs, EDGE_SCENARIO_COUNT) : options.runs;
}

/** Generates the initial project: runs in creation order. */
export function generateProject(options: GeneratorOptions): { ctx: GenContext; runs: GeneratedRun[] } {
  const ctx = makeContext(options);
  const runs: GeneratedRun[] = [];
  let t = BASE_EPOCH;
  const n = initialRunCount(options);
  for (let i = 0; i < n; i++) {
    const gap = i === 0 ? 0 : 60 + (hash3(options.seed, i, 0x6a9) % 3540);
    t += gap;
    const scenario = options.profile === "edge" ? (EDGE_SCENARIOS[i] ?? "generic") : "default";
    runs.push(generateRun(ctx, i, t, scenario, null));
  }
  return { ctx, runs };
}

/** One run. `forceState` (addRuns) overrides the profile's state. */
export function generateRun(
  ctx: GenContext,
  index: number,
  createdEpoch: number,
  scenario: string,
  forceState: FakeRun["state"] | null,
): GeneratedRun {
  const o = ctx.options;
  const seed = hash3(o.seed, index, 0x2b1);
  const rng = mulberry32(seed);
  let name = randomId(rng, 8);
  while (ctx.names.has(name)) name = randomId(rng, 8);
  ctx.names.add(name);
  const edge = o.profile === "edge";
  const S = Math.max(1, o.steps);

  // --- state
  let state: FakeRun["state"];
  const u = rng();
  if (scenario === "default" || scenario === "generic") {
    const rf = o.runningFraction ?? 0.1;
    if (u < rf) state = "running";
    else {
      const v = rng();
      state = v < 0.9 ? "finished" : v < 0.94 ? "crashed" : v < 0.97 ? "failed" : "killed";
    }
  } else {
    state =
      scenario === "running"
        ? "running"
        : scenario === "crashed" || scenario === "failed" || scenario === "killed" || scenario === "preempted"
          ? scenario
          : "finished";
  }
  if (forceState) state = forceState;

  // --- keys and steps
  const dt = round(0.5 + rng() * 4.5, 3);
  let keys: KeySpec[];
  let segments: Segment[];
  const dense = (first: number, count: number): Segment[] => [{ startStep: first, stride: 1, count, t0: 0, dt }];
  let floatStepEvery = 0;
  switch (scenario) {
    case "default":
      keys = defaultKeys(o.metrics);
      segments = dense(0, S);
      break;
    case "kitchen-sink":
      keys = [...EDGE_KEYS];
      segments = dense(0, Math.max(S, 1200));
      break;
    case "late-start":
      keys = EDGE_BASIC;
      segments = dense(1000, S);
      break;
    case "sparse-steps": {
      const a = Math.max(2, Math.floor(S / 2));
      segments = [
        { startStep: 0, stride: 1, count: a, t0: 0, dt },
        { startStep: a + 37, stride: 3, count: a, t0: (a + 5) * dt, dt: dt * 3 },
        { startStep: 10 * S + 1000, stride: 7, count: 10, t0: (3 * a + 40) * dt, dt: dt * 7 },
      ];
      keys = EDGE_BASIC;
      break;
    }
    case "wide":
      keys = wideKeys();
      segments = dense(0, Math.min(Math.max(S, 20), 60));
      break;
    case "no-history":
      keys = [];
      segments = [];
      break;
    case "float-step":
      keys = EDGE_BASIC;
      segments = dense(0, Math.max(S, 10));
      floatStepEvery = 3;
      break;
    default:
      keys = edge ? [...defaultKeys(Math.min(o.metrics, 8)), ...EDGE_BASIC.slice(3)] : defaultKeys(o.metrics);
      segments = dense(0, S);
  }
  const scale = 0.5 + rng();
  const rate = 0.5 + rng();

  const spec: RunSpec = {
    index,
    seed,
    scenario,
    keys,
    segments,
    createdEpoch,
    scale,
    rate,
    floatStepEvery,
    extraFiles: [],
    exportBoundary: 0,
  };
  const lastStep = specLastStep(spec);
  const terminal = state !== "running" && state !== "preempted";
  spec.exportBoundary = terminal ? lastStep + 1 : 0;
  if (scenario === "float-step") spec.exportBoundary = Math.floor((lastStep + 1) / 2);

  // --- metadata
  const user = scenario === "sweep-notes" ? ctx.users[ctx.users.length - 1]! : pick(rng, ctx.users);
  const displayName = `${pick(rng, ADJ)}-${pick(rng, NOUN)}-${index + 1}`;
  const tags: string[] = [];
  for (const t of TAGS) if (rng() < 0.2) tags.push(t);
  let group: string | null = rng() < 0.5 ? `exp-${1 + Math.floor(rng() * 5)}` : null;
  let jobType: string | null = rng() < 0.6 ? pick(rng, ["train", "eval"]) : null;
  let sweepName: string | null = rng() < 0.2 ? pick(rng, ctx.sweeps) : null;
  const commit = rng() < 0.7 ? hexOf(seed, 40) : null;
  let notes: string | null =
    rng() < 0.3 ? `Run ${displayName}: ${pick(rng, ["baseline", "try warmup", "fix lr"])}` : null;
  if (edge) {
    if (scenario === "kitchen-sink" || scenario === "sweep-notes") {
      tags.push("ünïcødé-tag", "🚀", "tag with space");
      group = "group/ü 1";
      jobType = "train";
      sweepName = ctx.sweeps[0]!;
      notes = 'Line one\nLine "two"\n\ttabbed — ünïcode ✓\n';
    }
    if (scenario === "late-start") sweepName = ctx.sweeps[1]!;
  }

  const config = edge && scenario !== "generic" ? edgeConfig(rng, scenario) : defaultConfig(rng);
  const wandbConfig: FObject = {
    python_version: "3.11.9",
    cli_version: "0.19.1",
    framework: "torch",
    is_jupyter_run: false,
    is_kaggle_kernel: false,
    start_time: Math.floor(createdEpoch),
    t: { "1": [1, 5, 41, 53, 55], "2": [1, 5, 41, 53, 55], "3": [13, 16, 23, 55], "4": "3.11.9", "5": "0.19.1" },
    m: [],
  };

  const run: FakeRun = {
    name,
    storageId: b64(`Run:v1:${name}:${o.project}:${o.entity}`),
    displayName,
    state,
    tags,
    group,
    jobType,
    sweepName,
    commit,
    readOnly: false,
    createdAt: formatTime(createdEpoch),
    heartbeatAt: formatTime(createdEpoch),
    description: notes,
    notes,
    user: { ...user },
    config,
    wandbConfig,
    summary: {},
    systemMetrics: {},
    firstStep: specFirstStep(spec),
    lastStep,
    historyLineCount: specRowCount(spec),
    exportedThrough: 0,
    deleted: false,
  };
  run.heartbeatAt = formatTime(lastRowEpoch(spec) + 1 + (hash3(seed, 3, 3) % 30));
  run.summary = computeSummary(spec, null, null);
  if (edge && scenario === "kitchen-sink") {
    run.summary.best_val = { value: 0.91, step: 17, "nested.key": [1, 2, Number.NaN] };
  }
  if (scenario === "no-history") run.summary = { _wandb: { runtime: 5 } };
  run.systemMetrics = systemSnapshot(spec, o.events ?? 20);

  if (edge && scenario === "kitchen-sink") {
    spec.extraFiles.push(
      { name: "../../escape.txt", kind: "text", text: "escape attempt\n" },
      { name: "/abs/path.txt", kind: "text", text: "absolute path\n" },
      { name: "a/../../b.txt", kind: "text", text: "dot-dot in the middle\n" },
      { name: "dir with space/结果 ü.txt", kind: "text", text: "ünïcode file name ✓\n" },
      { name: "checkpoints/large.bin", kind: "large", size: 3 * 1024 * 1024 + 123 },
    );
  }
  return { run, spec };
}

function hexOf(seed: number, n: number): string {
  let s = "";
  for (let i = 0; s.length < n; i++) s += hash3(seed, 0xc0, i).toString(16).padStart(8, "0");
  return s.slice(0, n);
}

function defaultConfig(rng: () => number): FObject {
  return {
    lr: round(10 ** -(2 + rng() * 3), 8),
    batch_size: pick(rng, [16, 32, 64, 128, 256]),
    optimizer: pick(rng, ["adam", "adamw", "sgd"]),
    epochs: 1 + Math.floor(rng() * 100),
    seed: Math.floor(rng() * 10000),
    dropout: round(rng() * 0.5, 3),
    model: {
      name: pick(rng, ["resnet50", "vit-b16", "gpt2-small"]),
      layers: 2 + Math.floor(rng() * 22),
      hidden: [256, 512],
      activation: pick(rng, ["gelu", "relu"]),
    },
    betas: [0.9, 0.999],
    dataset: pick(rng, ["cifar10", "imagenet", "wikitext"]),
    use_amp: rng() < 0.5,
    warmup_steps: Math.floor(rng() * 1000),
  };
}

function edgeConfig(rng: () => number, scenario: string): FObject {
  return {
    lr: round(10 ** -(2 + rng() * 3), 8),
    batch_size: 64,
    optimizer: "adamw",
    "a.b": "dotted config key",
    model: {
      layers: [64, 128, { type: "attn", heads: 8 }],
      act: null,
      nested: { deep: { deeper: { x: 1, ключ: "значение" } } },
      empty_dict: {},
      empty_list: [],
    },
    名前: "テスト",
    emoji: "🚀✨",
    none_value: null,
    nan_param: Number.NaN,
    inf_param: Number.POSITIVE_INFINITY,
    neg_inf_param: Number.NEGATIVE_INFINITY,
    big_param: TWO_POW_53_PLUS_1,
    bool_param: true,
    scenario,
    multiline: "first\nsecond",
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Steps and rows

export function specRowCount(spec: RunSpec): number {
  let n = 0;
  for (const s of spec.segments) n += s.count;
  return n;
}
export function specFirstStep(spec: RunSpec): number {
  for (const s of spec.segments) if (s.count > 0) return s.startStep;
  return -1;
}
export function specLastStep(spec: RunSpec): number {
  for (let i = spec.segments.length - 1; i >= 0; i--) {
    const s = spec.segments[i]!;
    if (s.count > 0) return s.startStep + (s.count - 1) * s.stride;
  }
  return -1;
}
function rowRuntime(spec: RunSpec, seg: Segment, j: number, step: number): number {
  return round(seg.t0 + j * seg.dt + unit(hash3(spec.seed, 0x7171, step)) * seg.dt * 0.25, 6);
}
/** Unix seconds of the run's last row (its creation time for a run without history). */
export function lastRowEpoch(spec: RunSpec): number {
  const seg = lastSegment(spec);
  if (!seg) return spec.createdEpoch;
  const j = seg.count - 1;
  return spec.createdEpoch + rowRuntime(spec, seg, j, seg.startStep + j * seg.stride);
}
function lastSegment(spec: RunSpec): Segment | undefined {
  for (let i = spec.segments.length - 1; i >= 0; i--) if (spec.segments[i]!.count > 0) return spec.segments[i];
  return undefined;
}

/** Builds row j of segment seg. */
type RowFactory = (vals: FValue[], step: number, rt: number, ts: number) => FObject;
const factories = new WeakMap<KeySpec[], RowFactory | null>();
/**
 * For a dense key list (every key on every row) a compiled object-literal factory: rows then share one hidden class
 * instead of growing key by key through a megamorphic keyed store (about 3x faster for 30 keys).
 */
function rowFactory(keys: KeySpec[]): RowFactory | null {
  let f = factories.get(keys);
  if (f !== undefined) return f;
  f = null;
  if (keys.length > 0 && keys.length <= 200 && keys.every((k) => k.period === 1)) {
    const props = keys.map((k, i) => `${JSON.stringify(k.name)}: vals[${i}]`);
    f = new Function(
      "vals",
      "step",
      "rt",
      "ts",
      `return {"_step": step, ${props.join(", ")}, "_runtime": rt, "_timestamp": ts};`,
    ) as RowFactory;
  }
  factories.set(keys, f);
  return f;
}
const scratch: FValue[] = [];

export function makeRow(spec: RunSpec, seg: Segment, j: number): FObject {
  const step = seg.startStep + j * seg.stride;
  const rt = rowRuntime(spec, seg, j, step);
  const keys0 = spec.keys;
  const factory = rowFactory(keys0);
  if (factory !== null) {
    const seed = spec.seed;
    for (let i = 0; i < keys0.length; i++) {
      const k = keys0[i]!;
      scratch[i] =
        k.kind === "float"
          ? (spec.scale * k.a) / (1 + step * k.b * spec.rate) + k.c + (unit(hash3(seed, k.id, step)) - 0.5) * k.d
          : keyValue(seed, spec.scale, spec.rate, k, step);
    }
    const r = factory(scratch, step, rt, spec.createdEpoch + rt);
    if (spec.floatStepEvery > 0 && step % spec.floatStepEvery === 0) FLOAT_STEP_ROWS.add(r);
    return r;
  }
  const row: FObject = { _step: step };
  const keys = spec.keys;
  const seed = spec.seed;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k.period === 1 || step % k.period === k.phase) {
      if (k.kind === "float") {
        row[k.name] =
          (spec.scale * k.a) / (1 + step * k.b * spec.rate) + k.c + (unit(hash3(seed, k.id, step)) - 0.5) * k.d;
      } else row[k.name] = keyValue(seed, spec.scale, spec.rate, k, step);
    }
  }
  row._runtime = rt;
  row._timestamp = spec.createdEpoch + rt;
  if (spec.floatStepEvery > 0 && step % spec.floatStepEvery === 0) FLOAT_STEP_ROWS.add(row);
  return row;
}

/** Calls fn for each row with minStep <= _step < maxStep, in step order. */
export function forEachRow(spec: RunSpec, minStep: number, maxStep: number, fn: (row: FObject) => void): void {
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    for (let j = lo; j < hi; j++) fn(makeRow(spec, seg, j));
  }
}

/** Index range [lo, hi) of the rows of seg with minStep <= step < maxStep. */
export function segRange(seg: Segment, minStep: number, maxStep: number): [number, number] {
  const lo = Math.max(0, Math.ceil((minStep - seg.startStep) / seg.stride));
  const hi = Math.min(seg.count, Math.ceil((maxStep - seg.startStep) / seg.stride));
  return [lo, Math.max(lo, hi)];
}

/** Steps (only) with minStep <= step < maxStep. */
export function stepsIn(spec: RunSpec, minStep: number, maxStep: number): number[] {
  const out: number[] = [];
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    for (let j = lo; j < hi; j++) out.push(seg.startStep + j * seg.stride);
  }
  return out;
}

/** Number of rows with minStep <= step < maxStep. */
export function countRows(spec: RunSpec, minStep: number, maxStep: number): number {
  let n = 0;
  for (const seg of spec.segments) {
    const [lo, hi] = segRange(seg, minStep, maxStep);
    n += hi - lo;
  }
  return n;
}

/** The row at a step, or undefined when no row has that step. */
export function rowAtStep(spec: RunSpec, step: number): FObject | undefined {
  for (const seg of spec.segments) {
    const d = step - seg.startStep;
    if (d >= 0 && d % seg.stride === 0 && d / seg.stride < seg.count) return makeRow(spec, seg, d / seg.stride);
  }
  return undefined;
}

/**
 * Summary from history: the last value of every key among rows with step >= fromStep (all rows when null), merged
 * over `base` (so keys set by setSummary or logged earlier stay), plus `_step`, `_runtime`, `_timestamp`, `_wandb`.
 */
export function computeSummary(spec: RunSpec, base: FObject | null, fromStep: number | null): FObject {
  const out: FObject = base ? { ...base } : {};
  const found = new Set<string>();
  const want = spec.keys.length;
  let lastRow: FObject | undefined;
  // Walk rows backwards until every key was seen (bounded by the largest period) or rows run out.
  for (let si = spec.segments.length - 1; si >= 0 && found.size < want; si--) {
    const seg = spec.segments[si]!;
    for (let j = seg.count - 1; j >= 0 && found.size < want; j--) {
      const step = seg.startStep + j * seg.stride;
      if (fromStep !== null && step < fromStep) {
        si = -1;
        break;
      }
      const row = makeRow(spec, seg, j);
      if (!lastRow) lastRow = row;
      for (const k in row) {
        if (k === "_step" || k === "_runtime" || k === "_timestamp" || found.has(k)) continue;
        found.add(k);
        out[k] = row[k]!;
      }
    }
  }
  if (lastRow) {
    out._step = lastRow._step!;
    out._runtime = lastRow._runtime!;
    out._timestamp = lastRow._timestamp!;
    out._wandb = { runtime: Math.round(lastRow._runtime as number) };
  } else if (!out._wandb) out._wandb = { runtime: 0 };
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// System metrics

const SYSTEM_KEYS = [
  "system.cpu",
  "system.memory_percent",
  "system.gpu.0.gpu",
  "system.gpu.0.memoryAllocated",
  "system.gpu.0.temp",
  "system.proc.memory.rssMB",
  "system.proc.cpu.threads",
  "system.disk.\\.usagePercent",
  "system.network.sent",
];

/** System-metric events: {"_wandb": true, "_timestamp", "_runtime", "system.*"}. */
export function makeEvents(spec: RunSpec, n: number): FObject[] {
  const out: FObject[] = [];
  const total = Math.max(10, lastRowEpoch(spec) - spec.createdEpoch);
  for (let i = 0; i < n; i++) {
    const rt = round(((i + 1) * total) / n, 6);
    const row: FObject = { _wandb: true, _timestamp: spec.createdEpoch + rt, _runtime: rt };
    for (let k = 0; k < SYSTEM_KEYS.length; k++) {
      const h = hash3(spec.seed, 0xe0 + k, i);
      const name = SYSTEM_KEYS[k]!;
      row[name] =
        name === "system.proc.cpu.threads"
          ? 8 + (h % 24)
          : name === "system.network.sent"
            ? 1000 * (i + 1) + (h % 1000)
            : round(unit(h) * 100, 4);
    }
    out.push(row);
  }
  return out;
}

/** The run's systemMetrics snapshot: the latest event's system.* values. */
export function systemSnapshot(spec: RunSpec, n: number): FObject {
  const evs = makeEvents(spec, Math.max(1, n));
  const last = evs[evs.length - 1]!;
  const out: FObject = {};
  for (const k in last) if (k.startsWith("system.")) out[k] = last[k]!;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Files

export interface FileSpec {
  name: string;
  mimetype: string;
  content: () => Buffer;
}

function mimeOf(name: string): string {
  if (name.endsWith(".json")) return "application/json";
  if (name.endsWith(".png")) return "image/png";
  if (name.endsWith(".yaml")) return "application/x-yaml";
  if (name.endsWith(".txt") || name.endsWith(".log")) return "text/plain";
  return "application/octet-stream";
}

function yamlValue(v: FValue): string {
  // JSON is valid YAML flow syntax; non-finite numbers use YAML's spelling.
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
  return encodeWandbJson(v);
}

export function configYaml(run: FakeRun): string {
  let s = "_wandb:\n  value:\n";
  for (const k of Object.keys(run.wandbConfig)) s += `    ${JSON.stringify(k)}: ${yamlValue(run.wandbConfig[k]!)}\n`;
  for (const k of Object.keys(run.config)) {
    s += `${JSON.stringify(k)}:\n  desc: null\n  value: ${yamlValue(run.config[k]!)}\n`;
  }
  return s;
}

/** Every file of a run (content computed on demand). */
export function fileSpecs(spec: RunSpec, run: FakeRun, ctxOptions: GeneratorOptions): FileSpec[] {
  const files: FileSpec[] = [];
  const text = (name: string, f: () => string) =>
    files.push({ name, mimetype: mimeOf(name), content: () => Buffer.from(f(), "utf8") });
  text("wandb-metadata.json", () =>
    JSON.stringify(
      {
        os: "Linux-5.15.0-105-generic-x86_64-with-glibc2.35",
        python: "CPython 3.11.9",
        startedAt: `${new Date(spec.createdEpoch * 1000).toISOString().slice(0, 23)}Z`,
        args: ["--lr", String(run.config.lr ?? 0.001), "--seed", String(spec.index)],
        program: "/home/user/project/train.py",
        codePath: "train.py",
        git: { remote: "https://github.com/example/project.git", commit: run.commit },
        email: run.user.email,
        root: "/home/user/project",
        host: `gpu-node-${spec.index % 7}`,
        username: run.user.username,
        executable: "/usr/bin/python3",
        cpu_count: 16,
        cpu_count_logical: 32,
        gpu: "NVIDIA A100-SXM4-80GB",
        gpu_count: 1,
        disk: { "/": { total: "1000000000000", used: String(100000000 + (spec.seed % 1000000)) } },
        memory: { total: "540000000000" },
      },
      null,
      4,
    ),
  );
  text("output.log", () => {
    const lines: string[] = [];
    const n = 5 + (spec.seed % 40);
    for (let i = 0; i < n; i++) lines.push(`step ${i * 10}: loss=${(1 / (i + 1)).toFixed(4)} ${ctxOptions.project}`);
    return `${lines.join("\n")}\n`;
  });
  text("config.yaml", () => configYaml(run));
  text("requirements.txt", () => "numpy==1.26.4\ntorch==2.3.1\nwandb==0.19.1\n");
  for (const x of spec.extraFiles) {
    if (x.kind === "text") text(x.name, () => x.text);
    else {
      files.push({
        name: x.name,
        mimetype: mimeOf(x.name),
        content: () => {
          const buf = Buffer.alloc(x.size);
          for (let i = 0; i + 4 <= x.size; i += 4) buf.writeUInt32LE(hash3(spec.seed, 0xb16, i), i);
          return buf;
        },
      });
    }
  }
  // Media files referenced by image values in history.
  for (const k of spec.keys) {
    if (k.kind !== "image") continue;
    for (const seg of spec.segments) {
      for (let j = 0; j < seg.count; j++) {
        const step = seg.startStep + j * seg.stride;
        if (step % k.period !== k.phase) continue;
        const m = mediaInfo(spec.seed, k, step);
        files.push({ name: m.path, mimetype: "image/png", content: () => makePng(m.seed) });
      }
    }
  }
  return files;
}

/**
 * History keys of the generated runs (default, edge and wide catalogues), the value of a key at a step (a pure
 * function of run seed and step), and the small PNGs that image values point to.
 */
import { createHash } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";
import type { FValue } from "./model.js";
import { hash3, mulberry32, strHash, unit } from "./random.js";

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
export const EDGE_BASIC: KeySpec[] = EDGE_KEYS.filter((k) => EDGE_BASIC_NAMES.has(k.name));

/** 1,100 distinct keys: 100 dense, the rest sparse (present every 10th step). */
export function wideKeys(): KeySpec[] {
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

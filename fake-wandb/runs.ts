/** The generated runs: users, run metadata per profile and scenario, configs, and the segments of their steps. */

import { b64 } from "./encode.js";
import { defaultKeys, EDGE_BASIC, EDGE_KEYS, type KeySpec, TWO_POW_53_PLUS_1, wideKeys } from "./keys.js";
import type { FakeRun, FakeUser, FObject, GeneratorOptions } from "./model.js";
import { BASE_EPOCH, formatTime, hash3, mulberry32, pick, randomId, round } from "./random.js";
import { computeSummary, lastRowEpoch, specFirstStep, specLastStep, specRowCount, systemSnapshot } from "./rows.js";
import type { RunSpec, Segment } from "./spec.js";

// ---------------------------------------------------------------------------------------------------------------
// Runs

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

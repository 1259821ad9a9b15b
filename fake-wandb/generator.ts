/**
 * Seeded, deterministic generator of a fake W&B project. This file is its table of contents: random.ts (PRNG,
 * time), keys.ts (key catalogues, values, PNGs), runs.ts (runs), spec.ts (RunSpec), rows.ts (history rows, system
 * metrics), files.ts (run files).
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

export { configYaml, type FileSpec, fileSpecs } from "./files.js";
export {
  BEYOND_INT64,
  defaultKeys,
  EDGE_KEYS,
  type KeyKind,
  type KeySpec,
  keyTypeName,
  keyValue,
  makePng,
  mediaInfo,
  TWO_POW_53_PLUS_1,
} from "./keys.js";
export { BASE_EPOCH, formatTime, hash3, mulberry32, parseTime, strHash } from "./random.js";
export {
  computeSummary,
  countRows,
  forEachRow,
  lastRowEpoch,
  makeEvents,
  makeRow,
  rowAtStep,
  segRange,
  specFirstStep,
  specLastStep,
  specRowCount,
  stepsIn,
  systemSnapshot,
} from "./rows.js";
export {
  EDGE_SCENARIO_COUNT,
  type GenContext,
  type GeneratedRun,
  generateProject,
  generateRun,
  initialRunCount,
  makeContext,
  makeUsers,
} from "./runs.js";
export type { ExtraFile, RunSpec, Segment } from "./spec.js";

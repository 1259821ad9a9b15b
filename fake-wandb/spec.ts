/** RunSpec: what the generator knows about a run besides its FakeRun metadata; rows and files are computed from it. */
import type { KeySpec } from "./keys.js";

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

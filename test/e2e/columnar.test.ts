/**
 * The columnar ingest equals the row path on an edge project sized for the default tier: every edge scenario, each
 * finished run's export in two files (1,100 steps), an incremental sync read from new exports.
 * columnar.heavy.test.ts runs the same suite on 2,600 steps per run.
 */
import { columnarSuite } from "./columnar-suite.js";

// The truth is checked on the final archive (after the incremental sync; the first archive is compared with the row
// path's byte for byte): the heavy tier checks it after both syncs.
columnarSuite(
  "edge profile, 1,100 steps",
  { seed: 11, runs: 8, steps: 1100, metrics: 6 },
  { truthAfterFirstSync: false },
);

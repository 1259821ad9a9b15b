/** The columnar ingest equals the row path on the heavy tier's edge project (2,600 steps per run). */
import { columnarSuite } from "./columnar-suite.js";

columnarSuite(
  "edge profile, 2,600 steps",
  { seed: 11, runs: 8, steps: 2600, metrics: 6 },
  { truthAfterFirstSync: true },
);

/**
 * Crash consistency, default tier: kills at the first request of each operation family, one seeded request and the export, on
 * a small project; a killed wandb-download in every format. crash.heavy.test.ts kills more often on a larger one.
 */
import { crashSuite } from "./crash-suite.js";

crashSuite({
  seed: Number(process.env.DR_WANDB_CRASH_SEED ?? 7),
  randomKills: Number(process.env.DR_WANDB_CRASH_KILLS ?? 1),
  data: { runs: 8, steps: 600, metrics: 4, runningFraction: 0.25 },
});

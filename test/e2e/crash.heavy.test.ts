/** Crash consistency, heavy tier: 5 seeded kills (DR_WANDB_CRASH_KILLS) besides the fixed ones, on 16 runs × 1,500 steps. */
import { crashSuite } from "./crash-suite.js";

crashSuite({
  seed: Number(process.env.DR_WANDB_CRASH_SEED ?? 7),
  randomKills: Number(process.env.DR_WANDB_CRASH_KILLS ?? 5),
  data: { runs: 16, steps: 1500, metrics: 5, runningFraction: 0.2 },
});

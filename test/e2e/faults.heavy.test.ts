/** The fault soak on the heavy tier's project (20 runs × 2,500 steps, about 15% of ~60 requests failing). */
import { faultsSuite } from "./faults-suite.js";

faultsSuite("20 runs × 2,500 steps", Number(process.env.DR_WANDB_SOAK_SEED ?? 42), {
  runs: 20,
  steps: 2500,
  metrics: 4,
});

/** The fault soak on a small project (8 runs × 800 steps, about 15% of ~30 requests failing), default tier. */
import { faultsSuite } from "./faults-suite.js";

faultsSuite("8 runs × 800 steps", Number(process.env.DR_WANDB_SOAK_SEED ?? 42), { runs: 8, steps: 800, metrics: 4 });

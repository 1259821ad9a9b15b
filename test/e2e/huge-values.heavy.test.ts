/**
 * Issue #13's case: a value of 200 MB in a run's config and another in a run's summary, through `dr-wandb sync`
 * (archive and export) and `wandb-download` in every format, each CLI in a process of its own.
 */
import { hugeValueSuite } from "./huge-values-suite.js";

hugeValueSuite({
  chars: 100_000_000,
  places: ["config", "summary"],
  formats: ["parquet", "jsonl", "pkl"],
  process: true,
});

/**
 * One value of 48 MB in a run's summary and another in a run's config, above DuckDB's write (128 MiB) and export
 * (160 MiB) budgets once copied a few times: before memory was planned from the largest value, the sync failed
 * ("Failed to append: Current transaction is aborted", hiding DuckDB's out-of-memory error) and wandb-download's
 * Parquet conversion ran out of its budget. The 200 MB case is huge-values.heavy.test.ts.
 */
import { hugeValueSuite } from "./huge-values-suite.js";

hugeValueSuite({ chars: 16_000_000, places: ["summary"], formats: ["parquet"], process: false });

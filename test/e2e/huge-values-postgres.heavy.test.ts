/**
 * Issue #13's huge values through a PostgreSQL archive: a value of 200 MB in a run's config and another in a run's
 * summary, synced with --db-url and exported (the export copies the archive's tables out of PostgreSQL as CSV into a
 * temporary DuckDB, whose budget is planned from the longest record).
 */
import { hugeValueSuite } from "./huge-values-suite.js";

hugeValueSuite({
  chars: 100_000_000,
  places: ["config", "summary"],
  formats: [],
  process: true,
  postgres: true,
});

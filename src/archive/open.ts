/** Opens the archive named by `--db-url` (or the default DuckDB file in the output folder). */
import { join, resolve } from "node:path";
import type { Archive } from "./archive.js";
import { ArchiveError, redactUrl } from "./errors.js";

export interface OpenArchiveOptions {
  /** `duckdb:<path>`, a path ending in .duckdb, or a postgresql:// / postgres:// / postgresql+psycopg2:// URL. */
  dbUrl?: string;
  /** The default DuckDB file is `<outputDir>/wandb.duckdb`. */
  outputDir: string;
  /**
   * For query/status/export: no migrations are applied and (PostgreSQL) no writer lock is taken, so this works
   * while a sync runs. DuckDB still refuses a reader while another process writes the file (LOCKED).
   */
  readOnly?: boolean;
}

export type ArchiveTarget = { kind: "duckdb"; path: string } | { kind: "postgres"; url: string };

/** Decides which backend a --db-url names (no I/O). */
export function parseArchiveTarget(opts: { dbUrl?: string; outputDir: string }): ArchiveTarget {
  const raw = opts.dbUrl?.trim();
  if (!raw) return { kind: "duckdb", path: resolve(join(opts.outputDir, "wandb.duckdb")) };
  if (/^duckdb:/i.test(raw)) {
    let p = raw.slice("duckdb:".length);
    if (p.startsWith("//")) p = p.slice(2);
    if (!p) throw new ArchiveError("BAD_URL", `${raw} names no file (use duckdb:<path>)`);
    return { kind: "duckdb", path: resolve(p) };
  }
  if (/^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.test(raw)) {
    const scheme = raw.slice(0, raw.indexOf(":")).toLowerCase();
    if (scheme.includes("+") && scheme !== "postgresql+psycopg2" && scheme !== "postgres+psycopg2") {
      throw new ArchiveError("BAD_URL", `unsupported database URL scheme "${scheme}" in ${redactUrl(raw)}`);
    }
    return { kind: "postgres", url: raw };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1];
  if (scheme) {
    throw new ArchiveError(
      "BAD_URL",
      `unsupported database URL scheme "${scheme}" in ${redactUrl(raw)} (use duckdb:<path>, a .duckdb path, or postgresql://)`,
    );
  }
  if (/\.duckdb$/i.test(raw)) return { kind: "duckdb", path: resolve(raw) };
  throw new ArchiveError(
    "BAD_URL",
    `cannot tell what database "${redactUrl(raw)}" names (use duckdb:<path>, a path ending in .duckdb, or postgresql://...)`,
  );
}

export async function openArchive(opts: OpenArchiveOptions): Promise<Archive> {
  const target = parseArchiveTarget(opts);
  const readOnly = opts.readOnly === true;
  if (target.kind === "duckdb") {
    const { DuckDBArchive } = await import("./duckdb.js");
    return DuckDBArchive.open(target.path, readOnly);
  }
  const { PostgresArchive } = await import("./postgres.js");
  return PostgresArchive.open(target.url, readOnly);
}

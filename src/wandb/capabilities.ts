/**
 * What a W&B server accepts beyond the request shapes the official SDK sends, learned by trying and remembered per
 * base URL: in memory for the process, and optionally in a small JSON file so the next run does not probe again.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { WandbError } from "./errors.js";

export interface Capabilities {
  /** Aliased multi-run documents (`r0: run(name: $n0)`) work (true), are rejected (false), or are untested. */
  aliases?: boolean;
  /** Largest alias batch seen to work, when a bigger one was rejected. */
  maxAliases?: number;
  /** Largest `runs(first:)` seen to work, when a bigger one was rejected. */
  maxRunsPerPage?: number;
  /** Largest `files(first:)` seen to work, when a bigger one was rejected. */
  maxFilesPerPage?: number;
  /** Run files can be fetched straight from {base}/files/<entity>/<project>/<run>/<path> (no RunFiles request). */
  directFiles?: boolean;
  /**
   * Named run files can be selected inside each run of a Runs page (`files(names: [...]) { ... }` in the run node),
   * so that small files such as wandb-metadata.json are read from their signed URLs with no per-run API request.
   */
  filesInRuns?: boolean;
  /**
   * History windows wider than the SDK's 1,000 steps (samples = the window's row count) come back whole: proven on a
   * window whose steps were known (liveData) and all returned; false once a window came back down-sampled or refused.
   */
  historyWindows?: boolean;
  /** Runs filtered by createdAt ranges come back within them (so ranges can be listed at once). */
  rangeListing?: boolean;
  /** Several sweeps in one aliased GetSweeps document are accepted. */
  sweepBatches?: boolean;
}

/** The SDK's own page size: always accepted. */
export const SDK_PAGE_SIZE = 50;

const memory = new Map<string, Capabilities>();

/** The capabilities remembered for `baseUrl` (a live object: updates are seen by every client of that server). */
export function capabilitiesFor(baseUrl: string, cacheFile?: string): Capabilities {
  let caps = memory.get(baseUrl);
  if (!caps) {
    caps = cacheFile ? (readCache(cacheFile)[baseUrl] ?? {}) : {};
    memory.set(baseUrl, caps);
  }
  return caps;
}

/** Forgets what was learned (tests). */
export function forgetCapabilities(baseUrl?: string): void {
  if (baseUrl === undefined) memory.clear();
  else memory.delete(baseUrl);
}

/** Writes the capabilities of `baseUrl` to the cache file (best effort; never throws). */
export function saveCapabilities(baseUrl: string, cacheFile: string | undefined): void {
  if (!cacheFile) return;
  try {
    const all = readCache(cacheFile);
    all[baseUrl] = memory.get(baseUrl) ?? {};
    mkdirSync(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, cacheFile);
  } catch {
    // a cache that cannot be written only costs a probe next time
  }
}

function readCache(file: string): Record<string, Capabilities> {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, Capabilities>) : {};
  } catch {
    return {};
  }
}

/**
 * Whether an error means "the server does not accept this request shape" (a 400/413/422 or a non-transient GraphQL
 * validation/complexity error), as opposed to a bad filter, auth, not-found or transient failure.
 */
export function isShapeRejection(e: unknown): boolean {
  if (!(e instanceof WandbError) || e.transient) return false;
  if (e.code !== "BAD_REQUEST" && e.code !== "GRAPHQL") return false;
  if (e.code === "BAD_REQUEST" && e.status !== undefined && ![400, 413, 422].includes(e.status)) return false;
  // Filter/cursor/order problems are the caller's, not the shape's.
  return !/\bfilters?\b|\bcursor\b|\border\b|not found|permission/i.test(e.reason);
}

/**
 * A run's parquet history exports: downloaded to a temp dir (signed storage URLs get no W&B credentials), then
 * offered as files to a taker (the DuckDB archive ingests them with SQL) or opened as row batches. Temp dirs of reads
 * in progress are removed on process exit too.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ParquetReader } from "../model/parquet-reader.js";
import { downloadToFile } from "./download.js";
import type { Transport } from "./transport.js";
import type { HistoryRow, ParquetHistoryFiles } from "./types.js";

const PARQUET_DOWNLOAD_CONCURRENCY = 4;

// Temp dirs of scans in progress, removed on process exit too (a CLI may exit while a scan is suspended).
const liveTempDirs = new Set<string>();
let exitHookInstalled = false;
function trackTempDir(dir: string): () => Promise<void> {
  liveTempDirs.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const d of liveTempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  return async () => {
    liveTempDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
}

/** A run's exports to read: their URLs, the step range wanted, and who may take them as files. */
export interface ExportsToOpen {
  urls: string[];
  minStep: number;
  maxStep: number;
  /** Each key's value types from historyKeys (string-typed keys are read as text). */
  types: Map<string, Set<string>>;
  /** "entity/project/run", for errors. */
  where: string;
  signal?: AbortSignal;
  /** Offered the files first (the archive's SQL ingest); true when it took them. */
  take?: (files: ParquetHistoryFiles) => boolean;
}

/** The exports opened as row batches (to clean up after), or taken as files (the highest step they hold). */
export type OpenedExports = { batches: AsyncGenerator<HistoryRow[]>; cleanup: () => Promise<void> } | { taken: number };

/**
 * Downloads the exports (to a temp dir; no credentials to other hosts) and opens them for rows
 * minStep <= _step < maxStep. Fails before yielding anything when a file cannot be fetched or read.
 */
export async function openParquetExports(
  transport: Transport,
  parquet: ParquetReader,
  tempDir: string,
  e: ExportsToOpen,
): Promise<OpenedExports> {
  const { urls, minStep, maxStep, types, where, signal, take } = e;
  const dir = await mkdtemp(join(tempDir, "dr-wandb-parquet-"));
  const cleanup = trackTempDir(dir);
  try {
    const paths = urls.map((_u, i) => join(dir, `${i}.parquet`));
    let next = 0;
    const worker = async () => {
      while (next < urls.length) {
        const i = next++;
        await downloadToFile(transport, urls[i]!, paths[i]!, { operation: "parquetFile", run: where, signal });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARQUET_DOWNLOAD_CONCURRENCY, urls.length) }, worker));
    const stringKeys = new Set<string>();
    for (const [k, t] of types) if (t.has("string")) stringKeys.add(k);
    if (take) {
      // Offered as files (to be stored by SQL) when every file has an integer _step and no step repeats.
      // (A failure here, e.g. out of memory on a huge run, only means the rows are decoded as before.)
      const stats = await parquet.stats(paths, minStep, maxStep).catch(() => null);
      if (stats !== null && stats.rows === stats.total) {
        const files: ParquetHistoryFiles = {
          paths,
          minStep,
          maxStep,
          stringKeys: [...stringKeys],
          rows: stats.rows,
          lastStep: stats.maxStep,
          release: cleanup,
        };
        if (take(files)) return { taken: stats.maxStep };
      }
    }
    const batches = await parquet.open(paths, { minStep, maxStep, stringKeys });
    return { batches, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

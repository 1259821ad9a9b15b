/**
 * The output writers of `wandb-download`: one interface, one module per format (dlt's DataWriter shape).
 *
 *   const w = await openProjectWriter({ format, outputDir, entity, project, withHistory });
 *   for (const run of runs) await w.writeRun(run, historyBatches);   // rows stream to temp files
 *   const { files } = await w.close();                               // temp files renamed into place
 *   // on any error: await w.abort()                                  // temp files removed, old outputs kept
 *
 * File names are the original dr_wandb's: `{entity}_{project}_runs.{ext}`, `{entity}_{project}_histories.{ext}`
 * (only with history), plus `{entity}_{project}_system_metrics.{ext}` when asked for. See docs/formats.md.
 */
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { removeStaleTempFiles } from "../model/atomic-file.js";
import type { HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";

export type DownloadFormat = "pkl" | "parquet" | "jsonl";

export const DOWNLOAD_FORMATS: readonly DownloadFormat[] = ["pkl", "parquet", "jsonl"];

/** What a format is, for help texts and logs. */
export interface WriterSpec {
  format: DownloadFormat;
  /** File extension, without the dot. */
  extension: string;
  /** How rows reach the disk before close(). */
  streaming: "direct" | "spooled";
  description: string;
}

export const WRITER_SPECS: Readonly<Record<DownloadFormat, WriterSpec>> = {
  pkl: {
    format: "pkl",
    extension: "pkl",
    streaming: "direct",
    description: "Python pickles as the original dr_wandb wrote them (list of run dicts; list of lists of row dicts)",
  },
  parquet: {
    format: "parquet",
    extension: "parquet",
    streaming: "spooled",
    description: "Parquet (zstd): typed run columns, JSON columns for nested parts, one column per history metric",
  },
  jsonl: {
    format: "jsonl",
    extension: "jsonl",
    streaming: "direct",
    description: "JSON Lines: one strict-JSON object per run / per history row",
  },
};

export interface ProjectWriter {
  /** Called once per run, in listing order, with that run's full history (possibly empty) — or [] history when runs-only. */
  writeRun(
    run: RunRecord,
    history: AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>,
    systemMetrics?: SystemMetricsRecord[],
  ): Promise<{ historyRows: number }>;
  /** Finishes all files atomically (temp name then rename). Returns the final paths. */
  close(): Promise<{ files: string[] }>;
  /** Removes temp files; leaves any previous complete output files untouched. */
  abort(): Promise<void>;
}

export interface ProjectWriterOptions {
  format: DownloadFormat;
  outputDir: string;
  entity: string;
  project: string;
  withHistory: boolean;
  withSystemMetrics?: boolean;
}

export type ExportErrorCode = "INVALID_NAME" | "INVALID_FORMAT" | "WRITER_CLOSED" | "WRITER_BUSY" | "WRITER_FAILED";

export class ExportError extends Error {
  override name = "ExportError";
  constructor(
    readonly code: ExportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Rejects an entity or project name that could move an output file out of `outputDir` or hide it. W&B names
 * never contain these characters, so a name that does is a mistake (or an attack), not something to rewrite.
 */
export function validateName(kind: "entity" | "project", name: string): void {
  const bad =
    name === ""
      ? "is empty"
      : /[/\\]/.test(name)
        ? "contains a path separator"
        : name.includes("..")
          ? 'contains ".."'
          : /[\0-\x1f]/.test(name)
            ? "contains a control character"
            : null;
  if (bad !== null) throw new ExportError("INVALID_NAME", `invalid ${kind} name ${JSON.stringify(name)}: ${bad}`);
}

export interface OutputPaths {
  runs: string;
  /** Null when the writer has no history (runs-only). */
  histories: string | null;
  systemMetrics: string | null;
}

/** The final paths a writer with these options produces (validates the names). */
export function outputPaths(opts: Omit<ProjectWriterOptions, "format"> & { format: DownloadFormat }): OutputPaths {
  validateName("entity", opts.entity);
  validateName("project", opts.project);
  const spec = WRITER_SPECS[opts.format];
  if (spec === undefined)
    throw new ExportError("INVALID_FORMAT", `unknown output format ${JSON.stringify(opts.format)}`);
  const base = join(opts.outputDir, `${opts.entity}_${opts.project}`);
  return {
    runs: `${base}_runs.${spec.extension}`,
    histories: opts.withHistory ? `${base}_histories.${spec.extension}` : null,
    systemMetrics: opts.withSystemMetrics ? `${base}_system_metrics.${spec.extension}` : null,
  };
}

/** Opens a writer: validates names, creates outputDir (mkdir -p), clears temp files left by killed runs. */
export async function openProjectWriter(opts: ProjectWriterOptions): Promise<ProjectWriter> {
  const paths = outputPaths(opts);
  await mkdir(opts.outputDir, { recursive: true });
  const finals = [paths.runs, paths.histories, paths.systemMetrics].filter((p): p is string => p !== null);
  await removeStaleTempFiles(
    opts.outputDir,
    finals.map((p) => basename(p)),
  );
  switch (opts.format) {
    case "pkl":
      return (await import("./pickle.js")).openPickleWriter(opts, paths);
    case "jsonl":
      return (await import("./jsonl.js")).openJsonlWriter(opts, paths);
    case "parquet":
      // Imported only here, so pkl/jsonl users never load DuckDB's native binding.
      return (await import("./parquet.js")).openParquetWriter(opts, paths);
  }
}

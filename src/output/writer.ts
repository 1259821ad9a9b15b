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
import {
  type DownloadFormat,
  ExportError,
  type OutputPaths,
  type ProjectWriter,
  type ProjectWriterOptions,
  WRITER_SPECS,
} from "./types.js";

export {
  DOWNLOAD_FORMATS,
  type DownloadFormat,
  ExportError,
  type ExportErrorCode,
  type OutputPaths,
  type ProjectWriter,
  type ProjectWriterOptions,
  WRITER_SPECS,
  type WriterSpec,
} from "./types.js";

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

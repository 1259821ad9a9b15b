/**
 * The contract of the output writers (what callers and every format module share): formats, the ProjectWriter
 * interface, its options, final paths, and ExportError. writer.ts opens a writer; each format module implements it.
 * Kept apart from writer.ts so the format modules do not import the factory that imports them.
 */
import { CodedError } from "../model/errors.js";
import type { ParquetSource } from "../model/parquet-decode.js";
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
    /** Parquet history exports whose rows come before `history`'s (taken as files where `takesParquet`). */
    parquet?: readonly ParquetSource[],
  ): Promise<{ historyRows: number }>;
  /** True when the writer reads parquet exports itself (no rows decoded for it): worth fetching them as files. */
  readonly takesParquet: boolean;
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

export class ExportError extends CodedError<ExportErrorCode> {
  override name = "ExportError";
}

export interface OutputPaths {
  runs: string;
  /** Null when the writer has no history (runs-only). */
  histories: string | null;
  systemMetrics: string | null;
}

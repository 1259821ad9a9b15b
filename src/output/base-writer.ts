/**
 * The lifecycle every format shares: one writeRun at a time, close = finish every temp file, then rename them all,
 * abort = delete temp files. A failed writeRun leaves the writer unusable (its files may hold half a run): the
 * caller aborts.
 */

import { fsyncDir } from "../model/atomic-file.js";
import { type ParquetSource, withDecodedSources } from "../model/parquet-decode.js";
import type { HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";
import { ExportError, type OutputPaths, type ProjectWriter } from "./types.js";

/** A finished temp file waiting for its rename. */
export interface PendingFile {
  commit(): Promise<string>;
  abort(): Promise<void>;
}

export type HistoryBatches = AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>;

export abstract class BaseProjectWriter implements ProjectWriter {
  private state: "open" | "busy" | "closing" | "closed" | "failed" | "aborted" = "open";

  constructor(protected readonly outputDir: string) {}

  /** Writes one run (and its rows) to the temp files. */
  protected abstract writeRunRows(
    run: RunRecord,
    history: HistoryBatches | null,
    systemMetrics: SystemMetricsRecord[] | null,
    parquet: readonly ParquetSource[],
  ): Promise<number>;

  /** True for a writer that takes parquet history exports as files (writeRunRows' `parquet`); others get their rows. */
  readonly takesParquet: boolean = false;

  /** Completes every temp file (flushed, fsynced, closed) without renaming; in rename order (runs file last). */
  protected abstract finishFiles(): Promise<PendingFile[]>;

  /** Deletes every temp file this writer made. Must not throw for files already gone. */
  protected abstract removeTempFiles(): Promise<void>;

  protected abstract readonly withHistory: boolean;
  protected abstract readonly withSystemMetrics: boolean;

  async writeRun(
    run: RunRecord,
    history: HistoryBatches,
    systemMetrics?: SystemMetricsRecord[],
    parquet: readonly ParquetSource[] = [],
  ): Promise<{ historyRows: number }> {
    if (this.state !== "open") throw this.stateError("writeRun");
    this.state = "busy";
    try {
      const decode = !this.takesParquet && parquet.length > 0;
      const rows = await this.writeRunRows(
        run,
        this.withHistory ? (decode ? withDecodedSources(parquet, run.run_id, history) : history) : null,
        this.withSystemMetrics ? (systemMetrics ?? []) : null,
        this.withHistory && !decode ? parquet : [],
      );
      this.state = "open";
      return { historyRows: rows };
    } catch (e) {
      this.state = "failed";
      throw e;
    }
  }

  async close(): Promise<{ files: string[] }> {
    if (this.state !== "open") throw this.stateError("close");
    this.state = "closing";
    try {
      const pending = await this.finishFiles();
      const files: string[] = [];
      for (const f of pending) files.push(await f.commit());
      await fsyncDir(this.outputDir);
      this.state = "closed";
      return { files };
    } catch (e) {
      this.state = "failed";
      await this.removeTempFiles().catch(() => undefined);
      throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.state === "closed" || this.state === "aborted") return;
    this.state = "aborted";
    await this.removeTempFiles();
  }

  private stateError(op: string): ExportError {
    switch (this.state) {
      case "busy":
        return new ExportError("WRITER_BUSY", `${op}: another writeRun is still in progress`);
      case "failed":
        return new ExportError("WRITER_FAILED", `${op}: an earlier write failed; abort() the writer`);
      default:
        return new ExportError("WRITER_CLOSED", `${op}: writer is ${this.state}`);
    }
  }
}

/** A file a streaming format writes as rows arrive; after finish() it is the PendingFile of its own rename. */
export interface StreamedFile extends PendingFile {
  finish(): Promise<unknown>;
}

/**
 * The formats that stream straight into their output files (jsonl, pickle): the runs file, the histories file (with
 * history) and the system-metrics file (when asked for). Renamed histories, system metrics, runs: the runs file last.
 */
export abstract class StreamingProjectWriter<F extends StreamedFile> extends BaseProjectWriter {
  protected readonly withHistory: boolean;
  protected readonly withSystemMetrics: boolean;

  constructor(
    outputDir: string,
    protected readonly runs: F,
    protected readonly histories: F | null,
    protected readonly systemMetrics: F | null,
  ) {
    super(outputDir);
    this.withHistory = histories !== null;
    this.withSystemMetrics = systemMetrics !== null;
  }

  private files(): F[] {
    return [this.histories, this.systemMetrics, this.runs].filter((f): f is F => f !== null);
  }

  protected async finishFiles(): Promise<PendingFile[]> {
    const files = this.files();
    for (const f of files) await f.finish();
    return files;
  }

  protected async removeTempFiles(): Promise<void> {
    for (const f of this.files()) await f.abort();
  }
}

/** Creates the streamed files of `paths` (temp files); if one cannot be created, removes those already made. */
export async function createStreamedFiles<F extends StreamedFile>(
  paths: OutputPaths,
  create: (path: string) => Promise<F>,
): Promise<{ runs: F; histories: F | null; systemMetrics: F | null }> {
  const made: F[] = [];
  try {
    const runs = await create(paths.runs);
    made.push(runs);
    const histories = paths.histories === null ? null : await create(paths.histories);
    if (histories) made.push(histories);
    const systemMetrics = paths.systemMetrics === null ? null : await create(paths.systemMetrics);
    return { runs, histories, systemMetrics };
  } catch (e) {
    for (const f of made) await f.abort();
    throw e;
  }
}

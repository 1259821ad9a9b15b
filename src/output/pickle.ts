/**
 * The pickle output, shaped exactly as the original dr_wandb's (so `pickle.load` code written for it keeps
 * working), streamed so that memory stays bounded by one batch of history rows:
 *
 * - `{entity}_{project}_runs.pkl`: a list of run dicts (see RUN_FIELDS for the keys).
 * - `{entity}_{project}_histories.pkl`: a list, aligned with the runs list (same order, same length), of lists
 *   of history row dicts {run_id, step, timestamp, runtime, wandb_metadata, metrics, extra}.
 * - `{entity}_{project}_system_metrics.pkl` (optional): the same shape, rows {run_id, timestamp, runtime, metrics}.
 *
 * Every file is `PROTO 4, EMPTY_LIST, (item, APPEND)*, STOP`; a history list is `EMPTY_LIST, (MARK rows APPENDS)*`
 * appended to the outer list once the run's rows are done.
 */

import { AtomicFile } from "../model/atomic-file.js";
import { type HistoryRecord, RUN_FIELDS, type RunRecord, type SystemMetricsRecord } from "../model/records.js";
import { createStreamedFiles, type HistoryBatches, StreamingProjectWriter } from "./base-writer.js";
import { BATCH, PickleEncoder } from "./pickle-encoder.js";
import { historyExtra, rowTimestamp } from "./rows.js";
import type { OutputPaths, ProjectWriterOptions } from "./types.js";

const FLUSH_BYTES = 1 << 20;

/** One pickle file holding a single top-level list, written as items arrive; after finish(), commit() renames it. */
class PickleListFile {
  readonly enc = new PickleEncoder();
  private constructor(readonly file: AtomicFile) {
    this.enc.proto().emptyList();
  }

  static async create(path: string): Promise<PickleListFile> {
    return new PickleListFile(await AtomicFile.create(path));
  }

  /** Hands encoded bytes to the file once enough have gathered (or always, with force). */
  async flush(force = false): Promise<void> {
    if (this.enc.length >= FLUSH_BYTES || (force && this.enc.length > 0)) await this.file.write(this.enc.take());
  }

  async finish(): Promise<void> {
    this.enc.stop();
    await this.flush(true);
    await this.file.finish();
  }

  commit(): Promise<string> {
    return this.file.commit();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** `{run_id, step, timestamp, runtime, wandb_metadata, metrics, extra}` */
function encodeHistoryRow(enc: PickleEncoder, row: HistoryRecord): void {
  const t = rowTimestamp(row);
  enc.emptyDict().mark();
  enc.memoStr("run_id").memoStr(row.run_id);
  enc.memoStr("step").number(row.step);
  enc.memoStr("timestamp");
  if (t === null) enc.none();
  else enc.datetime(t);
  enc.memoStr("runtime");
  if (row.runtime === null) enc.none();
  else enc.number(row.runtime);
  enc.memoStr("wandb_metadata").value(row.wandb_metadata);
  enc.memoStr("metrics").dict(row.metrics);
  enc.memoStr("extra").dict(historyExtra(row, t));
  enc.setitems();
}

/** `{run_id, timestamp, runtime, metrics}` */
function encodeSystemMetricsRow(enc: PickleEncoder, row: SystemMetricsRecord): void {
  const t = rowTimestamp(row);
  enc.emptyDict().mark();
  enc.memoStr("run_id").memoStr(row.run_id);
  enc.memoStr("timestamp");
  if (t === null) enc.none();
  else enc.datetime(t);
  enc.memoStr("runtime");
  if (row.runtime === null) enc.none();
  else enc.number(row.runtime);
  enc.memoStr("metrics").dict(row.metrics);
  enc.setitems();
}

/** The run dict; `created_at`/`heartbeat_at` stay ISO-8601 strings, as the original's were (see docs/formats.md). */
function encodeRun(enc: PickleEncoder, run: RunRecord): void {
  enc.emptyDict().mark();
  for (const k of RUN_FIELDS) {
    enc.memoStr(k);
    const v = run[k];
    if (k === "run_id" || k === "entity" || k === "project") enc.memoStr(v as string);
    else enc.value(v === undefined ? null : v);
  }
  enc.setitems();
}

/** Appends one run's row list to `f`'s outer list, MARK … APPENDS per {@link BATCH} rows. */
async function writeRowList<T>(
  f: PickleListFile,
  batches: AsyncIterable<T[]> | Iterable<T[]>,
  encodeRow: (enc: PickleEncoder, row: T) => void,
): Promise<number> {
  const enc = f.enc;
  enc.emptyList();
  let rows = 0;
  for await (const batch of batches) {
    for (let i = 0; i < batch.length; i += BATCH) {
      const end = Math.min(batch.length, i + BATCH);
      enc.mark();
      for (let j = i; j < end; j++) encodeRow(enc, batch[j]!);
      enc.appends();
      rows += end - i;
      await f.flush();
    }
  }
  enc.append();
  await f.flush();
  return rows;
}

class PickleProjectWriter extends StreamingProjectWriter<PickleListFile> {
  protected async writeRunRows(
    run: RunRecord,
    history: HistoryBatches | null,
    systemMetrics: SystemMetricsRecord[] | null,
  ): Promise<number> {
    let rows = 0;
    if (this.histories !== null && history !== null)
      rows = await writeRowList(this.histories, history, encodeHistoryRow);
    if (this.systemMetrics !== null && systemMetrics !== null)
      await writeRowList(this.systemMetrics, [systemMetrics], encodeSystemMetricsRow);
    encodeRun(this.runs.enc, run);
    this.runs.enc.append();
    await this.runs.flush();
    return rows;
  }
}

export async function openPickleWriter(opts: ProjectWriterOptions, paths: OutputPaths): Promise<PickleProjectWriter> {
  const { runs, histories, systemMetrics } = await createStreamedFiles(paths, (p) => PickleListFile.create(p));
  return new PickleProjectWriter(opts.outputDir, runs, histories, systemMetrics);
}

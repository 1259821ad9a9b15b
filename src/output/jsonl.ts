/**
 * The JSON Lines output: one strict-JSON object per line (src/model/json.ts stringifyStrict: NaN/±Infinity as the
 * strings "NaN"/"Infinity"/"-Infinity", integers beyond 2^53 as exact literals), UTF-8, "\n" after every line.
 *
 * - `{entity}_{project}_runs.jsonl`: one run per line, keys in RUN_FIELDS order.
 * - `{entity}_{project}_histories.jsonl`: one history row per line, in run order then step order:
 *   {run_id, step, timestamp, runtime, wandb_metadata, metrics, extra}; timestamp is ISO-8601 UTC with
 *   microseconds ("2023-11-14T22:13:20.123456Z") or null; metrics stay a nested object.
 * - `{entity}_{project}_system_metrics.jsonl` (optional): {run_id, timestamp, runtime, metrics} per line.
 */

import { AtomicFile } from "../model/atomic-file.js";
import { type JsonObject, type JsonValue, stringifyStrict } from "../model/json.js";
import type { HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";
import { createStreamedFiles, type HistoryBatches, StreamingProjectWriter } from "./base-writer.js";
import { historyExtra, isoOfInstant, rowTimestamp, runObject, type UtcInstant } from "./rows.js";
import type { OutputPaths, ProjectWriterOptions } from "./types.js";

/**
 * stringifyStrict, with a fast path for the common flat object of finite numbers, strings, booleans and nulls
 * (JSON.stringify gives the same text for those).
 */
export function strictJson(v: JsonValue): string {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    let plain = true;
    for (const k in v) {
      const x = v[k];
      const t = typeof x;
      if (t === "number" ? !Number.isFinite(x as number) : t === "object" ? x !== null : t === "bigint") {
        plain = false;
        break;
      }
    }
    if (plain) return JSON.stringify(v);
  }
  return stringifyStrict(v);
}

function tsJson(t: UtcInstant | null): string {
  return t === null ? "null" : `"${isoOfInstant(t)}"`;
}

function numJson(n: number | null): string {
  return n === null ? "null" : stringifyStrict(n);
}

export function historyLine(row: HistoryRecord): string {
  const t = rowTimestamp(row);
  const extra: JsonObject = historyExtra(row, t);
  return (
    `{"run_id":${JSON.stringify(row.run_id)},"step":${numJson(row.step)},"timestamp":${tsJson(t)},` +
    `"runtime":${numJson(row.runtime)},"wandb_metadata":${strictJson(row.wandb_metadata)},` +
    `"metrics":${strictJson(row.metrics)},"extra":${strictJson(extra)}}\n`
  );
}

export function systemMetricsLine(row: SystemMetricsRecord): string {
  return (
    `{"run_id":${JSON.stringify(row.run_id)},"timestamp":${tsJson(rowTimestamp(row))},` +
    `"runtime":${numJson(row.runtime)},"metrics":${strictJson(row.metrics)}}\n`
  );
}

export function runLine(run: RunRecord): string {
  return `${stringifyStrict(runObject(run))}\n`;
}

/** Writes one line per item, in ~1 MB writes (a batch can be big: never one giant string). */
async function writeLines<T>(file: AtomicFile, items: readonly T[], line: (item: T) => string): Promise<void> {
  let text = "";
  for (const item of items) {
    text += line(item);
    if (text.length >= 1 << 20) {
      await file.write(text);
      text = "";
    }
  }
  await file.write(text);
}

class JsonlProjectWriter extends StreamingProjectWriter<AtomicFile> {
  protected async writeRunRows(
    run: RunRecord,
    history: HistoryBatches | null,
    systemMetrics: SystemMetricsRecord[] | null,
  ): Promise<number> {
    let rows = 0;
    if (this.histories !== null && history !== null) {
      for await (const batch of history) {
        await writeLines(this.histories, batch, historyLine);
        rows += batch.length;
      }
    }
    if (this.systemMetrics !== null && systemMetrics !== null) {
      await writeLines(this.systemMetrics, systemMetrics, systemMetricsLine);
    }
    await this.runs.write(runLine(run));
    return rows;
  }
}

export async function openJsonlWriter(opts: ProjectWriterOptions, paths: OutputPaths): Promise<JsonlProjectWriter> {
  const { runs, histories, systemMetrics } = await createStreamedFiles(paths, (p) => AtomicFile.create(p));
  return new JsonlProjectWriter(opts.outputDir, runs, histories, systemMetrics);
}
